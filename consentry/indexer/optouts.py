"""Importing a do-not-train list: store it, then erase what is already indexed under it, with a receipt.

Matching images are found in provenance: by sha256 through the by-bytes index; by domain, URL
prefix or perceptual hash by reading every provenance record (an import is rare; its cost is one
read per image record). Each indexed match is erased through the Eraser (by URL: tombstone first,
faces, provenance, receipt); the import's receipt lists those erasures and goes to the audit log.
Running ingest workers see a new list within their cache's TTL (30 s); importing the same list
again scans again.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..catalog import ProvenanceStore
from ..catalog.optouts import OptOutRegistry
from ..core.optouts import Entry, OptOutIndex
from ..core.records import Decision, Provenance
from .audit import AuditLog
from .erasure import Eraser


@dataclass
class ImportReceipt:
    request_id: str
    list_name: str
    list_date: str
    entries: dict[str, int]  # by kind
    actor: str
    at: str
    matched: list[dict[str, str]] = field(default_factory=list)  # {url, entry, erasure receipt id}
    faces_erased: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class OptOutImporter:
    def __init__(self, registry: OptOutRegistry, provenance: ProvenanceStore, eraser: Eraser, audit: AuditLog,
                 phash_distance: int = 6) -> None:
        self.registry = registry
        self.provenance = provenance
        self.eraser = eraser
        self.audit = audit
        self.phash_distance = phash_distance

    def import_list(self, name: str, date: str, entries: list[Entry], actor: str,
                    source_file: str = "") -> ImportReceipt:
        """Store the list (replacing one of the same name), then erase every indexed image it covers."""
        counts: dict[str, int] = {}
        for e in entries:
            counts[e.kind] = counts.get(e.kind, 0) + 1
        r = ImportReceipt(request_id=f"optout-{datetime.now(UTC):%Y%m%d}-{uuid.uuid4().hex[:12]}", list_name=name,
                          list_date=date, entries=counts, actor=actor, at=datetime.now(UTC).isoformat())
        self.registry.put(name, date, entries, source_file)  # first: ingest refuses new matches from now on
        index = OptOutIndex([(name, date, entries)], self.phash_distance)
        for prov in self._candidates(entries):
            match = index.match_url(prov.url) or index.match_url(prov.page_url) or index.match_image(prov.sha256,
                                                                                                     prov.phash)
            if match is None or prov.decision is not Decision.INDEX or not prov.face_ids:
                continue
            receipt = self.eraser.forget_url(prov.url, actor)
            r.faces_erased += len(receipt.matched_face_ids)
            r.matched.append({"url": prov.url, "entry": str(match.entry), "erasure": receipt.request_id})
        self.registry.put(name, date, entries, source_file, receipt=r.to_dict())
        self.audit.append("optout-import", actor, request_id=r.request_id, list=name, date=date, entries=counts,
                          erased_urls=len(r.matched), faces_erased=r.faces_erased,
                          erasures=[m["erasure"] for m in r.matched][:1000])
        return r

    def remove(self, name: str, actor: str) -> dict[str, Any]:
        """Remove a list: images it covered are no longer refused from now on (nothing erased comes back)."""
        doc = self.registry.get(name)
        self.registry.remove(name)
        self.audit.append("optout-remove", actor, list=name, date=doc.get("date"))
        return doc

    def _candidates(self, entries: list[Entry]) -> list[Provenance]:
        if all(e.kind == "sha256" for e in entries):  # the by-bytes index answers without a scan
            keys = {k for e in entries for k in self.provenance.image_urls(e.value)}
            return [p for p in (self.provenance.get(k) for k in sorted(keys)) if p is not None]
        return list(self.provenance.all())
