"""Physical purge after an erasure: Milvus compaction and no old S3 versions of erased objects.

A Milvus delete is logical: the rows stay in their segment files until a compaction rewrites the
segment, and the old files stay until Milvus's garbage collection removes them
(``dataCoord.gc.dropTolerance``, 3 h by default). :class:`Purger` flushes the buffered deletes, asks
Milvus to compact the collection (Milvus 2.3 rewrites the segments that hold deletions once
``dataCoord.compaction.single.ratio.threshold`` of them is deleted; the local stack sets it low so
every erasure's segments are rewritten) and then compares the rows held in sealed segments with
the live rows: equal means no deleted face is left in any segment. The receipt records when that
was seen and when the old files are removed at the latest.

S3: a bucket without versioning removes a deleted object. If versioning is (or was) enabled, the
eraser deletes every stored version of each object it deleted and the older versions of each
object it rewrote (redacted provenance), through :class:`RecordingStore`, which notes the keys.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from ..clients.objectstore import ObjectStore
from ..faceindex import FaceIndex

#: what the receipt says a Milvus without a compaction API does
LITE_NOTE = ("this Milvus (milvus-lite) has no compaction API: deleted rows leave its files when it compacts "
             "on its own; use Milvus server for a recorded purge")


class RecordingStore:
    """An object store that notes which keys were deleted or rewritten through it (for version purges)."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self.bucket = store.bucket
        self.deleted: set[str] = set()
        self.rewritten: set[str] = set()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def put(self, key: str, data: bytes, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self.rewritten.add(key)
        self._store.put(key, data, *args, **kwargs)

    def delete(self, key: str) -> None:
        with self._lock:
            self.deleted.add(key)
        self._store.delete(key)

    def delete_many(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        with self._lock:
            self.deleted.update(keys)
        return self._store.delete_many(keys)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


class Purger:
    #: while deleted rows remain, compaction is asked for again this often
    RETRY_EVERY_S = 5.0

    def __init__(self, index: FaceIndex, store: ObjectStore, timeout_s: float = 300.0,
                 gc_drop_tolerance_s: int = 10800, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.index = index
        self.store = store
        self.timeout_s = timeout_s
        self.gc_drop_tolerance_s = gc_drop_tolerance_s
        self.clock = clock
        self.sleep = sleep
        self._versioning: str | None = None

    def versioning(self) -> str:
        if self._versioning is None:
            self._versioning = self.store.versioning()
        return self._versioning

    def s3(self, touched: RecordingStore) -> dict[str, Any]:
        """Delete the old versions of what an erasure deleted or rewrote (nothing to do without versioning)."""
        v = self.versioning()
        if v == "off":
            return {"versioning": "off", "old_versions_deleted": 0,
                    "note": "bucket versioning is off: a delete removes the object, no old version is kept"}
        n = self.store.purge_versions(sorted(touched.deleted))
        n += self.store.purge_versions(sorted(touched.rewritten - touched.deleted), keep_latest=True)
        return {"versioning": v, "old_versions_deleted": n,
                "note": "every version of the deleted objects and the older versions of the redacted ones deleted"}

    def milvus(self) -> dict[str, Any]:
        """Compact until no deleted row is left in a segment, or timeout_s; report what was seen.

        Milvus may finish a compaction without rewriting a segment (one whose index is still being built;
        one below minSegmentNumRowsToEnableIndex, 1024 rows, waits longer): while deleted rows remain,
        compaction is asked for again every RETRY_EVERY_S."""
        t0 = self.clock()
        out: dict[str, Any] = {"triggered_at": _iso(t0), "compactions": 0}
        while True:
            job = self.index.compact()
            if job is None:
                return {"state": "unsupported", "note": LITE_NOTE}
            out.update(compaction_id=job, compactions=out["compactions"] + 1)
            while not self.index.compaction_done(job):
                if self.clock() - t0 > self.timeout_s:
                    return {**out, "state": "timeout", "note": f"compaction still running after "
                            f"{self.timeout_s:.0f}s; `consentry forget --finish REQUEST_ID` checks again"}
                self.sleep(0.5)
            done = self.clock()
            stored, live = self.index.stored_rows(), self.index.count()
            left = max(0, (stored or 0) - live)
            out.update(compacted_at=_iso(done), seconds=round(done - t0, 3), segment_rows=stored, live_rows=live,
                       deleted_rows_in_segments=left)
            if not left:
                tolerance = timedelta(seconds=self.gc_drop_tolerance_s)
                return {**out, "state": "compacted", "files_removed_by": _iso(done + self.gc_drop_tolerance_s),
                        "note": "no deleted face is left in any segment; Milvus's garbage collection removes the old "
                        f"segment files within dataCoord.gc.dropTolerance ({tolerance})"}
            if done - t0 > self.timeout_s:
                return {**out, "state": "partial", "note": f"{left} deleted rows (of any erasure or sweep) are still "
                        f"in segments after {self.timeout_s:.0f}s: Milvus rewrites a segment once "
                        "dataCoord.compaction.single.ratio.threshold of it is deleted (0.2 by default); set it lower "
                        "(DATACOORD_COMPACTION_SINGLE_RATIO_THRESHOLD), then `consentry forget --finish REQUEST_ID`"}
            self.sleep(self.RETRY_EVERY_S)
