"""Politeness, seen from the server: per-domain concurrency really enforced, Crawl-delay honoured."""

from __future__ import annotations

from itertools import pairwise

import pytest

from consentry.core.records import JobState

from .conftest import add_source, fresh_settings, read_topic, run_crawl
from .site import SiteServer, chain_site

PAGES = 12


@pytest.fixture
def slow_site():
    site = SiteServer(chain_site(PAGES), delay_s=0.06).start()
    yield site
    site.stop()


def crawler_hits(site, settings):
    return [h for h in site.hits if h.user_agent == settings.user_agent]


@pytest.mark.slow
def test_concurrency_one_means_one_request_at_a_time(stack, slow_site):
    s = fresh_settings(stack, crawl_concurrency_per_domain=1, crawl_download_delay=0.001)
    add_source(s, "polite", f"127.0.0.1:{slow_site.port}")
    job, rc = run_crawl(s, "polite", [slow_site.url("/")], depth=20)
    assert rc == 0 and job.state is JobState.FINISHED
    hits = crawler_hits(slow_site, s)
    assert len([h for h in hits if h.path.startswith("/p/")]) == PAGES - 1 and len(hits) == len(slow_site.hits)
    assert slow_site.max_in_flight == 1
    spans = sorted((h.start, h.end) for h in hits)
    assert all(nxt[0] >= prev[1] for prev, nxt in pairwise(spans))  # never overlapping
    assert len(read_topic(s, PAGES)) == PAGES


def test_the_measurement_can_see_overlap(stack, slow_site):
    """Control: with four per domain the same server does see concurrent requests."""
    s = fresh_settings(stack, crawl_concurrency_per_domain=4, crawl_download_delay=0.001, crawl_autothrottle=False)
    add_source(s, "eager", f"127.0.0.1:{slow_site.port}")
    job, rc = run_crawl(s, "eager", [slow_site.url("/")], depth=20)
    assert rc == 0 and job.state is JobState.FINISHED
    assert slow_site.max_in_flight > 1


def test_crawl_delay_is_honoured(stack):
    robots = "User-agent: consentry\nCrawl-delay: 0.4\nAllow: /\n"
    site = SiteServer(chain_site(5, robots=robots)).start()
    try:
        s = fresh_settings(stack, crawl_concurrency_per_domain=2, crawl_download_delay=0.001)
        add_source(s, "delayed", f"127.0.0.1:{site.port}")
        job, rc = run_crawl(s, "delayed", [site.url("/")], depth=5)
        assert rc == 0 and job.state is JobState.FINISHED
        starts = sorted(h.start for h in site.hits if h.path.startswith(("/p/", "/index")) or h.path == "/")
        assert len(starts) == 5
        gaps = [b - a for a, b in pairwise(starts)]
        assert min(gaps) >= 0.38, gaps
    finally:
        site.stop()
