"""The consent decision for one image, in the three places it can be made.

1. before fetching: the source's basis and the page signals the crawler saw (a refusal here means
   the image is never downloaded);
2. after fetching and decoding: plus ``X-Robots-Tag`` / ``tdm-reservation`` on the image response
   and the IPTC ``plus:DataMining`` value in the file's XMP;
3. after embedding: plus the suppression list, face by face.

The policy itself is :func:`consentry.core.consent.decide`; this module gathers the signals and keeps
the list of every signal checked, in order, for the provenance record.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ..catalog.sources import SourceRegistry
from ..core.consent import basis_signal, decide, iptc_signal, source_match_signal
from ..core.records import Basis, Decision, ImageCandidate, Signal, Source


@dataclass(frozen=True)
class Verdict:
    basis: Basis
    decision: Decision
    reason: str
    signals: list[Signal] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return self.decision is Decision.REFUSE


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


class ConsentDecider:
    """Pure over its inputs: no I/O happens here."""

    @staticmethod
    def before_fetch(cand: ImageCandidate, source: Source) -> Verdict:
        signals = [basis_signal(source.basis), source_match_signal(source.match, cand.page_url), *cand.signals]
        decision, reason = decide(source.basis, signals)
        return Verdict(source.basis, decision, reason, signals)

    @staticmethod
    def after_fetch(before: Verdict, image_signals: list[Signal]) -> Verdict:
        """With the image response's header signals (checked before the bytes are decoded)."""
        signals = [*before.signals, *image_signals]
        decision, reason = decide(before.basis, signals)
        return Verdict(before.basis, decision, reason, signals)

    @staticmethod
    def after_decode(fetched: Verdict, xmp: bytes | None, extra: list[Signal] | None = None) -> Verdict:
        """``extra``: the image's other opt-out signals (C2PA, do-not-train lists; catalog.optouts.ImageOptOutCheck)."""
        signals = [*fetched.signals, iptc_signal(xmp), *(extra or [])]
        decision, reason = decide(fetched.basis, signals)
        return Verdict(fetched.basis, decision, reason, signals)

    @staticmethod
    def after_suppression(decoded: Verdict, faces: int, suppressed: int) -> Verdict:
        """Faces on the suppression list are dropped; the image is refused only if all of them are."""
        if faces == 0 or suppressed == 0:
            return decoded
        every = suppressed == faces
        sig = Signal(name="suppressed", value=f"{suppressed} of {faces} faces", opt_out=every, scope="image")
        signals = [*decoded.signals, sig]
        decision, reason = decide(decoded.basis, signals, suppressed=every)
        return Verdict(decoded.basis, decision, reason, signals)
