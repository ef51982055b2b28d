"""The local stack itself: restart keeps data; the CLI's up/status/down works twice and leaves nothing."""

import json
import subprocess
import sys
import time
import uuid

import pytest

from consentry.clients.broker import KafkaBroker, KafkaConfig
from consentry.clients.objectstore import S3Config, S3ObjectStore
from consentry.core.errors import StackError
from consentry.core.settings import load_settings
from consentry.infra.process import pid_alive
from consentry.infra.stack import Stack
from tests.conftest import PORT_BASE, stack_env

BASE = PORT_BASE + 1000


@pytest.fixture
def own_env(tmp_path, monkeypatch):
    env = stack_env(tmp_path / "home", BASE)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield env
    Stack(load_settings()).down()


def cli(*args):
    return subprocess.run([sys.executable, "-m", "consentry.cli.main", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_up_status_down_twice_leaves_no_process(own_env):
    pids = []
    for _ in range(2):
        up = cli("stack", "up")
        assert up.returncode == 0, up.stderr
        again = cli("stack", "up", "--json")  # idempotent
        assert again.returncode == 0, again.stderr
        st = cli("stack", "status", "--json")
        assert st.returncode == 0, st.stderr
        services = {s["name"]: s for s in json.loads(st.stdout)}
        assert set(services) == {"seaweedfs", "tansu", "milvus"}
        assert all(s["running"] and s["answers"] for s in services.values())
        assert services["tansu"]["address"] == f"127.0.0.1:{BASE + 92}"
        pids += [s["pid"] for s in services.values()]
        down = cli("stack", "down")
        assert down.returncode == 0 and "stopped" in down.stdout
    assert cli("stack", "down").stdout.strip().endswith("nothing was running")
    assert not any(pid_alive(p) for p in pids)
    st = cli("stack", "status", "--json")
    assert st.returncode == 1 and not any(s["answers"] for s in json.loads(st.stdout))


@pytest.mark.slow
def test_restart_keeps_object_message_and_offset(own_env):
    st = Stack(load_settings())
    st.up()
    s = load_settings()
    store = S3ObjectStore(S3Config.from_settings(s))
    broker = KafkaBroker(KafkaConfig.from_settings(s))
    key, topic, group = f"r/{uuid.uuid4().hex}", s.topic("restart"), "g-restart"
    store.put(key, b"kept", metadata={"k": "v"})
    broker.ensure_topics([topic])
    p = broker.producer()
    for i in range(3):
        p.send(topic, b"k", f"m{i}".encode())
    p.flush()
    p.close()
    c = broker.consumer(group, [topic])
    got = []
    deadline = time.monotonic() + 40
    while len(got) < 3 and time.monotonic() < deadline:
        got += c.poll(1.0)
    assert [m.value for m in got] == [b"m0", b"m1", b"m2"]
    c.commit({(topic, got[0].partition): got[1].offset + 1})  # m0, m1 done
    c.close()

    st.down()
    st.up()

    assert store.get(key) == b"kept" and store.stat(key).metadata["k"] == "v"
    c = broker.consumer(group, [topic])
    rest = []
    deadline = time.monotonic() + 40
    while not rest and time.monotonic() < deadline:
        rest += c.poll(1.0)
    c.close()
    assert [m.value for m in rest] == [b"m2"]  # the message survived and the offset was kept


def test_port_taken_is_a_clear_error(own_env):
    import socket

    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", BASE))
        blocker.listen(1)
        with pytest.raises(StackError) as ei:
            Stack(load_settings()).up()
        assert "already in use" in str(ei.value)


def test_missing_binary_is_a_clear_error(own_env, monkeypatch):
    import consentry.infra.stack as mod

    monkeypatch.setattr(mod, "_bin", lambda name: f"/nonexistent/{name}")
    with pytest.raises(StackError) as ei:
        Stack(load_settings()).up()
    assert "not found" in str(ei.value)


def test_failed_up_stops_what_it_started(own_env):
    import socket

    with socket.socket() as blocker:  # the broker's port is taken: S3 starts, then the broker fails
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", BASE + 92))
        blocker.listen(1)
        st = Stack(load_settings())
        with pytest.raises(StackError):
            st.up()
        assert st.procs["seaweedfs"].pid() is None  # not left running
