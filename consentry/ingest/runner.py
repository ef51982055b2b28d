"""Running workers: the poll loop of one worker, and the driver that watches several.

- :class:`WorkerLoop` polls its IngestWorker until stopped, finishing the in-flight batch first
  (offsets committed, consumer closed), and reports whether it is idle.
- :func:`drive` watches a pool (threads here, Ray actors in :mod:`.raypool`), calls ``on_tick``
  with the merged stats once a tick, and returns on stop or, with ``until_idle``, when every worker
  has polled nothing for ``idle_seconds`` while holding its partition assignment as a settled group
  member (not rejoining, coordinator known). Nothing relies on
  ``end_offsets`` (wrong on tansu): idleness is observed, not computed from lag.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.errors import BrokerError, ConsentryError, DependencyError
from .circuit import Circuit
from .metrics import merge
from .worker import IngestWorker

log = logging.getLogger("consentry.ingest.runner")


def default_probe(worker: IngestWorker) -> Callable[[], dict[str, bool]]:
    """Ping what the worker's durable writes need: the object store, Milvus and (dead letters) Kafka."""
    def probe() -> dict[str, bool]:
        out = {"s3": worker.writer.store.ping(), "milvus": worker.writer.index.store.ping()}
        if worker.ping_broker is not None:
            out["kafka"] = bool(worker.ping_broker())
        return out
    return probe


