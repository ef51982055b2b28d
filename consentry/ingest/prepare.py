"""Per-record work before the faces: parse → source → decide → fetch → decide → decode → decide → dedup.

Each step either moves the :class:`Item` on or ends it as data: ``refused`` (a consent decision),
``dead`` (a permanent failure, for the DLQ) or ``transient`` (a dependency failed; the record must
be redelivered). Nothing here writes anything; image bytes live only in memory, and only until the
faces are computed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from ..catalog.optouts import ImageOptOutCheck
from ..clients.broker import Message
from ..core.errors import (ConsentryError, DependencyError, FetchError, FetchRefused, ImageRejected, NotFound,
                           RecordError)
from ..core.records import Basis, Decision, DeadLetter, Face, ImageCandidate, Provenance, Source, url_key, utcnow
from ..core.retry import RetryPolicy
from ..imaging import DecodedImage, decode
from .decide import ConsentDecider, SourceCache, Verdict
from .dedup import Deduper, Fingerprint, Sighting
from .deadletter import dead_letter
from .fetch import Fetcher, FetchResult
from .metrics import IngestStats

log = logging.getLogger("consentry.ingest")


class State(str, Enum):
    EMBED = "embed"  # decoded, consent so far: index; needs faces
    REUSE = "reuse"  # same bytes already indexed at another URL: reuse its faces
    REFUSED = "refused"
    DEAD = "dead"
    TRANSIENT = "transient"
    READY = "ready"  # provenance (and faces) built, ready to write


@dataclass
class Item:
    msg: Message
    state: State = State.READY
    cand: ImageCandidate | None = None
    source: Source | None = None
    verdict: Verdict | None = None
    fetched: FetchResult | None = None
    image: DecodedImage | None = None
    fp: Fingerprint | None = None
    sighting: Sighting | None = None
    prov: Provenance | None = None
    faces: list[Face] = field(default_factory=list)
    crops: dict[str, bytes] = field(default_factory=dict)
    dead: DeadLetter | None = None
    error: BaseException | None = None

    @property
    def tp(self) -> tuple[str, int]:
        return self.msg.topic, self.msg.partition

    base_verdict: Verdict | None = None  # before the suppression list was consulted
    face_counts: tuple[int, int] = (0, 0)  # faces found, faces on the suppression list
    kept: dict[str, Any] = field(default_factory=dict)  # sizes measured before the bytes were dropped

    def drop_bytes(self) -> None:
        """Forget the image bytes and pixels (refused images keep nothing), keeping only their sizes."""
        if self.fetched is not None and self.fetched.body:
            self.kept["bytes"] = len(self.fetched.body)
            self.fetched = replace(self.fetched, body=b"")
        if self.image is not None:
            self.kept.update(width=self.image.width, height=self.image.height)
            self.image = None

    def provenance(self, decision: Decision, reason: str, **extra: Any) -> Provenance:
        """A provenance record from what is known so far."""
        cand, v, f, img, fp = self.cand, self.verdict, self.fetched, self.image, self.fp
        assert cand is not None
        fields: dict[str, Any] = dict(url=cand.url, page_url=cand.page_url, job_id=cand.job_id,
                                      source_id=cand.source_id, basis=v.basis if v else Basis.NONE,
                                      signals=list(v.signals) if v else [], decision=decision, reason=reason)
        if f is not None:
            fields.update(fetched_at=f.fetched_at, http_status=f.status, content_type=f.content_type,
                          bytes=len(f.body))
        if fp is not None:
            fields.update(sha256=fp.sha256, phash=fp.phash)
        if img is not None:
            fields.update(width=img.width, height=img.height)
        fields.update(self.kept)
        fields.update(extra)
        return Provenance(**fields)


def expiry(now: datetime, source: Source | None, max_days: int) -> datetime:
    days = min(source.retention_days if source else max_days, max_days)
    return now + timedelta(days=days)


class Preparer:
    def __init__(self, sources: SourceCache, fetcher: Fetcher, deduper: Deduper, retry: RetryPolicy,
                 stats: IngestStats, model_id: str, max_pixels: int, min_side: int, retention_max_days: int,
                 optouts: ImageOptOutCheck | None = None) -> None:
        self.sources = sources
        self.fetcher = fetcher
        self.deduper = deduper
        self.retry = retry
        self.stats = stats
        self.model_id = model_id
        self.max_pixels = max_pixels
        self.min_side = min_side
        self.retention_max_days = retention_max_days
        self.optouts = optouts  # issue 17 (catalog.optouts): C2PA + do-not-train signals from the bytes

    def __call__(self, msg: Message) -> Item:
        item = Item(msg)
        try:
            self._run(item)
        except DependencyError as exc:
            if exc.transient:
                item.state, item.error = State.TRANSIENT, exc
            else:
                raise
        except Exception as exc:  # a bug must not stop the worker: dead-letter the record, keep going
            log.exception("unexpected failure preparing %s[%d]@%d", msg.topic, msg.partition, msg.offset)
            self.fail(item, "ingest.internal", exc, "internal-error")
        return item

    def _run(self, item: Item) -> None:
        msg = item.msg
        try:
            item.cand = cand = ImageCandidate.from_json(msg.value)
        except RecordError as exc:
            self.fail(item, "ingest.parse", exc)  # malformed: no provenance (there is no URL to key it by)
            return
        if msg.key and msg.key.decode("utf-8", "replace") != url_key(cand.url):
            log.warning("record %s[%d]@%d: key is not sha256(url)", msg.topic, msg.partition, msg.offset)
        try:
            item.source = source = self.retry.call(lambda: self.sources.get(cand.source_id), "source lookup")
        except NotFound as exc:
            self.fail(item, "ingest.source", exc, "unknown-source")
            return
        item.verdict = ConsentDecider.before_fetch(cand, source)
        if item.verdict.refused:  # never downloaded
            return self._refuse(item)
        try:
            item.fetched = self.fetcher.fetch(cand.url)
        except (FetchRefused, FetchError, ImageRejected) as exc:
            self.fail(item, "ingest.fetch", exc, http_status=getattr(exc, "status", None))
            return
        self.stats.fetched()
        item.verdict = ConsentDecider.after_fetch(item.verdict, item.fetched.signals)
        if item.verdict.refused:  # opted out in the response headers: not even decoded
            return self._refuse(item)
        try:
            item.image = decode(item.fetched.body, max_pixels=self.max_pixels, min_side=self.min_side)
        except ImageRejected as exc:
            self.fail(item, "ingest.decode", exc)
            return
        item.fp = Deduper.fingerprint(item.fetched.body, item.image.rgb)
        # issue 17: the C2PA training-mining assertion and the do-not-train lists, before any face work
        extra = self.optouts(cand.url, cand.page_url, item.fetched.body, item.fetched.format, item.fp.sha256,
                             item.fp.phash, item.verdict.basis) if self.optouts is not None else []
        item.verdict = ConsentDecider.after_decode(item.verdict, item.image.xmp, extra)
        if item.verdict.refused:
            return self._refuse(item)
        fp = item.fp
        item.sighting = self.retry.call(lambda: self.deduper.earlier(fp.sha256, cand.key, self.model_id), "dedup")
        item.state = State.REUSE if item.sighting.indexed is not None else State.EMBED
        if item.state is State.REUSE:
            item.drop_bytes()

    def _refuse(self, item: Item) -> None:
        assert item.verdict is not None
        item.prov = item.provenance(Decision.REFUSE, item.verdict.reason, expires_at=self._expires(item))
        item.drop_bytes()
        item.state = State.REFUSED

    def fail(self, item: Item, stage: str, exc: BaseException, reason: str | None = None,
              http_status: int | None = None) -> None:
        """End ``item`` as a permanent failure: a dead letter, and a provenance record saying why."""
        reason = reason or (exc.reason if isinstance(exc, ConsentryError) else "error")
        item.dead = dead_letter(item.msg, stage, exc, reason)
        item.error = exc
        if item.cand is not None:
            extra: dict[str, Any] = {"expires_at": self._expires(item)}
            if http_status is not None:
                extra["http_status"] = http_status
            try:
                item.prov = item.provenance(Decision.REFUSE, reason, **extra)
            except Exception:  # noqa: BLE001 - the dead letter alone still says why
                log.exception("no provenance for the failed record %s", item.cand.url[:200])
                item.prov = None
        item.drop_bytes()
        item.state = State.DEAD

    def _expires(self, item: Item) -> datetime:
        return expiry(utcnow(), item.source, self.retention_max_days)
