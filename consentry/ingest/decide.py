"""The consent decision for one image, read top to bottom.

A face is embedded only if every check below lets it through. The checks are pure functions of
the :class:`~.outcomes.Evidence` known at that point, each returning the signals it saw; the
policy that turns signals into a decision is :func:`consentry.core.consent.decide`.

1. **Before fetching** (a refusal here means the image is never downloaded):
   the source's basis · whether the page lies inside the source · the page's signals
   (robots.txt, X-Robots-Tag / meta robots, TDMRep) as the crawler saw them.
2. **After the response headers** (a refusal here means the bytes are never decoded):
   ``X-Robots-Tag`` and ``tdm-reservation`` on the image response.
3. **After the bytes** (decoded, fingerprinted; before any face is detected):
   IPTC ``plus:DataMining`` in the file's XMP, then the C2PA training-mining assertion and the
   do-not-train lists matched by URL, sha256 or perceptual hash (:class:`ImageOptOuts`, added by
   the assembly). The fetched bytes, pixels and fingerprint are all in the evidence: a new signal
   is one more function in the list of its decision point.
4. **After the faces**: the suppression list, face by face (:func:`after_suppression`).

Every signal checked is kept, in order, for the provenance record and ``consentry explain``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..core.consent import basis_signal, decide, iptc_signal, source_match_signal
from ..core.records import Basis, Signal
from .outcomes import Evidence, Verdict

#: one consent check: the signals it saw in the evidence (pure: no I/O)
Check = Callable[[Evidence], Sequence[Signal]]


# --------------------------------------------------------------------- 1. before fetching
def source_basis(e: Evidence) -> list[Signal]:
    assert e.source is not None
    return [basis_signal(e.source.basis)]


def page_inside_source(e: Evidence) -> list[Signal]:
    assert e.source is not None
    return [source_match_signal(e.source.match, e.candidate.page_url)]


def page_signals(e: Evidence) -> list[Signal]:
    return list(e.candidate.signals)


# --------------------------------------------------------------------- 2. after the response headers
def image_response_headers(e: Evidence) -> list[Signal]:
    return list(e.response.signals) if e.response is not None else []


# --------------------------------------------------------------------- 3. after the bytes
def iptc_data_mining(e: Evidence) -> list[Signal]:
    return [iptc_signal(e.image.xmp if e.image is not None else None)]


@dataclass(frozen=True)
class ImageOptOuts:
    """The image's own opt-outs, from its bytes and hashes — the C2PA training-mining assertion and the
    do-not-train lists (``check`` is ``catalog.optouts.ImageOptOutCheck``, issue 17) — as one check."""

    check: Callable[..., Sequence[Signal]]

    def __call__(self, e: Evidence) -> Sequence[Signal]:
        assert e.response is not None and e.fingerprint is not None and e.source is not None
        c = e.candidate
        return self.check(c.url, c.page_url, e.body, e.response.format, e.fingerprint.sha256, e.fingerprint.phash,
                          e.source.basis)


BEFORE_FETCH: tuple[Check, ...] = (source_basis, page_inside_source, page_signals)
AFTER_HEADERS: tuple[Check, ...] = (image_response_headers,)
AFTER_BYTES: tuple[Check, ...] = (iptc_data_mining,)


@dataclass(frozen=True)
class ConsentChecks:
    """The ordered checks of each decision point (the defaults above; tests and wiring may add)."""

    before_fetch: tuple[Check, ...] = BEFORE_FETCH
    after_headers: tuple[Check, ...] = AFTER_HEADERS
    after_bytes: tuple[Check, ...] = AFTER_BYTES

    def before_fetching(self, e: Evidence) -> Verdict:
        assert e.source is not None
        return run(self.before_fetch, e, Verdict(e.source.basis, *decide(e.source.basis, [])))

    def after_response(self, e: Evidence, so_far: Verdict) -> Verdict:
        return run(self.after_headers, e, so_far)

    def after_decoding(self, e: Evidence, so_far: Verdict) -> Verdict:
        return run(self.after_bytes, e, so_far)


def run(checks: Sequence[Check], e: Evidence, so_far: Verdict) -> Verdict:
    """The verdict after ``checks``: every earlier signal, then each check's, in order."""
    signals = (*so_far.signals, *(s for check in checks for s in check(e)))
    return verdict(so_far.basis, signals)


def verdict(basis: Basis, signals: Sequence[Signal], suppressed: bool = False) -> Verdict:
    decision, reason = decide(basis, signals, suppressed=suppressed)
    return Verdict(basis, decision, reason, tuple(signals))


def after_suppression(before: Verdict, faces: int, suppressed: int) -> Verdict:
    """Faces on the suppression list are dropped; the image is refused only if all of them are."""
    if faces == 0 or suppressed == 0:
        return before
    every = suppressed == faces
    sig = Signal(name="suppressed", value=f"{suppressed} of {faces} faces", opt_out=every, scope="image")
    return verdict(before.basis, (*before.signals, sig), suppressed=every)