class WorkerLoop:
    def __init__(self, worker: IngestWorker, name: str = "worker-0", clock: Callable[[], float] = time.monotonic,
                 circuit: Circuit | None = None) -> None:
        self.worker = worker
        self.circuit = circuit or Circuit(default_probe(worker))
        self.name = name
        self.clock = clock
        self.started = clock()
        self.last_activity = clock()
        self.assignment: frozenset[tuple[str, int]] = frozenset()
        self.running = False
        self.error: str | None = None
        self.fatal = False
        self.broker_ok = True
        self.busy = False
        self.settled = False  # the consumer is a stable member of its group (see Consumer.settled)
        self._broker_checked = 0.0
        self._backoff = 0.5
        self._lock = threading.Lock()

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set, then finish the batches in flight (their offsets committed); a fatal
        error is kept in ``error`` and ends the loop."""
        self.running = True
        try:
            while not stop.is_set():
                self.step(stop)
            self._finish()
        except (ConsentryError, Exception) as exc:  # non-transient dependency errors, bugs: stop loudly
            kind = "dependency" if isinstance(exc, DependencyError) else type(exc).__name__
            log.exception("%s stopped by a fatal %s error", self.name, kind)
            self.error = f"{type(exc).__name__}: {exc}"
            self.fatal = True
        finally:
            try:
                self.worker.close()
            finally:
                with self._lock:
                    self.busy = False
                self.running = False

    def step(self, stop: threading.Event) -> None:
        """One step: while the circuit is open, one probe (and its backoff); else one pump of the pipeline."""
        if self.circuit.is_open:  # a dependency outlived the retries: consume nothing until it answers again
            if self.circuit.try_close():
                with self._lock:
                    self.last_activity = self.clock()
            else:
                stop.wait(self.circuit.delay())
            return
        try:
            outcome = self.worker.pump()
            self._backoff = 0.5
        except BrokerError as exc:  # Kafka unreachable: nothing was consumed, try again
            log.warning("%s: poll failed: %s", self.name, exc)
            with self._lock:
                self.last_activity = self.clock()
            stop.wait(self._backoff)
            self._backoff = min(self._backoff * 2, 10.0)
            return
        with self._lock:
            self.busy = self.worker.in_flight > 0  # batches in flight (writes may block on a dependency)
            if outcome.records:
                self.last_activity = self.clock()
        self._observe(outcome.polled)
        if outcome.redeliver:
            self.circuit.open(f"{len(outcome.redeliver)} partition(s) left for redelivery")

    def _finish(self) -> None:
        """Graceful stop: the batches in flight finish and their offsets are committed."""
        try:
            self.worker.finish()
        except BrokerError as exc:  # nothing more can be committed: the records will be redelivered
            log.warning("%s: could not commit the last batches: %s", self.name, exc)

    def _observe(self, records: int) -> None:
        consumer = self.worker.consumer
        try:
            assignment = frozenset(consumer.assignment())
            settled = consumer.settled()
        except Exception:
            assignment, settled = self.assignment, False
        with self._lock:
            # a group that is (re)joining or looking for its coordinator polls nothing without reading:
            # that is waiting, not being drained
            if records or assignment != self.assignment or not settled:
                self.last_activity = self.clock()
            self.assignment = assignment
            self.settled = settled
        # an empty poll only means "drained" if the broker answers: kafka-python returns nothing,
        # without an error, while the broker is down
        ping = getattr(self.worker, "ping_broker", None)
        if records:
            self.broker_ok = True
        elif ping is not None and self.clock() - self._broker_checked >= 2.0:
            self._broker_checked = self.clock()
            ok = bool(ping())
            if not ok:
                with self._lock:
                    self.last_activity = self.clock()
            self.broker_ok = ok

    def status(self) -> dict[str, Any]:
        now = self.clock()
        with self._lock:
            return {"name": self.name, "pid": os.getpid(), "running": self.running, "error": self.error,
                    "assigned": len(self.assignment), "idle_s": now - self.last_activity,
                    "uptime_s": now - self.started, "stats": self.worker.stats.snapshot(),
                    "broker_ok": self.broker_ok, "busy": self.busy, "settled": self.settled,
                    **self.circuit.status()}


class Pool(Protocol):
    def start(self) -> None: ...
    def statuses(self) -> list[dict[str, Any] | None]: ...  # None: the worker is unreachable right now
    def stop(self, timeout_s: float) -> list[dict[str, Any] | None]: ...


class ThreadPool:
    """Workers as threads of this process (``--no-ray``): for debugging and fast tests."""

    def __init__(self, build: Callable[[int], IngestWorker], workers: int) -> None:
        self.build = build
        self.n = workers
        self.loops: list[WorkerLoop] = []
        self.threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def start(self) -> None:
        for k in range(self.n):
            loop = WorkerLoop(self.build(k), name=f"worker-{k}")
            t = threading.Thread(target=loop.run, args=(self._stop,), name=f"ingest-{k}", daemon=True)
            self.loops.append(loop)
            self.threads.append(t)
            t.start()

    def statuses(self) -> list[dict[str, Any] | None]:
        return [loop.status() for loop in self.loops]

    def stop(self, timeout_s: float = 60.0) -> list[dict[str, Any] | None]:
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return self.statuses()


@dataclass(frozen=True)
class IdlePolicy:
    idle_seconds: float
    join_grace_s: float = 20.0  # a worker that never gets partitions (more workers than partitions) counts
    #                             as idle after idle_seconds + this long


def is_idle(status: dict[str, Any] | None, policy: IdlePolicy) -> bool:
    if status is None or not status.get("running") or status.get("circuit") == "open" \
            or not status.get("broker_ok", True) or status.get("busy"):
        return False
    if status["assigned"]:
        return status["idle_s"] >= policy.idle_seconds
    return status["uptime_s"] >= policy.idle_seconds + policy.join_grace_s and status["idle_s"] >= policy.idle_seconds


def all_idle(statuses: list[dict[str, Any] | None], policy: IdlePolicy) -> bool:
    """Every worker idle, and the group holds partitions: when no member holds any (a broker that lost its
    partition metadata during a rebalance hands out empty assignments), nothing was consumed, not drained."""
    return all(is_idle(s, policy) for s in statuses) and any(s is not None and s["assigned"] for s in statuses)


class WorkerFailed(ConsentryError):
    reason = "worker-failed"


def drive(pool: Pool, stop: threading.Event, until_idle: bool, policy: IdlePolicy,
          on_tick: Callable[[dict[str, Any]], None] | None = None, tick_s: float = 1.0,
          stop_timeout_s: float = 120.0, unreachable_timeout_s: float = 180.0) -> dict[str, Any]:
    """Run the pool until ``stop`` is set or (``until_idle``) all workers are idle; stop it; return stats.

    Raises WorkerFailed when a worker reports a fatal error or stays unreachable (a Ray actor that
    is not coming back) for ``unreachable_timeout_s``.
    """
    pool.start()
    unreachable: dict[int, float] = {}
    try:
        while not stop.wait(tick_s):
            statuses = pool.statuses()
            failed = [s for s in statuses if s is not None and s.get("error")]
            if failed:
                raise WorkerFailed(f"{failed[0]['name']} failed: {failed[0]['error']}")
            now = time.monotonic()
            for k, st in enumerate(statuses):
                if st is None:
                    if now - unreachable.setdefault(k, now) > unreachable_timeout_s:
                        raise WorkerFailed(f"worker {k} unreachable for {unreachable_timeout_s:.0f}s")
                else:
                    unreachable.pop(k, None)
            if on_tick is not None:
                on_tick(summary(statuses))
            if until_idle and all_idle(statuses, policy):
                log.info("every worker idle for %.1fs: stopping", policy.idle_seconds)
                break
    finally:
        final = pool.stop(stop_timeout_s)
    return summary(final)


def summary(statuses: list[dict[str, Any] | None]) -> dict[str, Any]:
    live = [s for s in statuses if s is not None]
    out = merge([s["stats"] for s in live])
    out["workers"] = len(statuses)
    out["workers_reachable"] = len(live)
    out["circuits_open"] = sum(1 for s in live if s.get("circuit") == "open")
    out["waiting_for"] = sorted({d for s in live for d in s.get("waiting_for", [])})
    out["ready"] = bool(statuses) and len(live) == len(statuses) and all(
        s.get("running") and s.get("circuit") != "open" and not s.get("error") for s in live)
    return out
