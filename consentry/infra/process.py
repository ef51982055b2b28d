"""Background processes with pid files and logs, started and stopped cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import StackError


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Does something accept TCP connections on host:port?"""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_free(host: str, port: int) -> bool:
    """Could we bind host:port right now?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1].split()[0] != "Z"
    except OSError:
        return True


@dataclass
class ManagedProcess:
    """A process we started, known by its pid file."""

    name: str
    state_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def start(self, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
        if not Path(argv[0]).exists():
            raise StackError(f"{self.name}: binary {argv[0]} not found (is the project installed? "
                             "run the README's first command)")
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab")
        try:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **(env or {})}, cwd=str(cwd) if cwd else None,
                                    start_new_session=True)
        finally:
            log.close()
        self.pid_file.write_text(str(proc.pid))
        self._proc = proc  # keep a handle so the child is reaped, not left a zombie
        return proc.pid

    def exited_early(self) -> bool:
        proc = getattr(self, "_proc", None)
        return proc is not None and proc.poll() is not None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> bool:
        """Signal the process group, wait for it to exit, SIGKILL it after timeout. True if it was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and (pid_alive(pid) or _group_alive(pid)):
            self._reap()
            time.sleep(0.1)
        if pid_alive(pid) or _group_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for _ in range(50):
                self._reap()
                if not pid_alive(pid) and not _group_alive(pid):
                    break
                time.sleep(0.1)
        self._reap()
        self.pid_file.unlink(missing_ok=True)
        return True

    def stop_children_first(self, sig: int, timeout_s: float) -> None:
        """Signal the leader's children (not the leader) and wait for them to exit.

        For wrappers that SIGKILL their child one second after a signal (milvus-server): the child
        gets the time to shut down cleanly, then the wrapper exits on its own or is stopped.
        """
        pid = self.pid()
        if pid is None:
            return
        children = [p for p in group_members(pid) if p != pid]
        for c in children:
            try:
                os.kill(c, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(pid_alive(c) for c in children):
            self._reap()
            time.sleep(0.2)

    def _reap(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None:
            proc.poll()


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    return _members(2, pgid)


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes in session ``sid`` (what a process started with a new session started,
    including children that moved to process groups of their own, as Ray's workers do)."""
    return _members(3, sid)


def _members(field: int, value: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[field]) == value:
            out.append(int(entry.name))
    return out


def _group_alive(pgid: int) -> bool:
    """Is any live process left in process group ``pgid``?"""
    return bool(group_members(pgid))


def wait_until(check, timeout_s: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return bool(check())
