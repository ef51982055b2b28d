"""Session fixtures: the real servers (S3, Kafka-compatible broker, Milvus) started once.

Ports come from CONSENTRY_TEST_PORT_BASE (default 29000) so a developer's own stack on the
default ports is left alone: S3 base, broker base+92, milvus-lite base+540, Milvus server base+530.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from consentry.core.settings import Settings, load_settings

PORT_BASE = int(os.environ.get("CONSENTRY_TEST_PORT_BASE", "29000"))


def stack_env(home: Path, base: int) -> dict[str, str]:
    return {
        "CONSENTRY_HOME": str(home),
        "CONSENTRY_S3_ENDPOINT": f"http://127.0.0.1:{base}",
        "CONSENTRY_KAFKA_BOOTSTRAP": f"127.0.0.1:{base + 92}",
        "CONSENTRY_MILVUS_URI": f"http://127.0.0.1:{base + 540}",
        "CONSENTRY_ALLOW_PRIVATE_NETWORKS": "true",
        "CONSENTRY_TOPIC_PREFIX": "test.",
        "CONSENTRY_CRAWL_DOWNLOAD_DELAY": "0.001",
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
    finally:
        st.stop_milvus("server")


@pytest.fixture(scope="session")
def milvus_server(milvus_server_stack) -> str:  # noqa: ANN001
    """The Milvus 2.3 standalone server's URI."""
    return milvus_server_stack.s.milvus_uri


@pytest.fixture(scope="session")
def photos() -> dict[str, Path]:
    from consentry.demo.photos import ensure_photos

    return ensure_photos()
