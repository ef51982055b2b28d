"""`consentry ingest`: Ray workers consuming image candidates from Kafka."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from typing import Any

import click

from .common import CliContext, emit_json, json_option, pass_ctx, table

RATE_KEYS = ("records", "fetched", "indexed", "faces", "refused", "dlq")


@click.group("ingest")
def ingest() -> None:
    """Run the ingest workers (fetch, validate, decide consent, embed, write)."""


@ingest.command("run")
@click.option("--workers", type=click.IntRange(min=1),
              help="Number of worker actors (default: ingest_workers setting).")
@click.option("--until-idle", is_flag=True, help="Exit once every worker has had nothing to do for "
              "ingest_idle_seconds while holding its partitions.")
@click.option("--no-ray", is_flag=True, help="Run the workers as threads of this process (debugging).")
@click.option("--local-ray", is_flag=True, help="Start an in-process Ray for this run instead of connecting to a "
              "cluster (the stack's Ray head, or CONSENTRY_RAY_ADDRESS).")
@click.option("--idle-seconds", type=float, help="Override ingest_idle_seconds for --until-idle.")
@click.option("--interval", type=float, default=5.0, show_default=True,
              help="Seconds between throughput lines on stderr.")
@click.option("--http-port", type=click.IntRange(min=0, max=65535),
              help="Serve /healthz, /readyz and /metrics on this port (0 = any free port).")
@click.option("--http-host", default="127.0.0.1", show_default=True, help="Address for --http-port.")
@json_option
@pass_ctx
def run(ctx: CliContext, workers: int | None, until_idle: bool, no_ray: bool, local_ray: bool,
        idle_seconds: float | None, interval: float, http_port: int | None, http_host: str, as_json: bool) -> None:
    """Consume image candidates until stopped (Ctrl-C / SIGTERM finish the batches in flight, commit, close).

    The workers are Ray actors on the cluster at CONSENTRY_RAY_ADDRESS, else on the local stack's Ray
    head (`consentry stack up` starts it); --local-ray starts an in-process Ray instead, --no-ray runs
    them as threads. Throughput (counts and per-second rates of records, fetched, indexed, faces,
    refusals by reason and dead letters) is printed to stderr while running; the totals at the end.

    \b
    Example:
      consentry ingest run --workers 2 --until-idle
      consentry ingest run --no-ray --until-idle --json
    """
    from ..ingest.runner import IdlePolicy, ThreadPool, drive
    from ..wiring import ingest_worker, prepare_ingest

    s = ctx.settings
    n = workers or s.ingest_workers
    if no_ray and local_ray:
        raise click.UsageError("--no-ray and --local-ray exclude each other")
    prepare_ingest(s)
    if no_ray:
        pool: Any = ThreadPool(lambda _k: ingest_worker(s), n)
    else:
        from ..ingest.raypool import RayPool, connect_ray

        address, env = _ray_cluster(s, local_ray)
        connect_ray(address, env, s.ray_connect_timeout_s, local_cpus=max(2, int(-(-n * s.ingest_worker_cpus // 1))))
        pool = RayPool(s, n, ingest_worker)
    stop = threading.Event()
    started = time.monotonic()
    throughput = _Throughput(interval)
    # stdout carries only the result: what Ray prints while running (e.g. a lost node's raylet) goes to stderr
    with _stop_on_signals(stop), _health(http_host, http_port) as health, redirect_stdout(sys.stderr):
        def on_tick(stats: dict[str, Any]) -> None:
            throughput(stats)
            if health is not None:
                health.update(stats)

        totals = drive(pool, stop, until_idle, IdlePolicy(idle_seconds or s.ingest_idle_seconds),
                       on_tick=on_tick, tick_s=1.0)
    totals["seconds"] = round(time.monotonic() - started, 1)
    totals["mode"] = "threads" if no_ray else "ray"
    if as_json:
        emit_json(totals)
        return
    rows = [(k, totals.get(k, 0)) for k in RATE_KEYS]
    rows += [(f"refused/{r}", c) for r, c in sorted(totals.get("refused_by_reason", {}).items())]
    rows += [(f"errors/{e}", c) for e, c in sorted(totals.get("errors_by_class", {}).items())]
    rows.append(("seconds", totals["seconds"]))
    table(rows, ["ingest", "count"])


def _ray_cluster(s: Any, local: bool) -> tuple[str | None, dict[str, str]]:
    """(address, Ray's environment): CONSENTRY_RAY_ADDRESS (Ray's own RAY_AUTH_* variables, as set by the
    operator), else the local stack's head (its token file), else an in-process Ray with --local-ray."""
    from ..core.errors import DependencyError
    from ..infra.ray_node import RayEndpoint, ensure_token
    from ..infra.stack import Stack

    if local:
        return None, RayEndpoint("", ensure_token(s.home / "ray" / "auth_token")).env()
    if s.ray_address:
        return s.ray_address, {}
    endpoint = Stack(s).ray_endpoint()
    if endpoint is None:
        raise DependencyError("no Ray cluster: run `consentry stack up` (it starts a local Ray head), set "
                              "CONSENTRY_RAY_ADDRESS, or pass --local-ray (in-process Ray) or --no-ray (threads)",
                              reason="unreachable", transient=False)
    return endpoint.address, endpoint.env()


class _Throughput:
    """Prints a throughput line to stderr every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last_t = time.monotonic()
        self.last: dict[str, Any] = {}

    def __call__(self, stats: dict[str, Any]) -> None:
        now = time.monotonic()
        dt = now - self.last_t
        if dt < self.interval:
            return
        parts = []
        for k in RATE_KEYS:
            v = stats.get(k, 0)
            parts.append(f"{k} {v} ({(v - self.last.get(k, 0)) / dt:.1f}/s)")
        reasons = ", ".join(f"{r} {c}" for r, c in sorted(stats.get("refused_by_reason", {}).items()))
        line = " · ".join(parts) + (f" · refused by reason: {reasons}" if reasons else "")
        click.echo(f"ingest: {line}", err=True)
        self.last_t, self.last = now, dict(stats)


@contextmanager
def _health(host: str, port: int | None) -> Iterator[Any]:
    if port is None:
        yield None
        return
    from ..ingest.health import HealthServer

    with HealthServer(host, port) as server:
        click.echo(f"ingest: health and metrics on http://{host}:{server.port}/ (healthz, readyz, metrics)", err=True)
        yield server


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (graceful); a second SIGINT interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        click.echo(f"ingest: {signal.Signals(signum).name}: finishing the batches in flight, then stopping",
                   err=True)
        stop.set()

    old: dict[signal.Signals, Callable[..., Any] | int | None] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h if h is not None else signal.SIG_DFL)
        sys.stderr.flush()


COMMANDS = [ingest]
