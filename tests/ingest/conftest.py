"""Ingest test fixtures: a local image site, and one session-scoped Ray (fractional CPUs, timeouts)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .site import Site


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site().start()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray for the whole session: 2 CPUs, no dashboard, its own temp dir, token auth, loopback only,
    started by the product's ``connect_ray`` (retried while Ray is slow to start on a busy machine).

    A local ray.init picks free ports (never Redis's 6379) and is shut down with ray.shutdown(),
    which stops only this session's Ray processes.
    """
    from consentry.infra.ray_node import RayEndpoint, ensure_token
    from consentry.ingest.raypool import connect_ray
    from tests.conftest import PORT_BASE

    os.environ.pop("RAY_ADDRESS", None)  # never attach to someone else's cluster
    token = ensure_token(Path(tempfile.mkdtemp(prefix="ray-token-")) / "auth_token")
    connect_ray(None, RayEndpoint("", token).env(), timeout_s=240, local_cpus=2,
                temp_dir=os.path.join(os.environ.get("RAY_TMPDIR", "/tmp"), f"cray{PORT_BASE}"))
    import ray

    try:
        yield
    finally:
        ray.shutdown()
