"""Session fixtures: the real servers (S3, Kafka-compatible broker, Milvus) started once.

Ports come from CONSENTRY_TEST_PORT_BASE (else the first free range of 29000, 22000, 15000,
11000, see _claim_port_base) so a developer's own stack on the default ports and other test runs
are left alone: S3 base, broker base+92, milvus-lite base+540, Milvus server base+530. Every range
lies below Linux's ephemeral ports (32768-60999), where the kernel and Ray hand out ports at random.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from consentry.core.settings import Settings, load_settings

_PORT_BASES = (29000, 22000, 15000, 11000)  # each run uses base .. base+3600 (clear of 19530, 26379)
_port_lock = None


def _claim_port_base() -> int:
    """This run's port range: CONSENTRY_TEST_PORT_BASE, or the first range no other run holds.

    A run holds its range with an exclusive lock on a file for as long as it lives, so two test
    runs on one machine never start servers on the same ports. The choice is exported so that
    subprocesses (CLI runs, fault tests) use the same range.
    """
    global _port_lock
    if os.environ.get("CONSENTRY_TEST_PORT_BASE"):
        return int(os.environ["CONSENTRY_TEST_PORT_BASE"])
    import fcntl
    import tempfile

    for base in _PORT_BASES:
        fh = open(Path(tempfile.gettempdir()) / f"consentry-test-ports-{base}.lock", "w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            continue
        _port_lock = fh  # held until this process exits
        os.environ["CONSENTRY_TEST_PORT_BASE"] = str(base)
        return base
    raise RuntimeError(f"every test port range {_PORT_BASES} is held by another run; set CONSENTRY_TEST_PORT_BASE")


PORT_BASE = _claim_port_base()


def stack_env(home: Path, base: int) -> dict[str, str]:
    return {
        "CONSENTRY_HOME": str(home),
        "CONSENTRY_S3_ENDPOINT": f"http://127.0.0.1:{base}",
        "CONSENTRY_KAFKA_BOOTSTRAP": f"127.0.0.1:{base + 92}",
        "CONSENTRY_MILVUS_URI": f"http://127.0.0.1:{base + 540}",
        "CONSENTRY_ALLOW_PRIVATE_NETWORKS": "true",
        "CONSENTRY_TOPIC_PREFIX": "test.",
        "CONSENTRY_CRAWL_DOWNLOAD_DELAY": "0.001",
        "CONSENTRY_STACK_RAY": "false",  # tests that need Ray start their own (tests/ingest, tests/infra)
        "CONSENTRY_STACK_RAY_PORT": str(base + 700),
        "RAY_USAGE_STATS_ENABLED": "0",
    }


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The local stack (SeaweedFS, tansu on S3, milvus-lite server), up for the whole session."""
    from consentry.infra.stack import Stack

    home = tmp_path_factory.mktemp("consentry-home")
    mp = pytest.MonkeyPatch()
    for k, v in stack_env(home, PORT_BASE).items():
        mp.setenv(k, v)
    mp.delenv("CONSENTRY_CONFIG", raising=False)
    st = Stack(load_settings())
    try:
        st.up("embedded")
        yield load_settings()  # now with the generated S3 credentials
    finally:
        st.down()
        mp.undo()


@pytest.fixture
def settings(stack: Settings) -> Settings:
    """Settings on the session stack, with topics and collections unique to this test."""
    tag = uuid.uuid4().hex[:10]
    return load_settings(topic_prefix=f"t{tag}.", milvus_collection=f"faces_{tag}",
                         milvus_suppression_collection=f"suppressed_{tag}", kafka_consumer_group=f"g-{tag}")


@pytest.fixture
def object_store(settings: Settings):
    from consentry.clients.objectstore import S3Config, S3ObjectStore

    return S3ObjectStore(S3Config.from_settings(settings))


@pytest.fixture
def broker(settings: Settings):
    from consentry.clients.broker import KafkaBroker, KafkaConfig

    return KafkaBroker(KafkaConfig.from_settings(settings))


@pytest.fixture(scope="session")
def milvus_server_stack(stack: Settings) -> Iterator:
    """A real Milvus 2.3 standalone server beside the embedded one (its Stack, to restart it)."""
    from consentry.infra.stack import Stack

    s = load_settings(milvus_uri=f"http://127.0.0.1:{PORT_BASE + 530}", home=stack.home / "milvus-server-home",
                      stack_milvus="server")
    st = Stack(s)
    st.dir.mkdir(parents=True, exist_ok=True)
    st.state_file.write_text('{"milvus": "server"}')
    st.start_milvus("server")
    try:
        yield st
    finally:  # the data is thrown away: no graceful stop (with many collections it can take 90 s)
        st.procs["milvus"].stop(signal.SIGKILL, 10)


@pytest.fixture(scope="session")
def milvus_server(milvus_server_stack) -> str:
    """The Milvus 2.3 standalone server's URI."""
    return milvus_server_stack.s.milvus_uri


@pytest.fixture(scope="session")
def photos() -> dict[str, Path]:
    from consentry.demo.photos import ensure_photos

    return ensure_photos()


@pytest.fixture(params=["embedded", "server"])
def milvus_uri(request) -> str:
    """Both Milvus flavours: milvus-lite's server (the session stack) and Milvus 2.3 standalone."""
    if request.param == "embedded":
        return request.getfixturevalue("stack").milvus_uri
    return request.getfixturevalue("milvus_server")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that runs on the Milvus 2.3 server (directly or as a "server" parameter) ``milvus_server``,
    so ``-m "not milvus_server"`` leaves that server unstarted."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "milvus_server" in getattr(item, "fixturenames", ()) or "server" in params.values():
            item.add_marker(pytest.mark.milvus_server)
