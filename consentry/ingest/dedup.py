"""Dedup by the bytes: the same image from two URLs is embedded once.

Every URL keeps its own provenance record. The sha256 of the bytes indexes the URL keys that
served them (``ProvenanceStore.image_urls``); a later URL notes ``duplicate_of`` the first and,
when that first sighting was indexed by the same model, reuses its face ids without embedding
again. A perceptual hash is recorded beside the sha256 for near-duplicate analysis.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.provenance import ProvenanceStore
from ..core.records import Decision, Provenance, sha256_hex
from ..imaging import phash


@dataclass(frozen=True)
class Fingerprint:
    sha256: str
    phash: str


@dataclass(frozen=True)
class Sighting:
    """What an earlier URL with the same bytes tells us."""

    first_url: str | None  # the first other URL that served these bytes (for duplicate_of)
    indexed: Provenance | None  # an earlier indexed provenance whose faces can be reused


class Deduper:
    def __init__(self, provenance: ProvenanceStore) -> None:
        self.provenance = provenance

    @staticmethod
    def fingerprint(body: bytes, rgb) -> Fingerprint:
        return Fingerprint(sha256=sha256_hex(body), phash=phash(rgb))

    def earlier(self, sha256: str, ukey: str, model_id: str) -> Sighting:
        """Earlier sightings of ``sha256`` at other URLs (S3 reads; DependencyError when S3 fails)."""
        keys = self.provenance.image_urls(sha256)
        others = keys[:keys.index(ukey)] if ukey in keys else keys
        first_url: str | None = None
        for k in others:
            prov = self.provenance.get(k)
            if prov is None:
                continue
            first_url = first_url or prov.url
            if prov.decision is Decision.INDEX and prov.model_id == model_id \
                    and not any(f.erased for f in prov.faces):
                return Sighting(first_url, prov)
        return Sighting(first_url, None)
