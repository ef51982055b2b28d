"""Ray as a service of the local stack: `stack up` starts a loopback Ray head with token auth, `stack status`
shows it, `ingest run` connects to it (real HTTP health/metrics while it runs), and `stack down` stops exactly
that Ray — another Ray on the machine keeps running."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from consentry.catalog.sources import SourceRegistry
from consentry.clients.broker import KafkaBroker, KafkaConfig
from consentry.clients.objectstore import S3Config, S3ObjectStore
from consentry.core.records import Basis, ImageCandidate, Source
from consentry.core.settings import load_settings
from consentry.infra.process import pid_alive, session_members
from consentry.infra.ray_node import RayNode
from tests.conftest import PORT_BASE, stack_env
from tests.ingest.site import Route, Site, noise_image

BASE = PORT_BASE + 1200
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "consentry.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def listening(pids: list[int]) -> list[str]:
    """Local addresses the given processes listen on (TCP), from /proc."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # LISTEN
                host, port = f[1].rsplit(":", 1)
                out.append(f"{_ip(host)}:{int(port, 16)}")
    return out


def _ip(hexed: str) -> str:
    raw = bytes.fromhex(hexed)
    if len(raw) == 4:
        return ".".join(str(b) for b in raw[::-1])
    words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
    flat = b"".join(words)
    if flat[:12] == b"\0" * 10 + b"\xff\xff":  # v4-mapped
        return ".".join(str(b) for b in flat[12:])
    return flat.hex()


@pytest.fixture
def stack_with_ray(tmp_path):
    env = {**os.environ, **stack_env(tmp_path / "home", BASE), "CONSENTRY_STACK_RAY": "true",
           "CONSENTRY_MODEL_PACK": "tests.fakes:HashFaceModel", "PYTHONPATH": str(ROOT),
           "CONSENTRY_INGEST_IDLE_SECONDS": "3", "CONSENTRY_FETCH_TIMEOUT_S": "90"}
    for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN", "RAY_ADDRESS"):
        env.pop(k, None)
    try:
        yield env
    finally:
        cli(env, "stack", "down")


def test_stack_runs_a_loopback_ray_head_with_token_auth_that_ingest_uses(stack_with_ray, tmp_path):
    env = stack_with_ray
    up = cli(env, "stack", "up", "--json")
    assert up.returncode == 0, up.stderr
    st = cli(env, "stack", "status", "--json")
    assert st.returncode == 0, st.stderr
    ray = {s["name"]: s for s in json.loads(st.stdout)}["ray"]
    assert ray["running"] and ray["answers"] and ray["role"] == "ray" and ray["address"] == f"127.0.0.1:{BASE + 700}"
    assert "token auth" in ray["detail"]
    token = tmp_path / "home" / "stack" / "ray" / "auth_token"
    assert token.stat().st_mode & 0o777 == 0o600 and len(token.read_text()) == 64
    members = session_members(ray["pid"])
    addresses = listening(members)
    assert addresses and all(a.startswith("127.0.0.1:") for a in addresses), addresses  # loopback only

    # without the token, a driver is turned away
    nope = subprocess.run([sys.executable, "-c", f"import ray; ray.init(address='127.0.0.1:{BASE + 700}')"],
                          capture_output=True, text=True, timeout=120,
                          env={**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
    assert nope.returncode != 0 and re.search(r"(?i)auth", nope.stderr), nope.stderr[-2000:]

    # `ingest run` connects to the stack's Ray; its health endpoints answer over real HTTP while it runs
    s = load_settings(**{k[10:].lower(): v for k, v in env.items()
                         if k.startswith("CONSENTRY_") and k != "CONSENTRY_TEST_PORT_BASE"})
    site = Site().start()
    gate = threading.Event()
    try:
        SourceRegistry(S3ObjectStore(S3Config.from_settings(s))).put(
            Source(id="fam", match="127.0.0.1", basis=Basis.CONSENT))
        site.routes["/a.png"] = Route(noise_image(1), headers={"Content-Type": "image/png"}, gate=gate)
        site.routes["/b.png"] = Route(noise_image(2), headers={"Content-Type": "image/png"})
        b = KafkaBroker(KafkaConfig.from_settings(s))
        b.ensure_topics([s.topic_images])
        p = b.producer()
        for path in ("/a.png", "/b.png"):
            c = ImageCandidate(url=site.url(path), page_url=site.url("/"), job_id="job-r", source_id="fam")
            p.send(s.topic_images, c.key.encode(), c.to_json())
        p.flush()
        p.close()
        proc = subprocess.Popen([sys.executable, "-m", "consentry.cli.main", "ingest", "run", "--until-idle",
                                 "--json", "--http-port", "0", "--interval", "1"], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
        reader.start()

        def get(path: str) -> httpx.Response:
            try:
                return httpx.get(f"{base}{path}", timeout=5)
            except httpx.ConnectError:
                raise AssertionError(f"ingest run (exit {proc.poll()}) stopped serving:\n{''.join(lines)[-3000:]}") \
                    from None

        try:
            deadline = time.monotonic() + 180
            while not any("health and metrics on" in x for x in lines):
                assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)[-3000:]
                time.sleep(0.1)
            base = re.search(r"(http://127\.0\.0\.1:\d+)/", "".join(lines)).group(1)
            assert get("/healthz").status_code == 200
            while get("/readyz").status_code != 200:  # 503 until the actor runs
                assert time.monotonic() < deadline, "never ready"
                time.sleep(0.5)
            ready = get("/readyz").json()
            assert ready["workers"] == ready["workers_reachable"] == 1 and ready["circuits_open"] == 0
            metrics = get("/metrics").text
            assert "consentry_ingest_ready 1" in metrics and "consentry_ingest_records_total 0" in metrics
            assert get("/nope").status_code == 404
            gate.set()  # a.png (and so its batch) was held in flight until now
            while "consentry_ingest_records_total 2" not in get("/metrics").text:
                assert time.monotonic() < deadline, "the records were never counted"
                time.sleep(0.2)
            out = proc.stdout.read()
            proc.wait(180)
        finally:
            gate.set()
            if proc.poll() is None:
                proc.kill()
        reader.join(10)
        err = "".join(lines)
        assert proc.returncode == 0, err[-3000:]
        totals = json.loads(out)
        assert totals["mode"] == "ray" and totals["records"] == 2 and totals["indexed"] == 2
        assert "Token authentication" not in err  # Ray's warning is not printed
    finally:
        site.close()

    # `stack down` stops exactly its own Ray: another Ray on this machine keeps running
    other = RayNode("other-ray", tmp_path / "other", BASE + 1300, tmp_path / "other" / "auth_token", cpus=1,
                    object_store_mb=80)
    other.start(timeout_s=180)
    try:
        head_pid = ray["pid"]
        down = cli(env, "stack", "down")
        assert down.returncode == 0 and "ray" in down.stdout
        assert not pid_alive(head_pid) and not session_members(head_pid)
        assert other.proc.pid() is not None and other.healthy()
    finally:
        other.stop()
    assert other.proc.pid() is None
