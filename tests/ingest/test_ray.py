"""The Ray path for real: the CLI with Ray actors, and a SIGKILLed actor that loses and duplicates nothing.

Few and lean (2 cores): one session Ray (conftest.ray_session), fractional CPUs, timeouts on every ray.get.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter

import pytest
from click.testing import CliRunner

from consentry.cli.main import cli
from consentry.core.records import ImageCandidate
from consentry.ingest.raypool import RayPool
from consentry.ingest.runner import IdlePolicy, drive
from consentry.wiring import ingest_worker

from .site import Route, to_jpeg
from .stackhelp import Env, settings_for

pytestmark = pytest.mark.slow
JPEG = {"Content-Type": "image/jpeg"}


def test_cli_runs_ray_actors_until_idle(stack, site, photos, ray_session, monkeypatch):
    s = settings_for(stack)
    env = Env(s)
    env.add_sources(site)
    faces = {"obama.jpg": 1, "biden.jpg": 1, "t1.jpg": 6}
    for name in faces:
        site.routes[f"/{name}"] = Route(photos[name].read_bytes(), headers=JPEG)
    site.routes["/noai.jpg"] = Route(photos["obama2.jpg"].read_bytes(), headers={**JPEG, "X-Robots-Tag": "noai"})
    env.produce([ImageCandidate(url=site.url(f"/{n}"), page_url=site.url("/"), job_id="job-cli", source_id="family")
                 for n in [*faces, "noai.jpg"]])
    for name in ("topic_prefix", "milvus_collection", "milvus_suppression_collection", "kafka_consumer_group",
                 "s3_bucket", "ingest_idle_seconds", "retry_base_delay_s", "retry_max_delay_s"):
        monkeypatch.setenv(f"CONSENTRY_{name.upper()}", str(getattr(s, name)))
    # --local-ray: this process's Ray (the session's) rather than a cluster; tests/infra/test_ray_service.py runs
    # `ingest run` against the stack's Ray head
    result = CliRunner().invoke(cli, ["ingest", "run", "--local-ray", "--workers", "2", "--until-idle", "--json",
                                      "--interval", "1"])
    assert result.exit_code == 0, result.output
    totals = json.loads(result.stdout)
    assert totals["mode"] == "ray" and totals["workers"] == 2 and totals["workers_reachable"] == 2
    assert totals["records"] == 4 and totals["indexed"] == 3 and totals["faces"] == 8
    assert totals["refused_by_reason"] == {"noai": 1} and totals["dlq"] == 0
    assert "ingest: records" in result.stderr and "/s)" in result.stderr  # throughput while running
    assert env.index.count() == 8 and len(list(env.provenance.keys())) == 4


def test_a_sigkilled_ray_worker_loses_nothing_and_duplicates_nothing(stack, site, photos, ray_session):
    s = settings_for(stack, kafka_max_poll_records=2)
    env = Env(s)
    env.add_sources(site)
    per_photo = {"obama.jpg": 1, "obama2.jpg": 1, "obama3.jpg": 1, "biden.jpg": 1, "t1.jpg": 6}
    cands = []
    for q in (90, 80):  # two encodings of each photo: distinct bytes, distinct face ids
        for name in per_photo:
            path = f"/q{q}/{name}"
            site.routes[path] = Route(to_jpeg(photos[name], quality=q), headers=JPEG, delay_s=0.4)
            cands.append(ImageCandidate(url=site.url(path), page_url=site.url("/"), job_id="job-kill",
                                        source_id="family"))
    env.produce(cands)
    pool = RayPool(s, workers=1, build=ingest_worker, call_timeout_s=20, max_restarts=2)
    stop, result = threading.Event(), {}
    runner = threading.Thread(target=lambda: result.update(
        drive(pool, stop, True, IdlePolicy(s.ingest_idle_seconds, join_grace_s=15), tick_s=0.5)))
    runner.start()
    try:
        deadline = time.monotonic() + 90
        while not pool.actors and time.monotonic() < deadline:
            time.sleep(0.1)
        (pid,) = pool.pids()
        # wait until some records are committed and the next batch is being fetched, then kill -9
        while time.monotonic() < deadline:
            done = len(list(env.provenance.keys()))
            if 2 <= done < len(cands) and len(site.requests) > done:
                break
            time.sleep(0.05)
        assert 2 <= done < len(cands), "the worker finished before it could be killed"
        os.kill(pid, signal.SIGKILL)
        runner.join(180)
        assert not runner.is_alive()
    finally:
        stop.set()
        runner.join(60)
    provs = [env.provenance.get(c.key) for c in cands]
    assert all(p is not None and p.decision.value == "index" for p in provs)  # none lost
    expected = 2 * sum(per_photo.values())
    ids = [i for p in provs for i in p.face_ids]
    assert len(ids) == len(set(ids)) == expected  # none duplicated
    assert env.index.count() == expected
    assert sorted(ids) == env.snapshot()[0]  # Milvus holds exactly the faces the provenance names
    assert max(Counter(site.requests).values()) >= 2  # the record in flight at the kill was fetched again
    assert env.dead_letters() == []
