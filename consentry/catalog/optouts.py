"""The do-not-train registry: imported opt-out lists in the object store, and the checks built on them.

Layout: ``optouts/lists/{name}.json`` — the list's name, date, when and from which file it was
imported, its entries, and the receipt of the erasure its import ran. ``ImageOptOutCheck`` is what
ingest calls after the bytes arrive and before any face work (registry match by URL, sha256 or
perceptual hash; the C2PA training-mining assertion).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..clients.objectstore import ObjectStore, get_json, put_json
from ..core.c2pa import c2pa_signals
from ..core.errors import NotFound, ObjectNotFound
from ..core.optouts import Entry, OptOutIndex
from ..core.records import Basis, Signal, check_id, utcnow

PREFIX = "optouts/lists/"


class OptOutRegistry:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @staticmethod
    def key(name: str) -> str:
        return f"{PREFIX}{check_id(name, 'list')}.json"

    def put(self, name: str, date: str, entries: Iterable[Entry], source_file: str = "",
            receipt: dict[str, Any] | None = None) -> dict[str, Any]:
        doc = {"name": check_id(name, "list"), "date": date, "imported_at": utcnow().isoformat(),
               "source_file": source_file, "entries": [{"type": e.kind, "value": e.value} for e in entries],
               "receipt": receipt}
        put_json(self.store, self.key(name), doc)
        return doc

    def get(self, name: str) -> dict[str, Any]:
        try:
            return get_json(self.store, self.key(name))
        except ObjectNotFound:
            raise NotFound(f"no do-not-train list {name!r} (see `consentry optout list`)") from None

    def names(self) -> list[str]:
        return sorted(k[len(PREFIX):-5] for k in self.store.list(PREFIX) if k.endswith(".json"))

    def lists(self) -> list[dict[str, Any]]:
        out = []
        for name in self.names():
            try:
                out.append(self.get(name))
            except NotFound:  # removed since it was listed
                continue
        return out

    def remove(self, name: str) -> None:
        self.get(name)
        self.store.delete(self.key(name))

    def index(self, phash_distance: int = 6) -> OptOutIndex:
        return OptOutIndex([(d["name"], d["date"], [Entry(e["type"], e["value"]) for e in d["entries"]])
                            for d in self.lists()], phash_distance)


class CachedOptOuts:
    """The registry's index, re-read at most every ``ttl_s``: a new list reaches running workers within it."""

    def __init__(self, registry: OptOutRegistry, phash_distance: int = 6, ttl_s: float = 30.0) -> None:
        self.registry = registry
        self.phash_distance = phash_distance
        self.ttl_s = ttl_s
        self._at = float("-inf")
        self._index: OptOutIndex | None = None
        self._lock = threading.Lock()

    def index(self) -> OptOutIndex:
        with self._lock:
            if self._index is None or time.monotonic() - self._at >= self.ttl_s:
                self._index = self.registry.index(self.phash_distance)
                self._at = time.monotonic()
            return self._index


class ImageOptOutCheck:
    """Opt-out signals from an image's bytes and hashes, checked after the bytes arrive and before any face work.

    - the do-not-train registry: the image URL, its page URL (domains, prefixes), its sha256 and
      perceptual hash (the nearest within ``phash_distance`` bits);
    - the C2PA training-mining assertion of its manifest (``read_c2pa``; only the manifest is read).
    """

    def __init__(self, optouts: CachedOptOuts | None, read_c2pa: bool = True) -> None:
        self.optouts = optouts
        self.read_c2pa = read_c2pa

    def __call__(self, url: str, page_url: str, body: bytes, image_format: str | None, sha256: str | None,
                 phash: str | None, basis: Basis) -> list[Signal]:
        signals: list[Signal] = []
        index = self.optouts.index() if self.optouts is not None else None
        if index:
            match = index.match_url(url) or index.match_url(page_url) or index.match_image(sha256, phash)
            signals.append(match.signal("image") if match else Signal(name="do-not-train", value="not listed",
                                                                       opt_out=False, scope="image"))
        if self.read_c2pa:
            signals.extend(c2pa_signals(body, basis, image_format))
        return signals


def list_date(value: str) -> str:
    """A list's date as given (YYYY-MM-DD); ValueError when it is not one."""
    return datetime.strptime(value.strip(), "%Y-%m-%d").date().isoformat()
