"""Sources: what an operator may process, and on which basis."""

from __future__ import annotations

import builtins

from ..clients.objectstore import ObjectStore
from ..core.consent import matches_source
from ..core.errors import NotFound, ObjectNotFound
from ..core.records import Source, check_id

PREFIX = "sources/"


class SourceRegistry:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @staticmethod
    def key(source_id: str) -> str:
        return f"{PREFIX}{check_id(source_id, 'source')}.json"

    def put(self, source: Source) -> Source:
        self.store.put(self.key(source.id), source.to_json(), content_type="application/json",
                       tags={"basis": source.basis.value})
        return source

    def get(self, source_id: str) -> Source:
        try:
            return Source.from_json(self.store.get(self.key(source_id)))
        except ObjectNotFound:
            raise NotFound(f"no source named {source_id!r} (see `consentry source list`)") from None

    def find(self, source_id: str) -> Source | None:
        try:
            return self.get(source_id)
        except NotFound:
            return None

    def list(self) -> list[Source]:
        return [Source.from_json(self.store.get(k)) for k in self.store.list(PREFIX) if k.endswith(".json")]

    def remove(self, source_id: str) -> None:
        self.get(source_id)
        self.store.delete(self.key(source_id))

    def for_url(self, url: str) -> builtins.list[Source]:  # `list` here is the method above
        """Sources whose match covers ``url``."""
        return [s for s in self.list() if matches_source(s.match, url)]
