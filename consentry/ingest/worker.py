"""IngestWorker: one Kafka consumer's batches, from records to durable writes and committed offsets.

A batch goes: prepare every record (thread pool: parse, source, consent, fetch, decode, dedup) →
detect + embed the images that need it in ``analyze_batch`` calls → suppression check for every
face in one Milvus search → provenance and Face rows → writes in offset order → commit.

Offset rules (at-least-once, exactly-once in effect through deterministic ids):
- a record's offset is committed only after its durable writes succeeded (Milvus + S3, or the
  DLQ flush + S3 for a permanent failure);
- when a transient dependency failure outlives the RetryPolicy, that record and every later one
  of its partition in this batch are left uncommitted and the consumer seeks back to it, so the
  next poll redelivers it; nothing is lost and a replay rewrites the same keys.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..catalog.tombstones import Tombstones
from ..clients.broker import Consumer, Message
from ..core.errors import DependencyError
from ..core.records import Decision, Face, FaceRef, utcnow
from ..core.retry import RetryPolicy
from ..imaging import face_crop_jpeg
from .deadletter import DeadLetterSink
from .decide import ConsentDecider
from .embed import FaceStage
from .metrics import IngestStats
from .prepare import Item, Preparer, State, expiry
from .write import Writer

log = logging.getLogger("consentry.ingest")


@dataclass
class BatchOutcome:
    records: int = 0
    committed: dict[tuple[str, int], int] = field(default_factory=dict)  # what was committed
    redeliver: dict[tuple[str, int], int] = field(default_factory=dict)  # where the consumer was rewound to
    items: list[Item] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per phase: prepare, faces, write


class IngestWorker:
    """Processes batches of ``images`` records from its consumer. Entry point of the ingest stage."""

    def __init__(self, consumer: Consumer, preparer: Preparer, faces: FaceStage, writer: Writer,
                 dlq: DeadLetterSink, stats: IngestStats, retry: RetryPolicy, retention_max_days: int,
                 store_crops: bool = False, max_poll_records: int = 16, poll_timeout_s: float = 1.0,
                 fetch_concurrency: int = 4) -> None:
        self.consumer = consumer
        self.prepare = preparer
        self.faces = faces
        self.writer = writer
        self.dlq = dlq
        self.stats = stats
        self.retry = retry
        self.retention_max_days = retention_max_days
        self.store_crops = store_crops
        self.max_poll_records = max_poll_records
        self.poll_timeout_s = poll_timeout_s
        self._pool = ThreadPoolExecutor(max_workers=max(1, fetch_concurrency), thread_name_prefix="ingest-fetch")
        self.ping_broker: Callable[[], bool] | None = None  # set by the wiring; the loop's idle check uses it
        self.tombstones: Tombstones | None = None  # set by the wiring: erasures of in-flight records

    # ------------------------------------------------------------------ the loop's one step
    def poll_once(self) -> BatchOutcome:
        """Poll one batch and process it; raises BrokerError when Kafka is unreachable."""
        msgs = self.consumer.poll(self.poll_timeout_s, self.max_poll_records)
        return self.process(msgs) if msgs else BatchOutcome()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.consumer.close()

    # ------------------------------------------------------------------ a batch
    def process(self, msgs: list[Message]) -> BatchOutcome:
        t0 = time.perf_counter()
        items = list(self._pool.map(self.prepare, msgs))
        t1 = time.perf_counter()
        try:
            self._embed([i for i in items if i.state is State.EMBED])
        except DependencyError as exc:  # the suppression list could not be read: redeliver those records
            if not exc.transient:
                raise
            for i in items:
                if i.state is State.EMBED:
                    i.state, i.error = State.TRANSIENT, exc
        for i in items:
            if i.state is State.REUSE:
                self._finish_reuse(i)
        t2 = time.perf_counter()
        out = self._write_and_commit(items)
        out.seconds = {"prepare": t1 - t0, "faces": t2 - t1, "write": time.perf_counter() - t2}
        return out

    def _embed(self, items: list[Item]) -> None:
        """Detect + embed once per distinct image in the batch, then check the suppression list."""
        firsts: dict[str, Item] = {}
        followers: list[Item] = []
        for i in items:
            assert i.fp is not None
            if i.fp.sha256 in firsts:
                followers.append(i)
            else:
                firsts[i.fp.sha256] = i
        leaders = list(firsts.values())
        found = self.faces.detect([i.image.bgr for i in leaders])  # type: ignore[union-attr]
        ok = [(i, f) for i, f in zip(leaders, found) if isinstance(f, list)]
        for i, f in zip(leaders, found):
            if not isinstance(f, list):
                self.prepare.fail(i, "ingest.faces", f)
        flat = [face for _, fs in ok for face in fs]
        flags = self.retry.call(lambda: self.faces.suppressed([f.embedding for f in flat]), "suppression check")
        pos = 0
        for i, fs in ok:
            self._finish_embedded(i, fs, flags[pos:pos + len(fs)])
            pos += len(fs)
        for i in followers:  # same bytes as an earlier record of this batch: same faces, no second embedding
            lead = firsts[i.fp.sha256]  # type: ignore[union-attr]
            if lead.state is State.TRANSIENT:
                i.state, i.error = State.TRANSIENT, lead.error
            elif lead.state is State.DEAD:
                self.prepare.fail(i, "ingest.faces", lead.error or RuntimeError("face model failed"))
            else:
                self._finish_follower(i, lead)

    def _finish_embedded(self, i: Item, found: list, suppressed: list[bool]) -> None:
        assert i.verdict is not None and i.fp is not None and i.cand is not None and i.image is not None
        i.face_counts = (len(found), sum(suppressed))
        i.base_verdict = i.verdict
        i.verdict = ConsentDecider.after_suppression(i.verdict, *i.face_counts)
        now = utcnow()
        expires = expiry(now, i.source, self.retention_max_days)
        if i.verdict.refused:
            i.prov = i.provenance(Decision.REFUSE, i.verdict.reason, expires_at=expires)
            i.drop_bytes()
            i.state = State.READY
            return
        faces: dict[str, Face] = {}
        for f, sup in zip(found, suppressed):
            if sup:
                continue  # on the suppression list: never indexed, its embedding is dropped here
            fid = Face.make_id(i.fp.sha256, f.bbox, self.faces.model_id)
            faces[fid] = Face(face_id=fid, embedding=[float(v) for v in f.embedding], image_sha256=i.fp.sha256,
                              url_key=i.cand.key, bbox=tuple(round(v, 2) for v in f.bbox), det_score=f.score,
                              source_id=i.cand.source_id, job_id=i.cand.job_id, model_id=self.faces.model_id,
                              ingested_at=int(now.timestamp()), expires_at=int(expires.timestamp()))
            if self.store_crops:
                i.crops[fid] = _crop(i.image.rgb, f.bbox)
        i.faces = list(faces.values())
        refs = [FaceRef(face_id=f.face_id, bbox=f.bbox, score=f.det_score) for f in i.faces]
        i.prov = i.provenance(Decision.INDEX, i.verdict.reason, model_id=self.faces.model_id, faces=refs,
                              expires_at=expires, duplicate_of=i.sighting.first_url if i.sighting else None)
        i.drop_bytes()
        i.state = State.READY

    def _finish_follower(self, i: Item, lead: Item) -> None:
        """The same decision on the suppression list as the leader, this URL's own signals and expiry."""
        assert lead.prov is not None and i.verdict is not None
        i.face_counts = lead.face_counts
        i.base_verdict = i.verdict
        i.verdict = ConsentDecider.after_suppression(i.verdict, *lead.face_counts)
        expires = expiry(utcnow(), i.source, self.retention_max_days)
        if i.verdict.refused:
            i.prov = i.provenance(Decision.REFUSE, i.verdict.reason, expires_at=expires, duplicate_of=lead.prov.url)
        else:
            i.faces = lead.faces  # the same rows (same ids): upserting them again changes nothing
            i.prov = i.provenance(Decision.INDEX, i.verdict.reason, model_id=lead.prov.model_id,
                                  faces=lead.prov.faces, expires_at=expires, duplicate_of=lead.prov.url)
        i.drop_bytes()
        i.state = State.READY

    def _finish_reuse(self, i: Item) -> None:
        assert i.sighting is not None and i.sighting.indexed is not None and i.verdict is not None
        first = i.sighting.indexed
        i.prov = i.provenance(Decision.INDEX, i.verdict.reason, model_id=first.model_id, faces=first.faces,
                              expires_at=expiry(utcnow(), i.source, self.retention_max_days),
                              duplicate_of=i.sighting.first_url or first.url)
        i.state = State.READY

    # ------------------------------------------------------------------ durable writes, then offsets
    def _write_and_commit(self, items: list[Item]) -> BatchOutcome:
        out = BatchOutcome(records=len(items), items=items)
        by_tp: dict[tuple[str, int], list[Item]] = defaultdict(list)
        for i in items:
            by_tp[i.tp].append(i)
        commit: dict[tuple[str, int], int] = {}
        for tp, part in by_tp.items():
            part.sort(key=lambda i: i.msg.offset)
            next_offset: int | None = None
            for i in part:
                if i.state is State.TRANSIENT or not self._write(i):
                    out.redeliver[tp] = i.msg.offset
                    break
                next_offset = i.msg.offset + 1
            if next_offset is not None:
                commit[tp] = next_offset
        if commit:
            try:
                self.retry.call(lambda: self.consumer.commit(commit), "commit offsets")
                out.committed = commit
            except DependencyError as exc:  # the writes are durable and idempotent: a later commit covers them
                self.stats.commit_failed()
                log.warning("commit failed, records may be redelivered (replay is idempotent): %s", exc)
        for tp, offset in out.redeliver.items():
            self.stats.redelivery()
            seek = getattr(self.consumer, "seek", None)
            if seek is not None:
                seek(tp[0], tp[1], offset)
        if out.redeliver:
            time.sleep(self.retry.delay(2))  # let the dependency recover before the redelivery
        return out

    def _write(self, i: Item) -> bool:
        """The record's durable writes; False (record left for redelivery) when a dependency is down."""
        try:
            if i.state is State.DEAD:
                assert i.dead is not None
                self.dlq.send(i.dead)
                if i.prov is not None:
                    self.writer.refused(i.prov)
                self.stats.dead_letter(i.dead.error_class)
            else:
                assert i.prov is not None
                if i.prov.decision is Decision.INDEX:
                    self._write_indexed(i)  # may turn into a refusal (suppressed meanwhile)
                else:
                    self.writer.refused(i.prov)
                if self._erased_meanwhile(i):
                    self.stats.refused_for("erased")
                elif i.prov.decision is Decision.INDEX:
                    self.stats.indexed(len(i.prov.faces))
                else:
                    self.stats.refused_for(i.prov.reason)
        except DependencyError as exc:
            if not exc.transient:
                raise
            log.warning("durable write for %s[%d]@%d failed; it will be redelivered: %s",
                        i.msg.topic, i.msg.partition, i.msg.offset, exc)
            i.state, i.error = State.TRANSIENT, exc
            return False
        self.stats.record()
        fields = {"url_key": i.cand.key if i.cand else None, "partition": i.msg.partition, "offset": i.msg.offset,
                  "decision": "dead-letter" if i.dead else i.prov.decision.value if i.prov else None,
                  "reason": i.dead.reason if i.dead else i.prov.reason if i.prov else None,
                  "faces": len(i.prov.faces) if i.prov else 0}
        log.info("ingested %s", " ".join(f"{k}={v}" for k, v in fields.items()), extra={"ingest": fields})
        return True

    def _erased_meanwhile(self, i: Item) -> bool:
        """Was the record's source, job or URL erased after it was discovered? Then undo its writes.

        Checked after the writes and before the commit, against the tombstones the eraser writes
        before it deletes: either the eraser's deletion saw our rows, or we see its tombstone here.
        """
        if self.tombstones is None or i.cand is None or i.prov is None:
            return False
        c = i.cand
        for kind, value in (("source", c.source_id), ("job", c.job_id), ("url", c.key)):
            at = self.retry.call(lambda k=kind, v=value: self.tombstones.erased_at(k, v), "erasure tombstone")
            if at is not None and at >= c.discovered_at:
                self.writer.delete_faces(i.prov.face_ids)
                self.retry.call(lambda: self.writer.provenance.remove(i.prov), "remove provenance")
                log.info("dropped url_key=%s: its %s was erased at %s, after discovery", c.key, kind, at.isoformat())
                return True
        return False

    def _write_indexed(self, i: Item) -> None:
        """Faces, then a second look at the suppression list, then crops and provenance.

        The re-check after the upsert closes the race with an erasure by photo that suppressed this
        person while the batch was in flight: either the eraser's search sees our rows, or we see
        its suppression entry here and delete them ourselves.
        """
        assert i.prov is not None
        if i.faces:
            self.writer.upsert_faces(i.faces)
            flags = self.retry.call(lambda: self.faces.suppressed([f.embedding for f in i.faces]),
                                    "suppression re-check")
            if any(flags):
                gone = {f.face_id for f, s in zip(i.faces, flags) if s}
                self.writer.delete_faces(sorted(gone))
                i.faces = [f for f in i.faces if f.face_id not in gone]
                found, before = i.face_counts
                i.face_counts = (found, before + len(gone))
                base = i.base_verdict or i.verdict
                i.verdict = ConsentDecider.after_suppression(base, *i.face_counts)  # type: ignore[arg-type]
                refs = [r for r in i.prov.faces if r.face_id not in gone]
                decision, reason = i.verdict.decision, i.verdict.reason
                i.prov = i.prov.model_copy(update={"faces": refs if decision is Decision.INDEX else [],
                                                   "signals": list(i.verdict.signals), "decision": decision,
                                                   "reason": reason,
                                                   "model_id": i.prov.model_id if decision is Decision.INDEX else None})
        self.writer.finish(i.prov, i.crops)


def _crop(rgb, bbox) -> bytes:  # noqa: ANN001
    """The stored crop of one face: a 112x112 JPEG of its box with a small margin."""
    return face_crop_jpeg(rgb, bbox)
