"""Ingest workers as long-lived Ray actors, one Kafka consumer each, all in one consumer group.

Ray Data's Kafka reader is bounded, so each actor runs its own poll loop in a thread
(:class:`~consentry.ingest.runner.WorkerLoop`); the actor's methods (``status``, ``stop``) are
served beside it (threaded actor). A killed actor is restarted by Ray (``max_restarts``); its
uncommitted records are redelivered to whichever member holds the partition next.
Every ``ray.get`` has a timeout.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..core.errors import ConfigError, DependencyError
from ..core.settings import Settings
from .runner import WorkerFailed, WorkerLoop
from .worker import IngestWorker

log = logging.getLogger("consentry.ingest.ray")


def connect_ray(address: str | None, env: Mapping[str, str], timeout_s: float, local_cpus: int = 2,
                temp_dir: str | None = None) -> None:
    """Connect this process to the Ray cluster at ``address``, or start an in-process Ray (``address`` None).

    ``env`` holds Ray's own variables (token auth, loopback) and is put in the environment first: Ray
    reads them there. A cluster that does not answer yet, or a local Ray that misses its start-up
    deadline (Ray gives its raylet 30 s, which a loaded machine can miss), is tried again until
    ``timeout_s``; then DependencyError. No-op when Ray is already initialised in this process.
    """
    os.environ.update(env)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return
    kw: dict[str, Any] = dict(log_to_driver=False, namespace="consentry", logging_level=logging.WARNING)
    if address is None:
        kw.update(num_cpus=local_cpus, object_store_memory=256 * 1024 * 1024, include_dashboard=False)
        if temp_dir:
            kw["_temp_dir"] = temp_dir
    deadline = time.monotonic() + timeout_s
    attempt = 0
    while True:
        attempt += 1
        try:
            ray.init(address=address, **kw)
            return
        except Exception as exc:
            ray.shutdown()
            what = f"Ray at {address}" if address else "a local Ray"
            if time.monotonic() + 2.0 >= deadline:
                raise DependencyError(f"cannot connect to {what} within {timeout_s:.0f}s ({attempt} tries): "
                                      f"{type(exc).__name__}: {str(exc)[:300]}", reason="ray-unavailable",
                                      transient=False) from None
            log.warning("%s did not answer (%s: %s); trying again", what, type(exc).__name__, str(exc)[:200])
            time.sleep(min(2.0 * attempt, 10.0, max(0.0, deadline - time.monotonic() - 1)))


class _IngestActor:
    """The body of one Ray actor: builds its worker and runs its loop in a thread."""

    def __init__(self, settings: Settings, index: int, build: Callable[[Settings], IngestWorker]) -> None:
        logging.basicConfig(level=settings.log_level,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.loop = WorkerLoop(build(settings), name=f"ray-worker-{index}")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.loop.run, args=(self._stop,), name="ingest-loop", daemon=True)
        self._thread.start()

    def status(self) -> dict[str, Any]:
        return self.loop.status()

    def stop(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """Finish the in-flight batch (commit), close the consumer, report."""
        self._stop.set()
        self._thread.join(timeout_s)
        return self.loop.status()

    def pid(self) -> int:
        return os.getpid()


class RayPool:
    """``workers`` actors with ``num_cpus=ingest_worker_cpus`` (and ``num_gpus`` when configured), spread
    over the cluster's nodes."""

    def __init__(self, settings: Settings, workers: int, build: Callable[[Settings], IngestWorker],
                 call_timeout_s: float = 30.0, start_timeout_s: float | None = None, max_restarts: int = 3) -> None:
        if workers < 1:
            raise ConfigError("--workers must be at least 1")
        self.settings = settings
        self.build = build  # a module-level function: each actor builds its own worker from the settings
        self.n = workers
        self.call_timeout_s = call_timeout_s
        self.start_timeout_s = settings.ingest_actor_start_timeout_s if start_timeout_s is None else start_timeout_s
        self.max_restarts = max_restarts
        self.actors: list[Any] = []

    def start(self) -> None:
        import ray

        opts: dict[str, Any] = {"num_cpus": self.settings.ingest_worker_cpus, "max_concurrency": 4,
                                "max_restarts": self.max_restarts, "scheduling_strategy": "SPREAD"}
        if self.settings.ingest_worker_gpus > 0:
            opts["num_gpus"] = self.settings.ingest_worker_gpus
        cls = ray.remote(_IngestActor)
        self.actors = [cls.options(**opts).remote(self.settings, k, self.build) for k in range(self.n)]
        # wait for every actor's constructor (model load, Kafka connect): errors surface here
        from ray.exceptions import GetTimeoutError, RayActorError

        try:
            ray.get([a.pid.remote() for a in self.actors], timeout=self.start_timeout_s)
        except RayActorError as exc:
            cause = getattr(exc, "cause", None) or exc
            raise WorkerFailed(f"an ingest actor failed to start: {str(cause).strip().splitlines()[-1]}") from None
        except GetTimeoutError:
            raise WorkerFailed(f"ingest actors not started within {self.start_timeout_s:.0f}s "
                               "(not enough CPUs/GPUs for ingest_worker_cpus/gpus?)") from None

    def pids(self) -> list[int]:
        import ray

        return ray.get([a.pid.remote() for a in self.actors], timeout=self.call_timeout_s)

    def statuses(self) -> list[dict[str, Any] | None]:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        out: list[dict[str, Any] | None] = []
        refs = [a.status.remote() for a in self.actors]
        for ref in refs:
            try:
                out.append(ray.get(ref, timeout=self.call_timeout_s))
            except (RayActorError, GetTimeoutError) as exc:  # restarting, or gone: not idle, not counted
                log.warning("ingest actor unreachable: %s", type(exc).__name__)
                out.append(None)
        return out

    def stop(self, timeout_s: float = 120.0) -> list[dict[str, Any] | None]:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        refs = [a.stop.remote(timeout_s) for a in self.actors]
        out: list[dict[str, Any] | None] = []
        for ref in refs:
            try:
                out.append(ray.get(ref, timeout=timeout_s + 10))
            except (RayActorError, GetTimeoutError):
                out.append(None)
        for a in self.actors:
            ray.kill(a, no_restart=True)
        return out
