"""A broker that is down or dies mid-crawl: retries with backoff, then the job fails loudly; nothing is dropped."""

from __future__ import annotations

import subprocess

import pytest

from consentry import wiring
from consentry.core.records import JobState
from consentry.infra.process import port_open, wait_until
from consentry.infra.stack import tansu_binary

from .conftest import add_source, fresh_settings, read_topic, run_crawl
from .site import SiteServer, chain_site, free_port


@pytest.fixture
def slow_site():
    site = SiteServer(chain_site(12), delay_s=0.06).start()
    yield site
    site.stop()


@pytest.mark.slow
def test_broker_down_fails_the_job_loudly(stack, slow_site):
    s = fresh_settings(stack, kafka_bootstrap=f"127.0.0.1:{free_port()}", crawl_publish_retries=1)
    add_source(s, "nobroker", f"127.0.0.1:{slow_site.port}")
    job, rc = run_crawl(s, "nobroker", [slow_site.url("/")], depth=2)
    assert rc == 4 and job.state is JobState.FAILED
    assert "broker" in job.error.lower() and "does not answer" in job.error
    assert slow_site.hits == []  # nothing crawled that could not be published


@pytest.mark.slow
def test_broker_lost_mid_crawl_fails_loudly_and_resume_publishes_the_rest_once(stack, tmp_path):
    """A private broker dies mid-crawl: retries, then state failed (exit 4) with nothing dropped; after it is
    back, resume publishes exactly what was not acknowledged before."""
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"

    def start_broker():
        proc = subprocess.Popen([tansu_binary(), "broker", "--listener-url", addr, "--advertised-listener-url", addr,
                                 "--storage-engine", "memory://tansu/"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        assert wait_until(lambda: port_open("127.0.0.1", port), 15)
        return proc

    site = SiteServer(chain_site(30), delay_s=0.1).start()
    broker = start_broker()
    try:
        s = fresh_settings(stack, kafka_bootstrap=f"127.0.0.1:{port}", crawl_concurrency_per_domain=1,
                           crawl_publish_retries=1, kafka_request_timeout_ms=1500)
        add_source(s, "flaky", f"127.0.0.1:{site.port}")
        launcher = wiring.crawl_launcher(s)
        job = launcher.plan("flaky", [site.url("/")], depth=50)
        proc = launcher.spawn(job.id)
        jobdir = launcher.view(job).jobdir
        def acked() -> set[str]:
            return set(jobdir.published_file.read_text().split()) if jobdir.published_file.is_file() else set()

        assert wait_until(lambda: len(acked()) >= 3, 30, 0.1)
        broker.kill()  # a crash (on SIGTERM tansu keeps serving open connections until they close)
        broker.wait(10)
        job, rc = launcher.wait(job.id, proc)
        assert rc == 4 and job.state is JobState.FAILED and "broker" in job.error
        before = acked()
        kept = jobdir.unpublished_file.read_text().splitlines() if jobdir.unpublished_file.exists() else []
        assert len(before) < 30 and kept  # what the broker never acknowledged was kept, not dropped

        broker = start_broker()  # empty again (memory storage): it will hold only what the resume sends
        job, rc = launcher.wait(job.id, launcher.resume(job.id))
        assert rc == 0 and job.state is JobState.FINISHED, job.error
        records = read_topic(s, 30 - len(before))
        keys = [r.key for r in records]
        assert len(keys) == len(set(keys)) and not set(keys) & before  # nothing acknowledged is sent again
        assert len(before) + len(keys) == 30 and not jobdir.unpublished_file.exists()
    finally:
        broker.kill()
        broker.wait(10)
        site.stop()
