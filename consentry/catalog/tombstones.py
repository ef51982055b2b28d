"""Erasure tombstones: when a source, job or URL was erased, in the system of record.

The eraser writes the tombstone *before* it deletes anything; an ingest worker checks, after its
writes and before it commits the offset, whether the record's source, job or URL was erased after
the record was discovered, and undoes its writes if so. S3 is read-after-write consistent, so
there is no window in which in-flight work can slip past an erasure (a Kafka event alone leaves
one). A later crawl of the same source, discovered after the erasure, is not affected.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ..clients.objectstore import ObjectStore
from ..core.errors import ObjectNotFound

PREFIX = "erasures/scopes/"
Kind = Literal["source", "job", "url"]


class Tombstones:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @staticmethod
    def key(kind: Kind, value: str) -> str:
        return f"{PREFIX}{kind}/{value}"

    def mark(self, kind: Kind, value: str, at: datetime, request_id: str) -> None:
        self.store.put(self.key(kind, value), f"{at.isoformat()} {request_id}".encode(), content_type="text/plain")

    def erased_at(self, kind: Kind, value: str) -> datetime | None:
        found = self.get(kind, value)
        return found[0] if found else None

    def get(self, kind: Kind, value: str) -> tuple[datetime, str] | None:
        """(when, erasure request id) of the tombstone, or None."""
        try:
            text = self.store.get(self.key(kind, value)).decode()
        except ObjectNotFound:
            return None
        at, _, request_id = text.partition(" ")
        return datetime.fromisoformat(at), request_id
