"""The durable writes of a batch, in an order that keeps the record of truth honest.

Per batch (one thread runs it, batch after batch):

1. dead letters: all sent, one flush (acks=all);
2. faces: one Milvus upsert of every face row (deterministic ids), then one Strong search of the
   suppression list for the same faces — an erasure by photo that suppressed someone while the
   batch was in flight is caught here: either the eraser's search saw our rows, or we see its
   entry and delete them ourselves;
3. per record, in parallel (records sharing a URL or bytes in order, one after the other): crops
   (if kept), then the provenance record, then the by-bytes dedup marker — a provenance record
   never names faces that were not written;
4. erasure tombstones, read after those writes: a record whose source, job or URL was erased
   after it was discovered has its writes undone (either the eraser saw our rows, or we see its
   tombstone here).

Every call retries transient DependencyErrors with the RetryPolicy; a record whose writes still
fail comes back as :class:`Transient` and its offset is not committed (a replay rewrites the
same keys).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..catalog.provenance import ProvenanceStore
from ..catalog.tombstones import Tombstones
from ..clients.objectstore import ObjectStore
from ..core.errors import DependencyError
from ..core.records import Decision, Provenance
from ..core.retry import RetryPolicy
from ..faceindex import FaceIndex
from .deadletter import DeadLetterSink
from .decide import after_suppression
from .outcomes import DeadLettered, Outcome, ReadyToWrite, Refused, Result, Transient, Written

log = logging.getLogger("consentry.ingest.write")


class Writer:
    def __init__(self, index: FaceIndex, provenance: ProvenanceStore, store: ObjectStore, dlq: DeadLetterSink,
                 retry: RetryPolicy, suppressed: Callable[[list], list[bool]], tombstones: Tombstones | None = None,
                 store_crops: bool = False, threads: int = 8) -> None:
        self.index = index
        self.provenance = provenance
        self.store = store
        self.dlq = dlq
        self.retry = retry
        self.suppressed = suppressed  # the faces stage's suppression-list check (same model, threshold)
        self.tombstones = tombstones
        self.store_crops = store_crops
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="ingest-write")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.dlq.close()

    # ------------------------------------------------------------------ a batch
    def write(self, outcomes: Sequence[Outcome]) -> list[Result]:
        """Results in the order of ``outcomes``: Written, or Transient (left for redelivery)."""
        items: list[Outcome] = list(outcomes)
        self._dead_letters(items)
        self._faces(items)
        self._objects(items)
        self._tombstones(items)
        return [o if isinstance(o, (Written, Transient)) else _written(o) for o in items]

    def _dead_letters(self, items: list[Any]) -> None:
        dead = [k for k, o in enumerate(items) if isinstance(o, DeadLettered)]
        try:
            self.dlq.send_many([items[k].letter for k in dead])
        except DependencyError as exc:
            self._transient(items, dead, "ingest.dlq", exc)

    def _faces(self, items: list[Any]) -> None:
        ready = [k for k, o in enumerate(items) if isinstance(o, ReadyToWrite) and o.faces]
        rows = list({f.face_id: f for k in ready for f in items[k].faces}.values())
        if not rows:
            return
        try:
            self.retry.call(lambda: self.index.upsert(rows), "upsert faces")
            flags = self.retry.call(lambda: self.suppressed([f.embedding for f in rows]), "suppression re-check")
            gone = {f.face_id for f, s in zip(rows, flags) if s}
            if gone:
                self.retry.call(lambda: self.index.delete(sorted(gone)), "delete suppressed faces")
        except DependencyError as exc:
            self._transient(items, ready, "ingest.faces", exc)
            return
        if gone:
            for k in ready:
                items[k] = _without(items[k], gone)

    def _objects(self, items: list[Any]) -> None:
        """Each record's S3 writes; groups that share a URL or bytes run in order, groups in parallel."""
        todo = [k for k, o in enumerate(items) if not isinstance(o, (Transient, Written))]
        for failed in self._pool.map(lambda g: self._write_group(items, g), _groups(items, todo)):
            for k, exc in failed:
                items[k] = Transient(items[k].msg, "ingest.write", exc)

    def _write_group(self, items: list[Any], group: list[int]) -> list[tuple[int, BaseException]]:
        for n, k in enumerate(group):
            try:
                self._write_objects(items[k])
            except DependencyError as exc:
                if not exc.transient:
                    raise
                log.warning("durable write for %s failed; it will be redelivered: %s", _where(items[k].msg), exc)
                return [(j, exc) for j in group[n:]]  # later records of the same URL wait for this one
        return []

    def _write_objects(self, o: Refused | DeadLettered | ReadyToWrite) -> None:
        prov = o.provenance
        if prov is None:  # a dead letter without a URL (unparseable record)
            return
        if isinstance(o, ReadyToWrite) and self.store_crops and o.crops:
            for face_id in prov.face_ids:
                if face_id in o.crops:
                    self._put_crop(face_id, o.crops[face_id])
        self.retry.call(lambda: self.provenance.put(prov), "put provenance")
        sha256 = prov.sha256
        if sha256:
            self.retry.call(lambda: self.provenance.mark_image_url(sha256, prov.key), "index image bytes")

    def _put_crop(self, face_id: str, jpeg: bytes) -> None:
        key = ProvenanceStore.crop_key(face_id)
        self.retry.call(lambda: self.store.put(key, jpeg, content_type="image/jpeg"), "put crop")

    def _tombstones(self, items: list[Any]) -> None:
        """Undo the writes of records whose source, job or URL was erased after they were discovered."""
        tombstones = self.tombstones
        if tombstones is None:
            return
        todo = [k for k, o in enumerate(items) if isinstance(o, (Refused, ReadyToWrite))]
        scopes = sorted({s for k in todo for s in _scopes(items[k])})
        try:
            erased = dict(zip(scopes, self._pool.map(
                lambda s: self.retry.call(lambda: tombstones.erased_at(*s), "erasure tombstone"), scopes)))
        except DependencyError as exc:
            self._transient(items, todo, "ingest.tombstones", exc)
            return
        for k in todo:
            o = items[k]
            hit = next(((kind, at) for kind, value in _scopes(o)
                        if (at := erased[(kind, value)]) is not None and at >= _discovered(o)), None)
            if hit is not None:
                items[k] = self._undo(o, *hit)

    def _undo(self, o: Refused | ReadyToWrite, kind: str, at: Any) -> Written | Transient:
        prov = o.provenance
        try:
            if prov.face_ids and isinstance(o, ReadyToWrite):
                self.retry.call(lambda: self.index.delete(prov.face_ids), "delete erased faces")
                crops = [ProvenanceStore.crop_key(f) for f in prov.face_ids]  # written just before, if kept
                self.retry.call(lambda: self.store.delete_many(crops), "delete erased crops")
            self.retry.call(lambda: self.provenance.remove(prov), "remove provenance")
        except DependencyError as exc:
            return Transient(o.msg, "ingest.tombstones", exc)
        log.info("dropped url_key=%s: its %s was erased at %s, after discovery", prov.key, kind, at.isoformat())
        return Written(o.msg, "erased", "erased")

    @staticmethod
    def _transient(items: list[Any], ks: Sequence[int], stage: str, exc: DependencyError) -> None:
        if not exc.transient:
            raise exc
        for k in ks:
            log.warning("durable write for %s failed; it will be redelivered: %s", _where(items[k].msg), exc)
            items[k] = Transient(items[k].msg, stage, exc)


