"""A Ray node of the local stack: ``ray start --block`` on loopback with token authentication.

The head is started by ``consentry stack up`` (like the other servers, a ManagedProcess with a
pid file and a log) and ``consentry ingest run`` connects to it, so no command pays Ray's start-up
(seconds, sometimes tens on a busy machine) and no command fails because of it.

- **Loopback only.** Ray replaces a loopback node address by the machine's address (it assumes a
  cluster spans machines) and then listens on every interface. ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
  keeps the node on 127.0.0.1, and Ray then listens on 127.0.0.1 only; drivers connecting to it
  need the same variable (:meth:`RayEndpoint.env`).
- **Token auth**, Ray's own (Ray >= 2.52): ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN_PATH`` naming a
  token file generated once (mode 0600) in the stack's state directory. Setting the mode explicitly
  is also what keeps Ray from printing its token-auth warning on every start.
- **Stopping** signals the ``ray start --block`` process alone (it drains and stops its own
  processes in a few seconds; signalling them all at once leaves them hanging), waits for every
  process of its session to exit (Ray's workers have process groups of their own, in that session),
  then SIGKILLs what is left of them — never ``ray stop``, which stops every Ray on the machine.

Ports follow the GCS port: node manager +1, object manager +2, client server +3, dashboard agent
+4/+5, metrics +6, runtime env agent +7, workers +100 … +199.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import StackError
from .process import ManagedProcess, port_open, session_members, wait_until

log = logging.getLogger("consentry.stack")


@dataclass(frozen=True)
class RayEndpoint:
    """Where a driver connects, and the environment Ray needs for it."""

    address: str  # host:port of the GCS
    token_file: Path

    def env(self) -> dict[str, str]:
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_file),
                "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def ensure_token(path: Path) -> Path:
    """The token file at ``path``, generated once (random, 0600)."""
    if not path.is_file() or not path.read_text().strip():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path


def short_temp_dir(state_dir: Path) -> Path:
    """Ray's temp dir: short (its Unix socket paths must fit in 107 bytes), one per state dir."""
    base = Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir())
    return base / f"cray-{hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]}"


class RayNode:
    """One ``ray start --block`` node: the head (``head=None``) or a node joining ``head``."""

    def __init__(self, name: str, state_dir: Path, port: int, token_file: Path, cpus: int | None = None,
                 object_store_mb: int = 256, head: str | None = None, gpus: float | None = None) -> None:
        self.name = name
        self.state_dir = state_dir
        self.port = port
        self.token_file = token_file
        self.cpus = cpus or os.cpu_count() or 1
        self.object_store_mb = object_store_mb
        self.head = head
        self.gpus = gpus
        self.proc = ManagedProcess(name, state_dir)

    @property
    def endpoint(self) -> RayEndpoint:
        return RayEndpoint(self.head or f"127.0.0.1:{self.port}", self.token_file)

    def argv(self) -> list[str]:
        p = self.port
        argv = [str(Path(sys.executable).parent / "ray"), "start", "--block", f"--num-cpus={self.cpus}",
                f"--object-store-memory={self.object_store_mb * 1024 * 1024}", "--disable-usage-stats",
                f"--node-manager-port={p + 1}", f"--object-manager-port={p + 2}",
                f"--dashboard-agent-listen-port={p + 4}", f"--dashboard-agent-grpc-port={p + 5}",
                f"--metrics-export-port={p + 6}", f"--runtime-env-agent-port={p + 7}",
                f"--min-worker-port={p + 100}", f"--max-worker-port={p + 199}"]
        if self.gpus is not None:
            argv.append(f"--num-gpus={self.gpus}")
        if self.head is None:
            argv += ["--head", f"--port={p}", "--node-ip-address=127.0.0.1", f"--ray-client-server-port={p + 3}",
                     "--include-dashboard=false", f"--temp-dir={short_temp_dir(self.state_dir)}"]
        else:
            argv.append(f"--address={self.head}")
        return argv

    def env(self) -> dict[str, str]:
        env = self.endpoint.env()
        if self.head is not None:  # joining: a loopback head is written so that Ray does not rewrite it (test rigs)
            env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "1"
        return env

    def healthy(self) -> bool:
        return port_open("127.0.0.1", self.port + 1) and (self.head is not None or port_open("127.0.0.1", self.port))

    def start(self, timeout_s: float = 120.0, attempts: int = 3) -> None:
        """Start the node (idempotent) and wait until its raylet answers; a start that misses the deadline
        or dies (Ray gives its raylet 30 s to register, which a busy machine can miss) is retried."""
        ensure_token(self.token_file)
        if self.proc.pid():
            if wait_until(self.healthy, timeout_s):
                return
            raise StackError(f"{self.name} is running (pid {self.proc.pid()}) but does not answer on 127.0.0.1:"
                             f"{self.port + 1}; see {self.proc.log_file}")
        last = ""
        for attempt in range(1, attempts + 1):
            self.proc.start(self.argv(), env=self.env())
            up = wait_until(lambda: self.proc.exited_early() or self.healthy(), timeout_s)
            if up and not self.proc.exited_early():
                return
            last = self.proc.log_tail()
            self.stop(timeout_s=30)
            if attempt < attempts:
                log.warning("%s did not start (attempt %d/%d); starting it again", self.name, attempt, attempts)
                time.sleep(2.0 * attempt)
        raise StackError(f"{self.name} did not start in {attempts} attempts of {timeout_s:.0f}s; log:\n{last}")

    def stop(self, timeout_s: float = 60.0) -> bool:
        """Stop exactly this node's processes (see the module doc). True if it was running."""
        pid = self.proc.pid()
        if pid is None:
            self.proc.pid_file.unlink(missing_ok=True)
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if not wait_until(lambda: not session_members(pid), timeout_s, 0.2):
            log.warning("%s did not stop in %.0fs: killing what is left of its processes", self.name, timeout_s)
            for p in session_members(pid):  # its workers have process groups of their own, in its session
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc.stop(signal.SIGKILL, 10)  # reaps the pid, removes the pid file
        return True

    def processes(self) -> list[int]:
        """Every live process of this node (the ``ray start`` process's session: GCS, raylet, workers, agents)."""
        pid = self.proc.pid()
        return session_members(pid) if pid else []
