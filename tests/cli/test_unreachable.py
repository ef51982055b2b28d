"""With the servers down, a command says which one is not answering and what to do, exits 4, no traceback."""

import os
import socket
import subprocess
import sys

import pytest


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nothing_up(tmp_path):
    port = closed_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env.update({"CONSENTRY_HOME": str(tmp_path), "CONSENTRY_S3_ENDPOINT": f"http://127.0.0.1:{port}",
                "CONSENTRY_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}", "CONSENTRY_MILVUS_URI": f"http://127.0.0.1:{port}",
                "CONSENTRY_S3_ACCESS_KEY": "k", "CONSENTRY_S3_SECRET_KEY": "s"})
    return port, env


@pytest.mark.slow
@pytest.mark.parametrize(("argv", "service", "env"), [
    (["source", "list"], "S3", "CONSENTRY_S3_ENDPOINT"),
    (["doctor"], "Milvus", "CONSENTRY_MILVUS_URI"),
    (["ingest", "run", "--no-ray", "--until-idle"], "Kafka", "CONSENTRY_KAFKA_BOOTSTRAP"),
], ids=["s3", "milvus", "kafka"])
def test_an_unreachable_server_is_named_with_what_to_do(nothing_up, argv, service, env):
    port, environ = nothing_up
    proc = subprocess.run([sys.executable, "-m", "consentry.cli.main", *argv], env=environ, capture_output=True,
                          text=True, timeout=120)
    err = proc.stderr.strip()
    assert proc.returncode == 4, err
    assert err == (f"consentry: error: {service} at {'http://' if service != 'Kafka' else ''}127.0.0.1:{port} "
                   f"is not answering — run `consentry stack up` or set {env}"), err
