"""The durable writes for one image, in an order that keeps the record of truth honest.

Indexed: face rows (Milvus, upsert by deterministic id) → [the worker re-checks the suppression
list and deletes any face that matches now] → crops (if kept) → provenance (S3) → the by-bytes
dedup index. A provenance record therefore never names faces that were not written, and a replay
rewrites the same keys. Every call retries transient DependencyErrors with the RetryPolicy and
re-raises the last one: the caller then leaves the offset uncommitted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..catalog.provenance import ProvenanceStore
from ..clients.objectstore import ObjectStore
from ..core.records import Face, Provenance
from ..core.retry import RetryPolicy
from ..faceindex import FaceIndex


class Writer:
    def __init__(self, index: FaceIndex, provenance: ProvenanceStore, store: ObjectStore, retry: RetryPolicy,
                 store_crops: bool = False) -> None:
        self.index = index
        self.provenance = provenance
        self.store = store
        self.retry = retry
        self.store_crops = store_crops

    def upsert_faces(self, faces: Sequence[Face]) -> None:
        if faces:
            self.retry.call(lambda: self.index.upsert(faces), "upsert faces")

    def delete_faces(self, face_ids: Sequence[str]) -> None:
        if face_ids:
            self.retry.call(lambda: self.index.delete(face_ids), "delete suppressed faces")

    def finish(self, prov: Provenance, crops: Mapping[str, bytes] | None = None) -> None:
        """After the faces: their crops (if kept), then the provenance record and the by-bytes index."""
        if self.store_crops and crops:
            for face_id in prov.face_ids:
                if face_id in crops:
                    key = ProvenanceStore.crop_key(face_id)
                    self.retry.call(lambda k=key, d=crops[face_id]: self.store.put(k, d, content_type="image/jpeg"),
                                    "put crop")
        self.retry.call(lambda: self.provenance.put(prov), "put provenance")
        if prov.sha256:
            self.retry.call(lambda: self.provenance.add_image_url(prov.sha256, prov.key), "index image bytes")

    def refused(self, prov: Provenance) -> None:
        """A refusal or a permanent failure: the provenance record only (no bytes, no faces)."""
        self.finish(prov)
