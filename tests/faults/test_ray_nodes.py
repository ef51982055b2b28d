"""Ray across machines, on one machine: a head and a second node that joins it with `ray start --address`,
both on loopback with token auth, in this test's own temp dir; `ingest run` spreads its actors over both;
every process of the second node (raylet, actors) is SIGKILLed mid-run (records held in flight); the run
completes with every candidate accounted for exactly once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from consentry.infra.process import session_members
from consentry.infra.ray_node import RayNode, ensure_token
from tests.conftest import PORT_BASE

from .test_faults import EXPECTED, fetched_again, hold

pytestmark = pytest.mark.slow
HEAD_PORT, NODE_PORT = PORT_BASE + 2200, PORT_BASE + 2800


def _named(node: RayNode, name: str) -> list[int]:
    """Live processes of ``node`` whose command name (15 characters at most) contains ``name``."""
    out = []
    for pid in node.processes():
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
        paths = list(run.site.routes)
        gate = hold(run, paths)  # every image waits: each actor's first batch is in flight when the node goes
        run.produce()
        proc = run.ingest("--workers", "2", ray=True)
        deadline = time.monotonic() + 240
        # an actor fetches at most ingest_prepare_threads (4) images at once: 5 held requests mean both are fetching
        while not (_named(node, "IngestAct") and _named(head, "IngestAct")
                   and len({p for p in run.site.requests if p in paths}) >= 5):
            assert proc.poll() is None, Path(proc.log_path).read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "no actor on each node with work in flight"
            time.sleep(0.2)
        assert _named(node, "raylet")
        for pid in node.processes():  # the second machine goes away: its raylet and its actors at once
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        gate.set()
        totals = run.finish(proc, timeout=600)
        assert totals["mode"] == "ray" and totals["workers"] == 2
        assert run.account() == EXPECTED
        assert fetched_again(run, paths)  # what the lost node's actor held in flight was redelivered
    finally:
        node.stop(timeout_s=30)
        head.stop(timeout_s=30)
    assert pgids and not any(session_members(p) for p in pgids)  # these two nodes' processes, all gone
