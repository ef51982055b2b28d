"""Reconciliation between Milvus and the object store (`consentry doctor`).

Two invariants: every face in Milvus is explained by a provenance record that lists it (not
erased); every face a provenance record lists as indexed exists in Milvus. A crash between the
two writes, or a store restored from backup, can break them; this finds and repairs it:
orphan faces are deleted (a face we cannot explain must not be searchable), and images whose
faces are missing are re-published to the images topic so ingest rebuilds them (face ids are
deterministic, so nothing is duplicated).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..catalog import ProvenanceStore
from ..core.records import Decision, ImageCandidate, Provenance
from ..faceindex import FaceIndex

log = logging.getLogger("consentry.doctor")


@dataclass
class DoctorReport:
    faces_checked: int = 0
    provenance_checked: int = 0
    faces_without_provenance: list[str] = field(default_factory=list)
    provenance_missing_faces: dict[str, list[str]] = field(default_factory=dict)  # url -> face ids
    repaired: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.faces_without_provenance and not self.provenance_missing_faces

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class Reconciler:
    def __init__(self, index: FaceIndex, provenance: ProvenanceStore,
                 republish: Callable[[ImageCandidate], None] | None = None) -> None:
        self.index = index
        self.provenance = provenance
        self.republish = republish

    def run(self, repair: bool = False) -> DoctorReport:
        rep = DoctorReport()
        cache: dict[str, Provenance | None] = {}

        def prov(ukey: str) -> Provenance | None:
            if ukey not in cache:
                cache[ukey] = self.provenance.get(ukey)
            return cache[ukey]

        present: set[str] = set()
        for batch in self.index.store.iterate(self.index.spec, ["face_id", "url_key"], batch=1000):
            for row in batch:
                rep.faces_checked += 1
                present.add(row["face_id"])
                p = prov(row["url_key"])
                if p is None or row["face_id"] not in p.face_ids:
                    rep.faces_without_provenance.append(row["face_id"])
        for p in self.provenance.all():
            rep.provenance_checked += 1
            if p.decision is not Decision.INDEX:
                continue
            missing = [f for f in p.face_ids if f not in present]
            if missing:
                rep.provenance_missing_faces[p.url] = missing
        if repair:
            rep.repaired["orphan_faces_deleted"] = self.index.delete(rep.faces_without_provenance)
            # their crops, if any were kept, are as unexplained as the faces
            store = self.provenance.store
            crops = [k for k in map(self.provenance.crop_key, rep.faces_without_provenance) if store.exists(k)]
            rep.repaired["orphan_crops_deleted"] = store.delete_many(crops)
            n = 0
            if self.republish is not None:
                # face rows live under the URL that was embedded; a duplicate URL reuses them, so
                # re-publish the first sighting (ingest rebuilds it; the duplicate keeps pointing at it)
                urls = dict.fromkeys(self._first(u) for u in rep.provenance_missing_faces)
                for url in urls:
                    p = self.provenance.for_url(url)
                    if p is not None:
                        self.republish(ImageCandidate(url=p.url, page_url=p.page_url, job_id=p.job_id,
                                                      source_id=p.source_id,
                                                      signals=[s for s in p.signals if s.scope != "image"]))
                        n += 1
            rep.repaired["images_republished"] = n
        log.info("doctor: %d faces, %d provenance records, %d orphans, %d images missing faces",
                 rep.faces_checked, rep.provenance_checked, len(rep.faces_without_provenance),
                 len(rep.provenance_missing_faces))
        return rep

    def _first(self, url: str) -> str:
        p = self.provenance.for_url(url)
        return p.duplicate_of if p is not None and p.duplicate_of else url
