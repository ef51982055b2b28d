"""Ingest test fixtures: a local image site, and one session-scoped Ray (fractional CPUs, timeouts)."""

from __future__ import annotations

import os
from collections.abc import Iterator

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
    """One local Ray for the whole session: 2 CPUs, small object store, no dashboard, own temp dir.

    A local ray.init picks free ports (never Redis's 6379) and is shut down with ray.shutdown(),
    which stops only this session's Ray processes.
    """
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.pop("RAY_ADDRESS", None)  # never attach to someone else's cluster
    import ray

    from tests.conftest import PORT_BASE

    ray.init(num_cpus=2, object_store_memory=128 * 1024 * 1024, include_dashboard=False, log_to_driver=False,
             namespace=f"consentry-test-{PORT_BASE}", _temp_dir=os.path.join(os.environ.get("RAY_TMPDIR", "/tmp"), f"cray{PORT_BASE}"))
    try:
        yield
    finally:
        ray.shutdown()
