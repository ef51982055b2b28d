"""CrawlLauncher: crawl jobs seen from the CLI — plan, start (foreground or detached), watch, stop, resume.

Each run is a separate ``python -m consentry.cli.crawl_process JOB_ID`` process (a fresh Twisted
reactor each time) in its own session, logging to the job dir; it gets the launcher's exact
settings through ``CONSENTRY_*`` environment variables. ``stop`` sends SIGINT to the pid in the
job dir: Scrapy stops gracefully, the JOBDIR keeps what is left, and ``resume`` carries on.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ..catalog import JobStore, SourceRegistry
from ..clients.objectstore import ObjectStore
from ..core.errors import ConfigError, ConsentryError, DependencyError
from ..core.records import CrawlJob, JobState, utcnow
from ..core.settings import ENV_PREFIX, Settings
from .jobdir import RUN_MODULE, STOP_SIGNALS, JobDir
from .runner import EXIT_UNAVAILABLE, CrawlRunner

#: job-file keys (YAML) and the CrawlJob fields they set
JOB_FILE_KEYS = {"source", "seeds", "allowed", "max_pages", "depth", "concurrency_per_domain", "download_delay",
                 "schedule"}


def settings_env(settings: Settings) -> dict[str, str]:
    """``CONSENTRY_*`` variables that rebuild exactly these settings in a child process."""
    env = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    return env


@dataclass
class JobView:
    """A job as the CLI shows it: the stored record, live counters if it runs, and where its files are."""

    job: CrawlJob
    pid: int | None
    jobdir: JobDir

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def state(self) -> str:
        if self.job.state is JobState.RUNNING and not self.running:
            return "interrupted"  # its process is gone without closing the job: resumable
        return self.job.state.value

    def counters(self) -> tuple[dict[str, int], dict[str, int]]:
        live = self.jobdir.read_progress() if self.running else None
        if live:
            return live.get("stats", {}), live.get("refusals", {})
        return dict(self.job.stats), dict(self.job.refusals)

    def to_dict(self) -> dict[str, Any]:
        stats, refusals = self.counters()
        out = self.job.to_dict()
        out.update(state=self.state, stats=stats, refusals=refusals, pid=self.pid, job_dir=str(self.jobdir.path))
        return out


class CrawlLauncher:
    """Built by ``consentry.wiring.crawl_launcher`` (the store is the system of record the jobs live in)."""

    def __init__(self, settings: Settings, store: ObjectStore) -> None:
        self.settings = settings
        self.store = store
        self.jobs = JobStore(self.store)
        self.sources = SourceRegistry(self.store)

    # --- planning ------------------------------------------------------------------------------
    def plan(self, source_id: str | None, seeds: list[str], *, max_pages: int | None = None, depth: int | None = None,
             job_file: Path | None = None) -> CrawlJob:
        """Build, check and store a new job (state ``pending``). Raises ConsentryError with a one-line reason."""
        spec: dict[str, Any] = load_job_file(job_file) if job_file else {}
        source_id = source_id or spec.get("source")
        if not source_id:
            raise ConfigError("a crawl job needs a source (--source NAME, or `source:` in the job file)")
        source = self.sources.get(source_id)
        seeds = list(seeds) or list(spec.get("seeds") or [])
        if not seeds:
            raise ConfigError("a crawl job needs at least one --seed URL")
        s = self.settings
        job = CrawlJob.build(
            id=new_job_id(source.id), source_id=source.id, seeds=seeds, allowed=list(spec.get("allowed") or []),
            max_pages=max_pages or spec.get("max_pages") or s.crawl_max_pages,
            depth=depth if depth is not None else spec.get("depth", s.crawl_depth),
            concurrency_per_domain=spec.get("concurrency_per_domain", s.crawl_concurrency_per_domain),
            download_delay=spec.get("download_delay", s.crawl_download_delay), schedule=spec.get("schedule"))
        CrawlRunner.check(job, source)
        return self.jobs.put(job)

    # --- processes -------------------------------------------------------------------------------
    def spawn(self, job_id: str) -> subprocess.Popen:
        """Start the job's crawl process (its own session; output to the job's crawl.log)."""
        jobdir = JobDir(self.settings.home, job_id).create()
        if jobdir.running_pid() is not None:
            raise ConsentryError(f"crawl job {job_id} is already running (pid {jobdir.running_pid()})")
        env = {**os.environ, **settings_env(self.settings)}
        with jobdir.log_file.open("ab") as log:
            log.write(f"\n--- {utcnow().isoformat()} crawl process starting\n".encode())
            log.flush()
            # the child inherits a mask with the stop signals blocked until it can handle them (see run.py)
            previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            try:
                proc = subprocess.Popen([sys.executable, "-m", RUN_MODULE, job_id], stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                        close_fds=True)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        jobdir.write_pid(proc.pid)  # at once, so `crawl stop` finds a job that is still starting
        return proc

    def wait(self, job_id: str, proc: subprocess.Popen, on_progress: Callable[[dict[str, Any]], None] | None = None,
             interval_s: float = 0.5) -> tuple[CrawlJob, int]:
        """Wait for a foreground run; SIGINT here stops the crawl gracefully (twice: at once)."""
        jobdir = JobDir(self.settings.home, job_id)
        interrupts = 0

        def forward(signum: int, _frame: Any) -> None:
            nonlocal interrupts
            interrupts += 1
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)

        previous = signal.signal(signal.SIGINT, forward) if _main_thread() else None
        try:
            while proc.poll() is None:
                if on_progress is not None:
                    progress = jobdir.read_progress()
                    if progress:
                        on_progress(progress)
                time.sleep(interval_s)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        if on_progress is not None and (progress := jobdir.read_progress()):
            on_progress(progress)
        return self.jobs.get(job_id), proc.returncode

    def stop(self, job_id: str, timeout_s: float = 60.0) -> CrawlJob:
        """Ask the running crawl to stop (SIGINT → graceful) and wait until it has."""
        job = self.jobs.get(job_id)
        jobdir = JobDir(self.settings.home, job.id)
        pid = jobdir.running_pid()
        if pid is None:
            if job.state is JobState.RUNNING:  # the process died without closing the job
                return self.jobs.put(job.model_copy(update={"state": JobState.STOPPED,
                                                            "error": "crawl process ended without closing the job"}))
            raise ConsentryError(f"crawl job {job.id} is not running (state: {job.state.value})")
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        while jobdir.running_pid() is not None:
            if time.monotonic() > deadline:
                raise ConsentryError(f"crawl job {job.id} (pid {pid}) did not stop within {timeout_s:.0f}s")
            time.sleep(0.2)
        return self.jobs.get(job.id)

    def resume(self, job_id: str) -> subprocess.Popen:
        job = self.jobs.get(job_id)
        view = self.view(job)
        if view.running:
            raise ConsentryError(f"crawl job {job.id} is running (pid {view.pid}); nothing to resume")
        if job.state is JobState.FINISHED:
            raise ConsentryError(f"crawl job {job.id} has finished; start a new job to crawl again")
        if job.state is not JobState.PENDING and not JobDir(self.settings.home, job.id).scrapy_dir.is_dir():
            raise ConsentryError(f"crawl job {job.id} has no local state in {JobDir(self.settings.home, job.id).path}; "
                                 "resume it on the machine that ran it")
        return self.spawn(job.id)

    # --- views -----------------------------------------------------------------------------------
    def view(self, job: CrawlJob | str) -> JobView:
        if isinstance(job, str):
            job = self.jobs.get(job)
        jobdir = JobDir(self.settings.home, job.id)
        return JobView(job, jobdir.running_pid(), jobdir)

    def list(self) -> list[JobView]:
        return [self.view(j) for j in self.jobs.list()]


def failure_error(job: CrawlJob, returncode: int) -> ConsentryError:
    """The error a failed foreground run reports (exit 4 when the broker was the cause)."""
    msg = f"crawl job {job.id} failed: {job.error or f'crawl process exited with {returncode}'}"
    return DependencyError(msg, reason="broker") if returncode == EXIT_UNAVAILABLE else ConsentryError(msg)


def new_job_id(source_id: str) -> str:
    return f"{source_id[:30].rstrip('.-_')}-{utcnow():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def load_job_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"job file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"job file {path}: expected a mapping of {', '.join(sorted(JOB_FILE_KEYS))}")
    unknown = set(data) - JOB_FILE_KEYS
    if unknown:
        raise ConfigError(f"job file {path}: unknown keys {', '.join(sorted(unknown))}")
    return data


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
