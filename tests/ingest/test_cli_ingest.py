"""`consentry ingest run` in-process mode, and graceful shutdown on SIGTERM of a real CLI process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from consentry.cli.main import cli
from consentry.core.records import ImageCandidate

from .site import Route, to_jpeg
from .stackhelp import Env, settings_for

pytestmark = pytest.mark.slow
JPEG = {"Content-Type": "image/jpeg"}
OVERRIDES = ("topic_prefix", "milvus_collection", "milvus_suppression_collection", "kafka_consumer_group",
             "s3_bucket", "ingest_idle_seconds", "retry_base_delay_s", "retry_max_delay_s", "kafka_max_poll_records")


def test_sigterm_finishes_the_batch_commits_and_a_restart_loses_nothing(stack, site, photos, monkeypatch):
    s = settings_for(stack, kafka_max_poll_records=2)
    env = Env(s)
    env.add_sources(site)
    cands = []
    for q in (92, 80):  # two encodings of each photo: distinct bytes, distinct faces; more than the batches in flight
        for k, name in enumerate(["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "t1.jpg", "astronaut.png"]):
            path = f"/q{q}/p{k}.jpg"
            site.routes[path] = Route(to_jpeg(photos[name], quality=q), headers=JPEG, delay_s=0.5)
            cands.append(ImageCandidate(url=site.url(path), page_url=site.url("/"), job_id="job-t",
                                        source_id="family"))
    env.produce(cands)
    for name in OVERRIDES:
        monkeypatch.setenv(f"CONSENTRY_{name.upper()}", str(getattr(s, name)))
    proc = subprocess.Popen([sys.executable, "-m", "consentry.cli.main", "ingest", "run", "--no-ray", "--json",
                             "--interval", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    try:
        deadline = time.monotonic() + 90
        while len(list(env.provenance.keys())) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "SIGTERM: finishing the batches in flight" in err
    first = json.loads(out)
    assert 2 <= first["records"] < len(cands)
    assert len(list(env.provenance.keys())) == first["records"]  # the batches in flight were finished and written
    # the same group again: only what was not committed is consumed, nothing twice
    result = CliRunner().invoke(cli, ["ingest", "run", "--no-ray", "--until-idle", "--json"])
    assert result.exit_code == 0, result.output
    second = json.loads(result.stdout)
    assert second["mode"] == "threads"
    assert first["records"] + second["records"] == len(cands)
    assert len(list(env.provenance.keys())) == len(cands)
    assert env.index.count() == 22  # twice 1 + 1 + 1 + 1 + 6 + 1
