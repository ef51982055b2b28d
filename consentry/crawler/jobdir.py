"""A crawl job's local directory, ``$CONSENTRY_HOME/jobs/<job_id>/``.

::

    scrapy/            Scrapy's JOBDIR: pending requests, seen fingerprints, spider state
    pid                the running crawl's process id (present only while it runs)
    progress.json      live counters, rewritten twice a second
    published.keys     Kafka keys the broker acknowledged, one per line (never re-published)
    unpublished.jsonl  candidates a failed broker never acknowledged (published first on resume)
    records.pending.jsonl  crawl-log lines the object store never took (stored first on resume)
    crawl.log          the crawl process's log

Refusals and page visits are not kept here: they go to the crawl log in the object store
(``catalog.crawllog``), which outlives this directory.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..core.records import check_id

#: the module a crawl process runs (``python -m RUN_MODULE JOB_ID``); it builds its runner through the wiring
RUN_MODULE = "consentry.cli.crawl_process"
#: signals that stop a crawl gracefully; blocked while a crawl process starts (see the run module)
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class JobDir:
    def __init__(self, home: Path, job_id: str) -> None:
        self.job_id = check_id(job_id, "job")
        self.path = Path(home) / "jobs" / job_id

    scrapy_dir = property(lambda self: self.path / "scrapy")
    pid_file = property(lambda self: self.path / "pid")
    progress_file = property(lambda self: self.path / "progress.json")
    published_file = property(lambda self: self.path / "published.keys")
    unpublished_file = property(lambda self: self.path / "unpublished.jsonl")
    records_pending_file = property(lambda self: self.path / "records.pending.jsonl")
    log_file = property(lambda self: self.path / "crawl.log")

    def create(self) -> JobDir:
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    # --- the running process ------------------------------------------------------------------
    def write_pid(self, pid: int | None = None) -> None:
        self.create()
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(str(pid or os.getpid()))
        tmp.replace(self.pid_file)

    def clear_pid(self) -> None:
        self.pid_file.unlink(missing_ok=True)

    def running_pid(self) -> int | None:
        """The pid of this job's live crawl process, or None (a stale pid file is not a live crawl)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if is_crawl_process(pid, self.job_id) else None

    # --- progress -------------------------------------------------------------------------------
    def write_progress(self, data: dict[str, Any]) -> None:
        tmp = self.progress_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, sort_keys=True, default=str))
        tmp.replace(self.progress_file)

    def read_progress(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.progress_file.read_text())
        except (OSError, ValueError):
            return None


def is_crawl_process(pid: int, job_id: str) -> bool:
    """Is ``pid`` alive and a crawl process of ``job_id`` (not a recycled pid)?"""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (not Linux): trust the signal check
    if _proc_state(pid) == b"Z":  # exited, not yet reaped by its parent
        return False
    return RUN_MODULE.encode() in argv and job_id.encode() in argv


def _proc_state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return b""


class PublishedKeys:
    """The Kafka keys of a job the broker acknowledged; appended and fsynced after each acknowledged batch."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._keys: set[str] = set()
        if path is not None and path.is_file():
            self._keys = {line.strip() for line in path.read_text().splitlines() if line.strip()}

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add_many(self, keys: Iterable[str]) -> None:
        new = [k for k in keys if k not in self._keys]
        if not new:
            return
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="ascii") as fh:
                fh.write("".join(f"{k}\n" for k in new))
                fh.flush()
                os.fsync(fh.fileno())
        self._keys.update(new)
