"""Per-record work before the faces, top to bottom: parse → source → decide → fetch → decide →
decode → decide → dedup. Runs on the prepare threads; returns what it decided as a value.

Each step either moves the record on or ends it as an outcome: :class:`Refused` (a consent
decision), :class:`DeadLettered` (a permanent failure, for the DLQ), :class:`Transient` (a
dependency failed; the record must be redelivered) or, when the same bytes were indexed before
at another URL, :class:`ReadyToWrite` reusing those faces. Nothing here writes anything.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from typing import Any

from ..catalog.sources import SourceRegistry
from ..clients.broker import Message
from ..core.errors import (
    ConsentryError,
    DependencyError,
    FetchError,
    FetchRefused,
    ImageRejected,
    NotFound,
    RecordError,
)
from ..core.records import Decision, ImageCandidate, Source, url_key
from ..core.retry import RetryPolicy
from ..imaging import decode
from .budget import InFlightBytes
from .deadletter import dead_letter
from .decide import ConsentChecks
from .dedup import Deduper
from .fetch import Fetcher
from .metrics import IngestStats
from .outcomes import DeadLettered, Evidence, Prepared, ReadyToWrite, Refused, ToEmbed, Transient, Verdict

log = logging.getLogger("consentry.ingest")


class SourceCache:
    """Source lookups with a short TTL: a basis change reaches running workers within ``ttl_s``.

    Raises NotFound for an unknown source and DependencyError when the object store fails.
    """

    def __init__(self, registry: SourceRegistry, ttl_s: float = 30.0) -> None:
        self.registry = registry
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Source]] = {}
        self._lock = threading.Lock()

    def get(self, source_id: str) -> Source:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(source_id)
            if hit and now - hit[0] < self.ttl_s:
                return hit[1]
        src = self.registry.get(source_id)
        with self._lock:
            self._cache[source_id] = (now, src)
        return src


class Preparer:
    def __init__(self, sources: SourceCache, fetcher: Fetcher, deduper: Deduper, retry: RetryPolicy,
                 stats: IngestStats, model_id: str, max_pixels: int, min_side: int, retention_max_days: int,
                 checks: ConsentChecks | None = None, budget: InFlightBytes | None = None) -> None:
        self.sources = sources
        self.fetcher = fetcher
        self.deduper = deduper
        self.retry = retry
        self.stats = stats
        self.model_id = model_id
        self.max_pixels = max_pixels
        self.min_side = min_side
        self.retention_max_days = retention_max_days
        self.checks = checks or ConsentChecks()
        self.budget = budget or InFlightBytes(1 << 62)

    def __call__(self, msg: Message, seq: int = 0) -> Prepared:
        try:
            return self.prepare(msg, seq)
        except DependencyError as exc:
            if not exc.transient:
                raise
            return Transient(msg, "ingest.prepare", exc)
        except Exception as exc:  # a bug must not stop the worker: dead-letter the record, keep going
            log.exception("unexpected failure preparing %s[%d]@%d", msg.topic, msg.partition, msg.offset)
            return self.failed(msg, None, None, "ingest.internal", exc, "internal-error")

    def prepare(self, msg: Message, seq: int = 0) -> Prepared:
        try:
            cand = ImageCandidate.from_json(msg.value)
        except RecordError as exc:  # malformed: no provenance (there is no URL to key it by)
            return self.failed(msg, None, None, "ingest.parse", exc)
        if msg.key and msg.key.decode("utf-8", "replace") != url_key(cand.url):
            log.warning("record %s[%d]@%d: key is not sha256(url)", msg.topic, msg.partition, msg.offset)
        e = Evidence(cand)
        try:
            e = e.with_(source=self.retry.call(lambda: self.sources.get(cand.source_id), "source lookup"))
        except NotFound as exc:
            return self.failed(msg, e, None, "ingest.source", exc, "unknown-source")

        v = self.checks.before_fetching(e)
        if v.refused:  # never downloaded
            return self.refused(msg, e, v)

        try:
            e = e.with_(response=self.fetcher.fetch(cand.url))
        except (FetchRefused, FetchError, ImageRejected) as exc:
            return self.failed(msg, e, v, "ingest.fetch", exc, http_status=getattr(exc, "status", None))
        self.stats.fetched()
        v = self.checks.after_response(e, v)
        if v.refused:  # opted out in the response headers: not even decoded
            return self.refused(msg, e, v)

        held = self.budget.reserve(seq, len(e.body) + 3 * min(_pixels(e.body), self.max_pixels))  # body + BGR
        try:
            try:
                image = decode(e.body, max_pixels=self.max_pixels, min_side=self.min_side)
            except ImageRejected as exc:
                return self.failed(msg, e, v, "ingest.decode", exc)
            e = e.with_(image=image, fingerprint=Deduper.fingerprint(e.body, image.rgb))
            v = self.checks.after_decoding(e, v)
            if v.refused:
                return self.refused(msg, e, v)
            fp = e.fingerprint
            assert fp is not None
            sighting = self.retry.call(lambda: self.deduper.earlier(fp.sha256, cand.key, self.model_id), "dedup")
            if sighting.indexed is not None:  # the same bytes were indexed at another URL: reuse its faces
                first = sighting.indexed
                prov = e.provenance(v, Decision.INDEX, v.reason, self.retention_max_days, model_id=first.model_id,
                                    faces=first.faces, duplicate_of=sighting.first_url or first.url)
                return ReadyToWrite(msg, prov)
            out = ToEmbed(msg, e, v, sighting.first_url, reserved=held)
            held = 0  # the faces stage releases it
            return out
        finally:
            self.budget.release(held)

    def refused(self, msg: Message, e: Evidence, v: Verdict) -> Refused:
        return Refused(msg, e.provenance(v, Decision.REFUSE, v.reason, self.retention_max_days))

    def failed(self, msg: Message, e: Evidence | None, v: Verdict | None, stage: str, exc: BaseException,
               reason: str | None = None, http_status: int | None = None) -> DeadLettered:
        """A permanent failure: a dead letter, and a provenance record saying why (when there is a URL)."""
        reason = reason or (exc.reason if isinstance(exc, ConsentryError) else "error")
        return DeadLettered(msg, dead_letter(msg, stage, exc, reason),
                            failed_provenance(e, v, reason, self.retention_max_days, http_status))


def failed_provenance(e: Evidence | None, v: Verdict | None, reason: str, retention_max_days: int,
                      http_status: int | None = None):
    if e is None:
        return None
    extra: dict[str, Any] = {"http_status": http_status} if http_status is not None else {}
    try:
        return e.provenance(v, Decision.REFUSE, reason, retention_max_days, **extra)
    except Exception:
        log.exception("no provenance for the failed record %s", e.candidate.url[:200])
        return None


def _pixels(body: bytes) -> int:
    """Pixel count from the image header (no decoding); 0 when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(body)) as im:
            w, h = im.size
            return int(w) * int(h)
    except Exception:
        return 0
