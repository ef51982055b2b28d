"""Provenance records (one per image URL) and the by-bytes index used for dedup."""

from __future__ import annotations

import time
from collections.abc import Iterator

from ..clients.objectstore import ObjectStore
from ..core.errors import ObjectNotFound
from ..core.records import Provenance, url_key

PROV_PREFIX = "provenance/"
BY_SOURCE_PREFIX = "by-source/"
BY_JOB_PREFIX = "by-job/"
IMAGE_PREFIX = "images/"
CROP_PREFIX = "crops/"


class ProvenanceStore:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @staticmethod
    def key(ukey: str) -> str:
        return f"{PROV_PREFIX}{ukey[:2]}/{ukey}.json"

    @staticmethod
    def crop_key(face_id: str) -> str:
        return f"{CROP_PREFIX}{face_id[:2]}/{face_id}.jpg"

    # ------------------------------------------------------------------------ provenance
    def put(self, prov: Provenance) -> None:
        """Write the record, then its markers under by-source/ and by-job/ (listable by prefix)."""
        tags = {"source": prov.source_id, "job": prov.job_id, "decision": prov.decision.value}
        self.store.put(self.key(prov.key), prov.to_json(), content_type="application/json", tags=tags)
        self.store.put(f"{BY_SOURCE_PREFIX}{prov.source_id}/{prov.key}", b"", content_type="text/plain")
        self.store.put(f"{BY_JOB_PREFIX}{prov.job_id}/{prov.key}", b"", content_type="text/plain")

    def keys_for_source(self, source_id: str) -> list[str]:
        p = f"{BY_SOURCE_PREFIX}{source_id}/"
        return [k[len(p):] for k in self.store.list(p)]

    def keys_for_job(self, job_id: str) -> list[str]:
        p = f"{BY_JOB_PREFIX}{job_id}/"
        return [k[len(p):] for k in self.store.list(p)]

    def remove(self, prov: Provenance) -> int:
        """Delete a provenance record, its markers and its place in the by-bytes index. Returns objects deleted."""
        keys = [self.key(prov.key), f"{BY_SOURCE_PREFIX}{prov.source_id}/{prov.key}",
                f"{BY_JOB_PREFIX}{prov.job_id}/{prov.key}"]
        self.store.delete_many(keys)
        if prov.sha256:
            self.remove_image_url(prov.sha256, prov.key)
        return len(keys)

    def get(self, ukey: str) -> Provenance | None:
        try:
            return Provenance.from_json(self.store.get(self.key(ukey)))
        except ObjectNotFound:
            return None

    def for_url(self, url: str) -> Provenance | None:
        return self.get(url_key(url))

    def delete(self, ukey: str) -> None:
        self.store.delete(self.key(ukey))

    def keys(self) -> Iterator[str]:
        for k in self.store.list(PROV_PREFIX):
            if k.endswith(".json"):
                yield k.rsplit("/", 1)[1][:-5]

    def all(self) -> Iterator[Provenance]:
        for k in self.keys():
            p = self.get(k)
            if p is not None:
                yield p

    # ------------------------------------------------------------------------ by bytes
    # One marker object per (bytes, URL): images/{sha[:2]}/{sha}/{url_key}, body = first-seen time in ns.
    # Writers never read-modify-write a shared list, so concurrent workers cannot lose a sighting.
    @staticmethod
    def _image_prefix(sha256: str) -> str:
        return f"{IMAGE_PREFIX}{sha256[:2]}/{sha256}/"

    def image_urls(self, sha256: str) -> list[str]:
        """URL keys whose bytes hashed to ``sha256``, first sighting first."""
        prefix = self._image_prefix(sha256)
        seen = []
        for k in self.store.list(prefix):
            try:
                t = int(self.store.get(k) or b"0")
            except (ObjectNotFound, ValueError):
                continue
            seen.append((t, k[len(prefix):]))
        return [u for _, u in sorted(seen)]

    def add_image_url(self, sha256: str, ukey: str) -> list[str]:
        self.mark_image_url(sha256, ukey)
        return self.image_urls(sha256)

    def mark_image_url(self, sha256: str, ukey: str) -> None:
        """Record that ``ukey`` served ``sha256`` (first sighting kept), without reading the index back."""
        self.store.put_if_absent(self._image_prefix(sha256) + ukey, str(time.time_ns()).encode(), "text/plain")

    def remove_image_url(self, sha256: str, ukey: str) -> None:
        self.store.delete(self._image_prefix(sha256) + ukey)
