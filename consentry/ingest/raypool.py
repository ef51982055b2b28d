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
from collections.abc import Callable
from typing import Any

from ..core.errors import ConfigError, DependencyError
from ..core.settings import Settings
from .runner import WorkerFailed, WorkerLoop
from .worker import IngestWorker

log = logging.getLogger("consentry.ingest.ray")


def init_ray(settings: Settings, workers: int, temp_dir: str | None = None) -> None:
    """Connect to ``settings.ray_address`` or start a small local Ray (no dashboard, no usage stats).

    A local Ray picks free ports (not Redis's 6379). No-op when Ray is already initialised.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return
    if settings.ray_address:
        try:
            ray.init(address=settings.ray_address, log_to_driver=False, namespace="consentry")
        except Exception as exc:
            raise DependencyError(f"cannot connect to Ray at {settings.ray_address}: {exc}") from None
        return
    cpus = max(2, int(-(-workers * settings.ingest_worker_cpus // 1)))
    kw: dict[str, Any] = {"_temp_dir": temp_dir} if temp_dir else {}
    for attempt in (1, 2):  # a loaded machine can miss Ray's start-up deadline once
        try:  # GPUs are detected by Ray; the actors ask for ingest_worker_gpus
            ray.init(num_cpus=cpus, object_store_memory=256 * 1024 * 1024, include_dashboard=False,
                     log_to_driver=False, namespace="consentry", **kw)
            return
        except Exception as exc:  # translated at the edge
            if attempt == 2:
                raise DependencyError(f"cannot start a local Ray: {type(exc).__name__}: {exc}",
                                      transient=False) from None
            logging.getLogger("consentry.ingest").warning("local Ray did not start (%s); trying again", exc)
            ray.shutdown()


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
    """``workers`` actors with ``num_cpus=ingest_worker_cpus`` (and ``num_gpus`` when configured)."""

    def __init__(self, settings: Settings, workers: int, build: Callable[[Settings], IngestWorker],
                 call_timeout_s: float = 30.0, start_timeout_s: float = 120.0, max_restarts: int = 3) -> None:
        if workers < 1:
            raise ConfigError("--workers must be at least 1")
        self.settings = settings
        self.build = build  # a module-level function: each actor builds its own worker from the settings
        self.n = workers
        self.call_timeout_s = call_timeout_s
        self.start_timeout_s = start_timeout_s
        self.max_restarts = max_restarts
        self.actors: list[Any] = []

    def start(self) -> None:
        import ray

        opts: dict[str, Any] = {"num_cpus": self.settings.ingest_worker_cpus, "max_concurrency": 4,
                                "max_restarts": self.max_restarts}
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
