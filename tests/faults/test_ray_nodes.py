"""Ray across machines, on one machine: a head and a second node that joins it with `ray start --address`,
both on loopback with token auth, in this test's own temp dir; `ingest run` spreads its actors over both;
the second node's raylet is SIGKILLed mid-run (records held in flight); the run completes with every
candidate accounted for exactly once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from consentry.infra.process import group_members
from consentry.infra.ray_node import RayNode, ensure_token
from tests.conftest import PORT_BASE

from .test_faults import EXPECTED, fetched_again, held, hold

pytestmark = pytest.mark.slow
HEAD_PORT, NODE_PORT = PORT_BASE + 2200, PORT_BASE + 2800


def _named(pgid: int, name: str) -> list[int]:
    """Live processes of group ``pgid`` whose command name (15 characters at most) contains ``name``."""
    out = []
    for pid in group_members(pgid):
        try:
            if name in Path(f"/proc/{pid}/comm").read_text():
                out.append(pid)
        except OSError:
            continue
    return out


def test_losing_a_ray_node_mid_run_loses_and_duplicates_nothing(run, tmp_path):
    token = ensure_token(tmp_path / "auth_token")
    head = RayNode("ray-head", tmp_path / "head", HEAD_PORT, token, cpus=1, object_store_mb=100)
    # Ray rewrites a literal loopback bootstrap address to the machine's address (it assumes nodes are on
    # different machines); written with leading zeros it is the same loopback address to the OS but not to
    # that check, so the second node joins on 127.0.0.1 and listens there only
    node = RayNode("ray-node2", tmp_path / "node2", NODE_PORT, token, cpus=1, object_store_mb=100,
                   head=f"127.000.000.001:{HEAD_PORT}")
    pgids: list[int] = []
    try:
        head.start(timeout_s=180)
        node.start(timeout_s=180)
        pgids = [head.proc.pid(), node.proc.pid()]
        run.env.update({**head.endpoint.env(), "CONSENTRY_RAY_ADDRESS": head.endpoint.address,
                        "CONSENTRY_INGEST_WORKER_CPUS": "0.5", "CONSENTRY_INGEST_ACTOR_START_TIMEOUT_S": "240"})
        run.populate()
        paths = held(run)
        gate = hold(run, paths)
        run.produce()
        proc = run.ingest("--workers", "2", ray=True)
        deadline = time.monotonic() + 240
        node_pgid = node.proc.pid()
        assert node_pgid is not None
        while not (_named(node_pgid, "IngestAct") and _named(head.proc.pid(), "IngestAct")
                   and run.progress() >= 4 and any(p in run.site.requests for p in paths)):
            assert proc.poll() is None, Path(proc.log_path).read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "no actor on each node with work in flight"
            time.sleep(0.2)
        (raylet,) = _named(node_pgid, "raylet")
        os.kill(raylet, signal.SIGKILL)  # the second machine goes away
        gate.set()
        totals = run.finish(proc, timeout=600)
        assert totals["mode"] == "ray" and totals["workers"] == 2
        assert fetched_again(run, paths)  # what the lost node held was redelivered
        assert run.account() == EXPECTED
    finally:
        node.stop(timeout_s=30)
        head.stop(timeout_s=30)
    assert pgids and not any(group_members(p) for p in pgids)  # exactly these two nodes' processes, all gone
