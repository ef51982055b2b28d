"""Erasure ("forget me"): by photo, source, job or URL, with a receipt and a verification.

By photo, the order closes the race with ingest workers: the reference embeddings join the
suppression list *first*, then matching faces are found (Strong consistency) and deleted, then a
fresh search verifies that nothing remains. An ingest worker that upserts a face of this person
re-checks the suppression list after its upsert (see ingest), so either it sees the suppression
and deletes its own face, or its face was written before the search here and is deleted by it.

The reference photo is never stored; the receipt holds its sha256 and the counts deleted per store.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from ..catalog import ProvenanceStore, Tombstones
from ..catalog.crawllog import CrawlLog
from ..clients.objectstore import ObjectStore, get_json, put_json
from ..core.errors import NoFaceFound, NotFound, ObjectNotFound
from ..core.records import ErasureEvent, check_id, url_key
from .audit import AuditLog
from ..faceindex import FaceIndex

log = logging.getLogger("consentry.erasure")

RECEIPTS = "receipts/"
SEARCH_BATCH = 100  # nearest faces fetched per round (<= HNSW ef)


@dataclass
class Receipt:
    request_id: str
    by: str  # photo | source | job | url
    target: str  # source id, job id, url, or the reference photo's sha256
    actor: str
    requested_at: str
    completed_at: str = ""
    threshold: float | None = None
    reference_faces: int = 0
    matched_face_ids: list[str] = field(default_factory=list)
    deleted: dict[str, int] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def _delete_existing(store: ObjectStore, keys: list[str]) -> int:
    """Delete the keys that exist; returns how many did (so receipts count real deletions)."""
    present = [k for k in keys if store.exists(k)]
    return store.delete_many(present)


class FaceRemover:
    """Delete faces from Milvus and redact them in provenance (and drop their crops)."""

    def __init__(self, index: FaceIndex, provenance: ProvenanceStore) -> None:
        self.index = index
        self.provenance = provenance

    def remove(self, face_ids: Sequence[str], url_keys: Iterable[str], tag: str) -> dict[str, int]:
        face_ids = list(dict.fromkeys(face_ids))
        counts = {"milvus_faces": 0, "provenance_redacted": 0, "crops_deleted": 0}
        if not face_ids:
            return counts
        counts["milvus_faces"] = self.index.delete(face_ids)
        wanted = set(face_ids)
        for ukey in self._all_sightings(url_keys):
            prov = self.provenance.get(ukey)
            if prov is None or not wanted & {f.face_id for f in prov.faces}:
                continue
            faces = [f.model_copy(update={"erased": True}) if f.face_id in wanted else f for f in prov.faces]
            self.provenance.put(prov.model_copy(update={"faces": faces, "erased_by": [*prov.erased_by, tag]}))
            counts["provenance_redacted"] += 1
        counts["crops_deleted"] = _delete_existing(self.provenance.store,
                                                   [self.provenance.crop_key(f) for f in face_ids])
        return counts

    def _all_sightings(self, url_keys: Iterable[str]) -> list[str]:
        """The given URLs plus every other URL that carried the same bytes (dedup shares face ids)."""
        out = dict.fromkeys(url_keys)
        for ukey in list(out):
            prov = self.provenance.get(ukey)
            if prov is not None and prov.sha256:
                out.update(dict.fromkeys(self.provenance.image_urls(prov.sha256)))
        return list(out)


class Eraser:
    """The erasure entry class. Components arrive built; nothing here reads settings."""

    def __init__(self, index: FaceIndex, provenance: ProvenanceStore, store: ObjectStore, audit: AuditLog,
                 erasure_threshold: float, model_loader: Callable[[], Any] | None = None,
                 publish: Callable[[ErasureEvent], None] | None = None, max_pixels: int = 40_000_000) -> None:
        self.index = index
        self.provenance = provenance
        self.store = store
        self.audit = audit
        self.threshold = erasure_threshold
        self.model_loader = model_loader  # the face model is loaded on the first erasure by photo
        self.publish = publish
        self.max_pixels = max_pixels
        self.remover = FaceRemover(index, provenance)
        self.tombstones = Tombstones(store)

    # ------------------------------------------------------------------ by photo
    def forget_photo(self, photo: bytes, actor: str) -> Receipt:
        from ..imaging import decode

        if self.model_loader is None:
            raise NotFound("no face model configured for erasure by photo")
        model = self.model_loader()
        faces = model.analyze(decode(photo, max_pixels=self.max_pixels).bgr)
        if not faces:
            raise NoFaceFound("no face found in the reference photo; nothing can be matched")
        embs = [np.asarray(f.embedding, dtype=np.float32) for f in faces]
        r = self._receipt("photo", hashlib.sha256(photo).hexdigest(), actor)
        r.threshold = self.threshold
        r.reference_faces = len(embs)
        model_id = model.model_id
        # 1. suppression first, so ingest workers racing with us drop this person from now on
        r.deleted["suppression_added"] = self.index.suppress(embs, model_id, r.request_id)
        # 2. find and delete every matching face, round by round
        matched: dict[str, str] = {}
        for _ in range(1000):
            found = self._matches(embs, model_id)
            new = {fid: uk for fid, uk in found.items() if fid not in matched}
            if not found:
                break
            matched.update(found)
            counts = self.remover.remove(list(found), set(found.values()), r.request_id)
            for k, v in counts.items():
                r.deleted[k] = r.deleted.get(k, 0) + v
            if not new:
                break
        r.matched_face_ids = sorted(matched)
        # 3. verify with a fresh, strongly consistent search
        remaining = self._matches(embs, model_id)
        r.verification = {"method": f"search at threshold {self.threshold} (Strong consistency)",
                          "remaining": len(remaining), "ok": not remaining}
        return self._finish(r, ErasureEvent(request_id=r.request_id, by="photo", face_ids=r.matched_face_ids))

    def _matches(self, embs: list[np.ndarray], model_id: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for hits in self.index.search(embs, model_id, SEARCH_BATCH, self.threshold, strong=True,
                                      include_all_states=True):
            out.update({m.face_id: m.url_key for m in hits})
        return out

    # ------------------------------------------------------------------ by source / job / url
    def forget_source(self, source_id: str, actor: str) -> Receipt:
        check_id(source_id, "source")
        r = self._receipt("source", source_id, actor)
        self.tombstones.mark("source", source_id, datetime.now(timezone.utc), r.request_id)  # before deleting
        keys = self.provenance.keys_for_source(source_id)
        self._erase_scope(r, keys, lambda: self.index.face_ids(source_id=source_id),
                          lambda: self.index.delete_where(source_id=source_id),
                          lambda: self.index.count(source_id=source_id),
                          lambda: self.provenance.keys_for_source(source_id))
        return self._finish(r, ErasureEvent(request_id=r.request_id, by="source", source_id=source_id,
                                            face_ids=r.matched_face_ids))

    def forget_job(self, job_id: str, actor: str) -> Receipt:
        check_id(job_id, "job")
        r = self._receipt("job", job_id, actor)
        self.tombstones.mark("job", job_id, datetime.now(timezone.utc), r.request_id)
        keys = self.provenance.keys_for_job(job_id)
        self._erase_scope(r, keys, lambda: self.index.face_ids(job_id=job_id),
                          lambda: self.index.delete_where(job_id=job_id),
                          lambda: self.index.count(job_id=job_id),
                          lambda: self.provenance.keys_for_job(job_id))
        return self._finish(r, ErasureEvent(request_id=r.request_id, by="job", job_id=job_id,
                                            face_ids=r.matched_face_ids))

    def forget_url(self, url: str, actor: str) -> Receipt:
        ukey = url_key(url)
        r = self._receipt("url", url, actor)
        self.tombstones.mark("url", ukey, datetime.now(timezone.utc), r.request_id)
        prov = self.provenance.get(ukey)
        keys = [ukey] if prov is not None else []
        # faces are stored under the first sighting's url_key; a duplicate URL points at them
        ids = list(dict.fromkeys([*self.index.face_ids(url_key=ukey), *(prov.face_ids if prov else [])]))
        self._erase_scope(r, keys, lambda: ids, lambda: self.index.delete(ids),
                          lambda: self.index.count(url_key=ukey) + len(self.index.get(ids)),
                          lambda: [ukey] if self.provenance.get(ukey) else [])
        return self._finish(r, ErasureEvent(request_id=r.request_id, by="url", url_key=ukey,
                                            face_ids=r.matched_face_ids))

    def _erase_scope(self, r: Receipt, prov_keys: list[str], face_ids: Callable[[], list[str]],
                     delete_faces: Callable[[], int], count_faces: Callable[[], int],
                     remaining_keys: Callable[[], list[str]]) -> None:
        ids = face_ids()
        r.matched_face_ids = sorted(ids)
        deleted = {"milvus_faces": 0, "provenance_deleted": 0, "objects_deleted": 0, "crops_deleted": 0,
                   "provenance_redacted": 0}
        deleted["milvus_faces"] = delete_faces() if ids else 0
        doomed = set(prov_keys)
        shas: set[str] = set()
        for ukey in prov_keys:
            prov = self.provenance.get(ukey)
            if prov is None:
                continue
            if prov.sha256:
                shas.add(prov.sha256)
            deleted["objects_deleted"] += self.provenance.remove(prov)
            deleted["provenance_deleted"] += 1
        deleted["crops_deleted"] = _delete_existing(self.store, [self.provenance.crop_key(f) for f in ids])
        # other sightings of the same bytes (kept: another source/job/url) lose the shared faces
        survivors = {k for sha in shas for k in self.provenance.image_urls(sha)} - doomed
        if survivors and ids:
            wanted = set(ids)
            for ukey in survivors:
                prov = self.provenance.get(ukey)
                if prov is not None and wanted & {f.face_id for f in prov.faces}:
                    faces = [f.model_copy(update={"erased": True}) if f.face_id in wanted else f for f in prov.faces]
                    self.provenance.put(prov.model_copy(update={"faces": faces,
                                                                "erased_by": [*prov.erased_by, r.request_id]}))
                    deleted["provenance_redacted"] += 1
        r.deleted = deleted
        left_faces, left_keys = count_faces(), remaining_keys()
        r.verification = {"method": "count of faces and provenance left in scope (Strong consistency)",
                          "remaining": left_faces + len(left_keys), "ok": left_faces == 0 and not left_keys}

    # ------------------------------------------------------------------ receipts
    def _receipt(self, by: str, target: str, actor: str) -> Receipt:
        return Receipt(request_id=f"er-{time.strftime('%Y%m%d')}-{uuid.uuid4().hex[:12]}", by=by, target=target,
                       actor=actor, requested_at=_now_iso())

    def _finish(self, r: Receipt, event: ErasureEvent) -> Receipt:
        if r.by != "photo":  # the crawl-time records (refusals, pages read) that name the erased source, job or URL
            r.deleted["crawl_log_objects"] = CrawlLog(self.store).delete_for(**{r.by: r.target})
        r.completed_at = _now_iso()
        put_json(self.store, f"{RECEIPTS}{r.request_id}.json", r.to_dict())
        self.audit.append("erasure", r.actor, request_id=r.request_id, by=r.by, target=r.target,
                          matched=len(r.matched_face_ids), matched_face_ids=r.matched_face_ids[:1000],
                          deleted=r.deleted, verification=r.verification)
        if self.publish is not None:
            try:
                self.publish(event)
            except Exception:  # the erasure itself is done and recorded; in-flight work is also re-checked
                log.exception("could not publish erasure event %s", r.request_id)
        log.info("erasure %s by %s: %d faces, verification %s", r.request_id, r.by, len(r.matched_face_ids),
                 r.verification.get("ok"))
        return r

    def receipt(self, request_id: str) -> dict[str, Any]:
        try:
            return get_json(self.store, f"{RECEIPTS}{request_id}.json")
        except ObjectNotFound:
            raise NotFound(f"no erasure receipt {request_id!r}") from None