def _written(o: Refused | DeadLettered | ReadyToWrite) -> Written:
    if isinstance(o, DeadLettered):
        return Written(o.msg, "dead-letter", o.letter.reason, error_class=o.letter.error_class)
    p = o.provenance
    return Written(o.msg, p.decision.value, p.reason, len(p.faces) if p.decision is Decision.INDEX else 0)


def _without(o: ReadyToWrite, gone: set[str]) -> ReadyToWrite | Refused:
    """The record after the re-check found more of its faces on the suppression list (now deleted)."""
    lost = [f for f in o.faces if f.face_id in gone]
    if not lost:
        return o
    assert o.before_suppression is not None
    suppressed = o.suppressed + len(lost)
    v = after_suppression(o.before_suppression, o.found, suppressed)
    refs = [r for r in o.provenance.faces if r.face_id not in gone]
    prov = o.provenance.model_copy(update={
        "faces": refs if v.decision is Decision.INDEX else [], "signals": list(v.signals), "decision": v.decision,
        "reason": v.reason, "model_id": o.provenance.model_id if v.decision is Decision.INDEX else None})
    if v.refused:
        return Refused(o.msg, prov)
    return ReadyToWrite(o.msg, prov, tuple(f for f in o.faces if f.face_id not in gone), o.crops,
                        o.before_suppression, o.found, suppressed)


def _groups(items: list[Any], ks: list[int]) -> list[list[int]]:
    """Records that share a URL or the same bytes, each group in batch (offset) order."""
    parent = {k: k for k in ks}

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    first: dict[str, int] = {}
    for k in ks:
        p: Provenance | None = items[k].provenance
        for key in ((p.key, p.sha256) if p else ()):
            if key is None:
                continue
            if key in first:
                parent[root(k)] = root(first[key])
            else:
                first[key] = k
    groups: dict[int, list[int]] = {}
    for k in ks:
        groups.setdefault(root(k), []).append(k)
    return list(groups.values())


def _scopes(o: Refused | ReadyToWrite) -> list[tuple[str, str]]:
    c = o.provenance
    return [("source", c.source_id), ("job", c.job_id), ("url", c.key)]


def _discovered(o: Refused | ReadyToWrite):
    from ..core.records import ImageCandidate

    return ImageCandidate.from_json(o.msg.value).discovered_at


def _where(msg: Any) -> str:
    return f"{msg.topic}[{msg.partition}]@{msg.offset}"
