"""What a stage decided about one record: one immutable type per outcome.

A record moves through the stages as a value that is replaced, never mutated:

    prepare ─► Refused | DeadLettered | Transient | ReadyToWrite (same bytes indexed before) | ToEmbed
    faces   ─► ToEmbed becomes ReadyToWrite | Refused (every face suppressed) | DeadLettered | Transient
    write   ─► Written | Transient

``Evidence`` is what is known about one image when a consent check runs (candidate, source, the
response and its bytes, the decoded pixels, the fingerprint); each step adds to it with
:meth:`Evidence.with_`. Image bytes and pixels live only in ``Evidence`` (in ``ToEmbed``); every
later outcome carries the provenance record instead, so refused images keep nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ..clients.broker import Message
from ..core.records import Basis, DeadLetter, Decision, Face, ImageCandidate, Provenance, Signal, Source
from ..imaging import DecodedImage
from .dedup import Fingerprint
from .fetch import FetchResult


@dataclass(frozen=True)
class Verdict:
    """The consent decision so far, with every signal checked, in order."""

    basis: Basis
    decision: Decision
    reason: str
    signals: tuple[Signal, ...] = ()

    @property
    def refused(self) -> bool:
        return self.decision is Decision.REFUSE


@dataclass(frozen=True)
class Evidence:
    """What is known about one image; the consent checks read it, the provenance record describes it."""

    candidate: ImageCandidate
    source: Source | None = None
    response: FetchResult | None = None  # status, content type, header signals and the bytes
    image: DecodedImage | None = None  # pixels and the XMP packet
    fingerprint: Fingerprint | None = None  # sha256 of the bytes, perceptual hash of the pixels

    def with_(self, **changes: Any) -> Evidence:
        return replace(self, **changes)

    @property
    def body(self) -> bytes:
        """The fetched bytes (empty before the fetch)."""
        return self.response.body if self.response is not None else b""

    def provenance(self, verdict: Verdict | None, decision: Decision, reason: str, retention_max_days: int,
                   **extra: Any) -> Provenance:
        """The provenance record for this image: everything known, the decision and its reason."""
        c, r, img, fp = self.candidate, self.response, self.image, self.fingerprint
        fields: dict[str, Any] = dict(url=c.url, page_url=c.page_url, job_id=c.job_id, source_id=c.source_id,
                                      basis=verdict.basis if verdict else Basis.NONE,
                                      signals=list(verdict.signals) if verdict else [], decision=decision,
                                      reason=reason, expires_at=expiry(self.source, retention_max_days))
        if r is not None:
            fields.update(fetched_at=r.fetched_at, http_status=r.status, content_type=r.content_type,
                          bytes=len(r.body))
        if fp is not None:
            fields.update(sha256=fp.sha256, phash=fp.phash)
        if img is not None:
            fields.update(width=img.width, height=img.height)
        fields.update(extra)
        return Provenance(**fields)


def expiry(source: Source | None, max_days: int, now: datetime | None = None) -> datetime:
    """When an image's faces (and record) expire: the source's retention, capped by ``max_days``."""
    from ..core.records import utcnow

    days = min(source.retention_days if source else max_days, max_days)
    return (now or utcnow()) + timedelta(days=days)


# ------------------------------------------------------------------------------------ stage outcomes
@dataclass(frozen=True)
class Refused:
    """The consent decision said no: only the provenance record (with the reason) is written."""

    msg: Message
    provenance: Provenance

    @property
    def reason(self) -> str:
        return self.provenance.reason


@dataclass(frozen=True)
class DeadLettered:
    """A permanent failure: the dead letter goes to the DLQ, then the provenance record (if there is a URL)."""

    msg: Message
    letter: DeadLetter
    provenance: Provenance | None = None


@dataclass(frozen=True)
class Transient:
    """A dependency failed past its retries: the record is left uncommitted and redelivered."""

    msg: Message
    stage: str
    error: BaseException | None = None  # None: dropped because an earlier record of its partition was rewound


@dataclass(frozen=True)
class ToEmbed:
    """Decoded, consent so far says index: needs detection and embedding."""

    msg: Message
    evidence: Evidence
    verdict: Verdict
    first_url: str | None = None  # an earlier URL that served the same bytes (for duplicate_of)
    reserved: int = 0  # in-flight bytes held for its body and pixels, released by the faces stage

    @property
    def sha256(self) -> str:
        assert self.evidence.fingerprint is not None
        return self.evidence.fingerprint.sha256


@dataclass(frozen=True)
class ReadyToWrite:
    """An image to index: its face rows (possibly none), crops, and the provenance record naming them."""

    msg: Message
    provenance: Provenance
    faces: tuple[Face, ...] = ()
    crops: Mapping[str, bytes] = field(default_factory=dict)
    before_suppression: Verdict | None = None  # to re-decide if the re-check after the upsert finds more
    found: int = 0  # faces found
    suppressed: int = 0  # of them, on the suppression list


@dataclass(frozen=True)
class Written:
    """The record's durable writes are done: its offset may be committed."""

    msg: Message
    decision: str  # index | refuse | dead-letter | erased
    reason: str
    faces: int = 0
    error_class: str | None = None  # dead letters


Prepared = Refused | DeadLettered | Transient | ReadyToWrite | ToEmbed
Outcome = Refused | DeadLettered | Transient | ReadyToWrite
Result = Written | Transient
