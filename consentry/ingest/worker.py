"""IngestWorker: one Kafka consumer's records, pipelined from poll to durable writes and committed offsets.

Three stages overlap, each on its own threads, batch after batch::

    prepare (threads: parse, source, consent, fetch, decode, hash, dedup)   batch N+1
    faces   (one thread: detect + embed, one suppression search)          batch N
    write   (one thread + a pool: DLQ, one upsert, one re-check, S3)       batch N-1

Only the orchestrating thread (the caller of :meth:`pump`, :meth:`finish`, :meth:`process`)
touches the consumer — kafka-python's consumer is not thread-safe — so it alone polls, commits
and seeks. The stages are functions from one immutable outcome to the next (:mod:`.outcomes`).

Offset rules (at-least-once, exactly-once in effect through deterministic ids; :mod:`.offsets`):
- a record's offset is committed only after its durable writes succeeded, in offset order per
  partition, batch after batch;
- a record left Transient (a dependency outlived the RetryPolicy) stops its partition: nothing
  from it on is committed; polling stops, the batches already in flight finish (their results
  for that partition from that offset on are discarded, and the stages skip them), then the
  consumer is rewound to it and the caller pauses (the circuit) before polling again;
- in-flight work is bounded: at most ``max_in_flight`` batches, and image bytes + pixels held
  by them within ``max_in_flight_bytes`` (:mod:`.budget`).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from ..clients.broker import Consumer, Message
from ..core.errors import DependencyError
from ..core.retry import RetryPolicy
from .budget import InFlightBytes
from .embed import FaceStage
from .metrics import IngestStats
from .offsets import TP, Rewinds, plan
from .outcomes import Outcome, Prepared, Result, ToEmbed, Transient, Written
from .prepare import Preparer
from .write import Writer

log = logging.getLogger("consentry.ingest")
PHASES = ("prepare", "faces", "write")


@dataclass
class BatchOutcome:
    """What one step finished: records, what was committed, where partitions were rewound."""

    records: int = 0  # records of the batches finished in this step
    polled: int = 0  # records polled in this step
    committed: dict[TP, int] = field(default_factory=dict)
    redeliver: dict[TP, int] = field(default_factory=dict)  # partitions rewound (the consumer was seeked)
    results: list[Result] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase, summed over batches
    cpu: dict[str, float] = field(default_factory=dict)  # process CPU per phase (exact only without overlap)

    def add(self, other: BatchOutcome) -> None:
        self.records += other.records
        self.polled += other.polled
        self.committed.update(other.committed)
        self.redeliver.update(other.redeliver)
        self.results += other.results
        for k, v in other.seconds.items():
            self.seconds[k] = self.seconds.get(k, 0.0) + v
        for k, v in other.cpu.items():
            self.cpu[k] = self.cpu.get(k, 0.0) + v


@dataclass
class _Batch:
    seq: int
    msgs: list[Message]
    started: float
    cpu0: float
    future: Future | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)


class IngestWorker:
    """Processes ``images`` records from its consumer. Entry point of the ingest stage."""

    def __init__(self, consumer: Consumer, preparer: Preparer, faces: FaceStage, writer: Writer, stats: IngestStats,
                 retry: RetryPolicy, budget: InFlightBytes, max_poll_records: int = 16, poll_timeout_s: float = 1.0,
                 fetch_concurrency: int = 4, max_in_flight: int = 3) -> None:
        self.consumer = consumer
        self.prepare = preparer
        self.faces = faces
        self.writer = writer
        self.stats = stats
        self.retry = retry
        self.budget = budget
        self.max_poll_records = max_poll_records
        self.poll_timeout_s = poll_timeout_s
        self.max_in_flight = max(1, max_in_flight)
        self.rewinds = Rewinds()
        self.ping_broker: Callable[[], bool] | None = None  # set by the wiring; the loop's idle check uses it
        self._prepare_pool = ThreadPoolExecutor(max(1, fetch_concurrency), thread_name_prefix="ingest-prepare")
        self._faces_thread = ThreadPoolExecutor(1, thread_name_prefix="ingest-faces")
        self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="ingest-write")
        self._inflight: deque[_Batch] = deque()
        self._seq = 0

    @property
    def in_flight(self) -> int:
        """Batches polled and not yet finished (committed or left for redelivery)."""
        return len(self._inflight)

    # ------------------------------------------------------------------ the pipelined loop
    def pump(self) -> BatchOutcome:
        """One step: finish what is done (commit), then poll the next batch if there is room, else wait.

        Raises BrokerError when Kafka is unreachable, and whatever a stage raised that is fatal."""
        out = self._harvest()
        if out.redeliver:  # rewound: the caller pauses (circuit) before polling again
            return out
        room = len(self._inflight) < self.max_in_flight and not self.budget.full
        if room and not self.rewinds:  # wait for records only when there is nothing else to do
            timeout = self.poll_timeout_s if not (self._inflight or out.records) else min(self.poll_timeout_s, 0.05)
            msgs = self.consumer.poll(timeout, self.max_poll_records)
            if msgs:
                self._submit(msgs)
                out.polled = len(msgs)
        elif self._inflight:
            _wait(self._inflight[0].future, self.poll_timeout_s)
            out.add(self._harvest())
        return out

    def finish(self) -> BatchOutcome:
        """Graceful stop: poll nothing more, let the batches in flight finish, commit what they wrote."""
        return self._harvest(block=True)

    # ------------------------------------------------------------------ one batch at a time
    def poll_once(self) -> BatchOutcome:
        """Poll one batch and process it to the end (no overlap); raises BrokerError when Kafka is unreachable."""
        msgs = self.consumer.poll(self.poll_timeout_s, self.max_poll_records)
        return self.process(msgs) if msgs else BatchOutcome()

    def process(self, msgs: list[Message]) -> BatchOutcome:
        """``msgs`` through every stage, then offsets (after whatever was in flight before them)."""
        self._submit(msgs)
        return self._harvest(block=True)

    def close(self) -> None:
        for pool in (self._prepare_pool, self._faces_thread, self._write_thread):
            pool.shutdown(wait=True)
        self.writer.close()
        self.prepare.fetcher.close()
        self.consumer.close()

    # ------------------------------------------------------------------ the stages
    def _submit(self, msgs: list[Message]) -> None:
        self._seq += 1
        b = _Batch(self._seq, list(msgs), time.perf_counter(), time.process_time())
        prepared = [self._prepare_pool.submit(self.prepare, m, b.seq) for m in b.msgs]
        faced = self._faces_thread.submit(self._faces_step, b, prepared)
        b.future = self._write_thread.submit(self._write_step, b, faced)
        self._inflight.append(b)

    def _faces_step(self, b: _Batch, prepared: list[Future]) -> list[Outcome]:
        self.budget.advance(b.seq)  # this batch is next for the model: its reservations may go over the limit
        items: list[Prepared] = [f.result() for f in prepared]
        t, c = time.perf_counter(), time.process_time()
        b.seconds["prepare"], b.cpu["prepare"] = t - b.started, c - b.cpu0
        stale = [k for k, i in enumerate(items) if isinstance(i, ToEmbed) and self.rewinds.stale(i.msg)]
        for k in stale:  # an earlier record of its partition is being rewound: it will come again
            self.budget.release(items[k].reserved)  # type: ignore[union-attr]
            items[k] = Transient(items[k].msg, "rewound")
        todo = [k for k, i in enumerate(items) if isinstance(i, ToEmbed)]
        if todo:
            for k, o in zip(todo, self.faces.run([items[k] for k in todo])):  # type: ignore[misc]
                items[k] = o
        b.seconds["faces"], b.cpu["faces"] = time.perf_counter() - t, time.process_time() - c
        return items  # type: ignore[return-value]

    def _write_step(self, b: _Batch, faced: Future) -> list[Result]:
        items: list[Outcome] = faced.result()
        t, c = time.perf_counter(), time.process_time()
        items = [Transient(i.msg, "rewound") if self.rewinds.stale(i.msg) else i for i in items]
        results = self.writer.write(items)
        b.seconds["write"], b.cpu["write"] = time.perf_counter() - t, time.process_time() - c
        return results

    # ------------------------------------------------------------------ offsets
    def _harvest(self, block: bool = False) -> BatchOutcome:
        """Commit the finished batches at the head of the queue, in order; seek once a rewind has drained."""
        out = BatchOutcome()
        while self._inflight and (block or self._inflight[0].future.done()):  # type: ignore[union-attr]
            b = self._inflight.popleft()
            results: list[Result] = b.future.result()  # type: ignore[union-attr]
            p = plan(results, self.rewinds.snapshot())
            if p.commit:
                try:
                    self._commit(p.commit)
                    out.committed.update(p.commit)
                except DependencyError as exc:  # the writes are durable and idempotent: a later commit covers them
                    self.stats.commit_failed()
                    log.warning("commit failed, records may be redelivered (replay is idempotent): %s", exc)
            if p.rewind:
                self.rewinds.add(p.rewind)
            for w in p.done:
                self._count(w)
            out.add(BatchOutcome(records=len(b.msgs), results=results, seconds=b.seconds, cpu=b.cpu))
        if self.rewinds and not self._inflight:
            seek = getattr(self.consumer, "seek", None)
            for (topic, partition), offset in self.rewinds.take().items():
                self.stats.redelivery()
                if seek is not None:
                    seek(topic, partition, offset)
                out.redeliver[(topic, partition)] = offset
        return out

    def _commit(self, offsets: dict[TP, int]) -> None:
        self.retry.call(lambda: self.consumer.commit(offsets), "commit offsets")

    def _count(self, w: Written) -> None:
        if w.decision == "dead-letter":
            self.stats.dead_letter(w.error_class or "error")
        elif w.decision == "index":
            self.stats.indexed(w.faces)
        else:
            self.stats.refused_for(w.reason)
        self.stats.record()
        m = w.msg
        fields = {"url_key": m.key.decode("utf-8", "replace") if m.key else None, "partition": m.partition,
                  "offset": m.offset, "decision": w.decision, "reason": w.reason, "faces": w.faces}
        log.info("ingested %s", " ".join(f"{k}={v}" for k, v in fields.items()), extra={"ingest": fields})


def _wait(future: Future | None, timeout: float) -> None:
    from concurrent.futures import wait

    if future is not None:
        wait([future], timeout=timeout)
