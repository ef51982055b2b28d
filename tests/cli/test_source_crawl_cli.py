"""`consentry source` and `consentry crawl` through the CLI, on the real object store and broker."""

from __future__ import annotations

import json
import time

import pytest

from consentry.cli.main import main
from tests.crawler.conftest import fresh_settings, read_topic
from tests.crawler.site import SiteServer, chain_site

PAGES = 30


@pytest.fixture
def cli_env(stack, monkeypatch):
    """Settings unique to this test, given to the CLI (and its crawl processes) through the environment."""
    s = fresh_settings(stack, crawl_concurrency_per_domain=1)
    for name in ("topic_prefix", "kafka_consumer_group", "crawl_retry_times", "retry_base_delay_s",
                 "retry_max_delay_s", "crawl_concurrency_per_domain"):
        monkeypatch.setenv(f"CONSENTRY_{name.upper()}", str(getattr(s, name)))
    return s


def cli(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def cli_json(capsys, *args):
    rc, out, err = cli(capsys, *args)
    assert rc == 0, err
    return json.loads(out)


@pytest.fixture
def site():
    srv = SiteServer(chain_site(PAGES), delay_s=0.1).start()
    yield srv
    srv.stop()


def test_source_add_list_show(cli_env, capsys):
    rc, out, err = cli(capsys, "source", "add", "family-a", "--match", "photos.example.org", "--basis", "consent",
                       "--evidence", "DOC-1", "--contact", "dpo@example.org")
    assert rc == 0 and "family-a" in out
    shown = cli_json(capsys, "source", "show", "family-a", "--json")
    assert (shown["match"], shown["basis"], shown["evidence"], shown["retention_days"]) == (
        "photos.example.org", "consent", "DOC-1", cli_env.retention_default_days)
    assert "family-a" in {s["id"] for s in cli_json(capsys, "source", "list", "--json")}
    rc, out, _ = cli(capsys, "source", "list")
    assert rc == 0 and "family-a" in out and "photos.example.org" in out

    rc, _, err = cli(capsys, "source", "add", "family-a", "--match", "other.example.org", "--basis", "consent")
    assert rc == 1 and err.startswith("consentry: error: source 'family-a' already exists") and err.count("\n") == 1
    rc, _, err = cli(capsys, "source", "add", "family-a", "--match", "other.example.org", "--basis", "licence",
                     "--retention-days", "5000", "--replace")
    assert rc == 0 and "capped to 1095" in err
    shown = cli_json(capsys, "source", "show", "family-a", "--json")
    assert (shown["match"], shown["basis"], shown["retention_days"]) == ("other.example.org", "licence", 1095)

    rc, _, err = cli(capsys, "source", "add", "Bad Name", "--match", "x.example.org", "--basis", "consent")
    assert rc == 1 and "not a valid identifier" in err
    rc, _, err = cli(capsys, "source", "show", "nope-nothing")
    assert rc == 1 and "no source named 'nope-nothing'" in err


def test_crawl_start_refuses_seeds_outside_the_source_and_basis_none(cli_env, capsys, site):
    cli(capsys, "source", "add", "scoped", "--match", f"{site.base}/p/", "--basis", "consent")
    cli(capsys, "source", "add", "nobasis", "--match", f"127.0.0.1:{site.port}", "--basis", "none")
    before = len(cli_json(capsys, "crawl", "list", "--json"))

    rc, out, err = cli(capsys, "crawl", "start", "--source", "scoped", "--seed", site.url("/"))
    assert rc == 1 and out == ""
    assert err == f"consentry: error: seed {site.url('/')} is outside source 'scoped' (match {site.base}/p/)\n"
    rc, _, err = cli(capsys, "crawl", "start", "--source", "scoped", "--seed", site.url("/p/1.html"),
                     "--seed", "http://example.org/p/")
    assert rc == 1 and "seed http://example.org/p/ is outside source 'scoped'" in err
    rc, _, err = cli(capsys, "crawl", "start", "--source", "nobasis", "--seed", site.url("/"))
    assert rc == 1 and err == "consentry: error: source 'nobasis' has basis 'none': nothing may be crawled for it\n"
    rc, _, err = cli(capsys, "crawl", "start", "--source", "missing", "--seed", site.url("/"))
    assert rc == 1 and "no source named 'missing'" in err
    rc, _, err = cli(capsys, "crawl", "start", "--source", "scoped")
    assert rc == 1 and "at least one --seed" in err

    assert len(cli_json(capsys, "crawl", "list", "--json")) == before  # nothing was started or stored
    assert site.hits == []


def test_crawl_start_foreground_and_status(cli_env, capsys, site, tmp_path):
    cli(capsys, "source", "add", "fg", "--match", f"127.0.0.1:{site.port}", "--basis", "own-archive")
    site.delay_s = 0.0
    job_file = tmp_path / "job.yaml"
    job_file.write_text(f"source: fg\nseeds: ['{site.url('/')}']\ndepth: 1\n")
    rc, out, err = cli(capsys, "crawl", "start", "--job-file", str(job_file), "--max-pages", "4", "--json")
    assert rc == 0, err
    done = json.loads(out)
    assert done["state"] == "finished" and done["depth"] == 1 and done["max_pages"] == 4
    assert done["stats"]["pages"] == 4 and done["stats"]["published"] == 4
    assert len([p for p in site.paths() if p.startswith("/p/") or p == "/"]) == 4  # the page budget holds

    status = cli_json(capsys, "crawl", "status", done["id"], "--json")
    assert status["state"] == "finished" and status["pid"] is None and status["stats"] == done["stats"]
    rc, out, _ = cli(capsys, "crawl", "status", done["id"])
    assert rc == 0 and "images published: 4" in out
    rc, out, _ = cli(capsys, "crawl", "list")
    assert rc == 0 and done["id"] in out and "finished" in out
    rc, _, err = cli(capsys, "crawl", "resume", done["id"])
    assert rc == 1 and "has finished" in err
    rc, _, err = cli(capsys, "crawl", "stop", done["id"])
    assert rc == 1 and "is not running" in err
    rc, _, err = cli(capsys, "crawl", "status", "no-such-job")
    assert rc == 1 and "no crawl job 'no-such-job'" in err


def wait_for(predicate, timeout_s=30.0, every_s=0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_stop_then_resume_completes_without_republishing(cli_env, capsys, site):
    cli(capsys, "source", "add", "resumable", "--match", f"127.0.0.1:{site.port}", "--basis", "consent")
    rc, out, err = cli(capsys, "crawl", "start", "--source", "resumable", "--seed", site.url("/"), "--depth", "50",
                       "--detach")
    assert rc == 0, err
    job_id = out.strip()

    running = wait_for(lambda: (st := cli_json(capsys, "crawl", "status", job_id, "--json"))["stats"].get(
        "published", 0) >= 3 and st)
    assert running["state"] == "running" and running["pid"]

    rc, out, err = cli(capsys, "crawl", "stop", job_id)
    assert rc == 0, err
    stopped = cli_json(capsys, "crawl", "status", job_id, "--json")
    assert stopped["state"] == "stopped" and stopped["pid"] is None
    first = stopped["stats"]["published"]
    assert 3 <= first < PAGES
    assert len(read_topic(cli_env, first, quiet_s=1.5)) == first

    rc, out, err = cli(capsys, "crawl", "resume", job_id, "--json")
    assert rc == 0, err
    done = json.loads(out)
    assert done["state"] == "finished"
    assert done["stats"]["published"] == PAGES and done["stats"]["pages"] == PAGES

    records = read_topic(cli_env, PAGES)
    assert len(records) == PAGES and len({r.url for r in records}) == PAGES  # all of them, each once
    assert {r.job_id for r in records} == {job_id}
    pages = [p for p in site.paths() if p.startswith("/p/") or p == "/"]
    assert len(pages) == len(set(pages)) == PAGES  # the resumed crawl went on from where it stopped


def test_ctrl_c_stops_a_foreground_crawl_gracefully(cli_env, capsys, site):
    """`crawl start` in the foreground: SIGINT (Ctrl-C) → graceful stop, state stopped, exit 130."""
    import os
    import signal
    import subprocess
    import sys

    cli(capsys, "source", "add", "fg-stop", "--match", f"127.0.0.1:{site.port}", "--basis", "consent")
    proc = subprocess.Popen([sys.executable, "-m", "consentry.cli.main", "crawl", "start", "--source", "fg-stop",
                             "--seed", site.url("/"), "--depth", "50"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    job_id = proc.stdout.readline().strip()  # the job id comes first
    wait_for(lambda: len([p for p in site.paths() if p.startswith("/p/")]) >= 3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"crawl resume {job_id}" in err
    assert out.startswith("stopped: pages ")
    stopped = cli_json(capsys, "crawl", "status", job_id, "--json")
    assert stopped["state"] == "stopped" and stopped["pid"] is None
    assert 0 < stopped["stats"]["pages"] < PAGES


def test_stop_right_after_a_detached_start(cli_env, capsys, site):
    """A stop that arrives while the crawl process is still starting is honoured, not lost."""
    cli(capsys, "source", "add", "quick-stop", "--match", f"127.0.0.1:{site.port}", "--basis", "consent")
    rc, out, err = cli(capsys, "crawl", "start", "--source", "quick-stop", "--seed", site.url("/"), "--depth", "50",
                       "--detach", "--json")
    assert rc == 0, err
    job_id = json.loads(out)["id"]
    rc, out, err = cli(capsys, "crawl", "stop", job_id)
    assert rc == 0, err
    status = cli_json(capsys, "crawl", "status", job_id, "--json")
    assert status["state"] == "stopped" and status["pid"] is None
    assert status["stats"]["pages"] < PAGES
