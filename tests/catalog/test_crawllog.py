"""The crawl log: batches of refusals and page visits per job, found again by URL, erased by source/job/URL, expired.

Unit tests on the in-memory store; the last test runs the same calls against the real S3 server.
"""

from __future__ import annotations

import time

import pytest

from consentry.catalog.crawllog import CrawlLog, CrawlRefusal, PageVisit, parse_line
from consentry.core.errors import RecordError
from consentry.core.records import Decision, Signal
from tests.fakes import MemoryObjectStore

A, B, CDN = "http://a.test", "http://b.test:8080", "http://cdn.a.test"
NOAI = Signal(name="x-robots-tag", value="noai", opt_out=True)


def refusal(url, job="job-1", source="src-a", reason="robots-txt", page=None, what="image"):
    return CrawlRefusal(job_id=job, source_id=source, url=url, what=what, reason=reason, page_url=page,
                        signals=[Signal(name="robots.txt", value="disallowed", opt_out=True, scope="image")])


def visit(url, images, job="job-1", source="src-a", refused=False):
    return PageVisit(job_id=job, source_id=source, url=url, status=200,
                     decision=Decision.REFUSE if refused else Decision.INDEX, reason="noai" if refused else "allowed",
                     signals=[NOAI] if refused else [], images=images)


def filled(store=None, j1="job-1", j2="job-2"):
    log = CrawlLog(store or MemoryObjectStore())
    log.append(j1, "src-a", [visit(f"{A}/p.html", [f"{A}/1.jpg", f"{CDN}/2.jpg"], job=j1),
                             refusal(f"{A}/1.jpg", job=j1, page=f"{A}/p.html")], CrawlLog.batch_name("r1", 1))
    log.append(j1, "src-a", [visit(f"{A}/optout.html", [f"{A}/3.jpg"], job=j1, refused=True)],
               CrawlLog.batch_name("r1", 2))
    log.append(j2, "src-b", [refusal(f"{B}/x.html", job=j2, source="src-b", what="request")],
               CrawlLog.batch_name("r9", 1))
    return log


def test_lines_round_trip_and_are_found_by_url_across_hosts():
    log = filled()
    lines = list(log.lines("job-1"))
    assert [type(ln).__name__ for ln in lines] == ["PageVisit", "CrawlRefusal", "PageVisit"]
    assert parse_line(lines[1].model_dump_json()) == lines[1]
    assert log.jobs_for_host("a.test") == ["job-1"] and log.jobs_for_host("cdn.a.test") == ["job-1"]
    assert log.jobs_for_host("b.test%3A8080") == ["job-2"] and log.jobs_for_source("src-b") == ["job-2"]
    about = log.about([f"{CDN}/2.jpg"])  # an image on another host is found through its page's visit
    assert [ln.url for ln in about] == [f"{A}/p.html"]
    assert {ln.url for ln in log.about([f"{A}/1.jpg"])} == {f"{A}/p.html", f"{A}/1.jpg"}
    assert [r.url for r in log.refusals("job-2")] == [f"{B}/x.html"]
    assert log.about(["http://never.test/x.jpg"]) == []


def test_a_line_stored_twice_is_read_once():
    log = filled()
    again = refusal(f"{A}/1.jpg", page=f"{A}/p.html")
    original = log.refusals("job-1")[0]
    log.append("job-1", "src-a", [original, again], CrawlLog.batch_name("r2", 1))  # a retried batch after a crash
    assert sum(1 for r in log.refusals("job-1") if r == original) == 1


def test_bad_lines_are_refused_with_a_clear_error():
    with pytest.raises(RecordError, match="invalid crawl-log line"):
        parse_line('{"record": "refusal", "url": "x"}')


def test_erasure_by_job_removes_its_batches_and_markers_only():
    store = MemoryObjectStore()
    log = filled(store)
    n = log.delete_for(job="job-1")
    assert n >= 2 + 3  # two batches, host and source markers
    assert log.batches("job-1") == [] and log.jobs_for_host("a.test") == [] and log.jobs_for_source("src-a") == []
    assert [k for k in store.objects if "job-1" in k] == []
    assert log.refusals("job-2") and log.jobs_for_host("b.test%3A8080") == ["job-2"]


def test_erasure_by_source_removes_every_job_of_it():
    store = MemoryObjectStore()
    log = filled(store)
    log.delete_for(source="src-b")
    assert log.batches("job-2") == [] and log.jobs_for_source("src-b") == []
    assert [k for k in store.objects if "job-2" in k or "src-b" in k] == []
    assert log.batches("job-1")


def test_erasure_by_url_removes_what_names_it_and_keeps_the_rest():
    log = filled()
    assert log.delete_for(url=f"{A}/1.jpg") == 1  # one batch rewritten
    assert log.about([f"{A}/1.jpg"]) == []
    page = [ln for ln in log.lines("job-1") if isinstance(ln, PageVisit) and ln.url == f"{A}/p.html"][0]
    assert page.images == [f"{CDN}/2.jpg"]  # the page stays, without the erased image
    log.delete_for(url=f"{A}/optout.html")  # the only line of its batch: the batch goes
    assert len(log.batches("job-1")) == 1
    with pytest.raises(ValueError):
        log.delete_for(job="job-1", url=f"{A}/x")


def test_retention_expires_batches_by_their_source_retention():
    store = MemoryObjectStore()
    log = CrawlLog(store)
    day_ms = 86_400_000
    now = time.time()
    old = CrawlLog.batch_name("r1", 1, now_ms=int(now * 1000) - 40 * day_ms)
    new = CrawlLog.batch_name("r1", 2, now_ms=int(now * 1000) - 1 * day_ms)
    log.append("job-1", "src-a", [refusal(f"{A}/old.jpg")], old)
    log.append("job-1", "src-a", [refusal(f"{A}/new.jpg")], new)
    log.append("job-2", "src-b", [refusal(f"{B}/old.jpg", job="job-2", source="src-b")], old)
    assert log.expire({"src-a": 30}, default_days=365, now=now) == 1  # src-b: 365 days by default
    assert [r.url for r in log.refusals("job-1")] == [f"{A}/new.jpg"] and log.refusals("job-2")
    log.expire({"src-a": 30, "src-b": 7}, default_days=365, now=now)
    assert log.batches("job-2") == [] and log.jobs_for_source("src-b") == []
    assert log.jobs_for_host("b.test%3A8080") == []


def test_on_the_real_object_store(object_store):
    import uuid

    j1, j2 = f"job-{uuid.uuid4().hex[:8]}", f"job-{uuid.uuid4().hex[:8]}"
    log = filled(object_store, j1, j2)
    assert {(ln.job_id, ln.url) for ln in log.about([f"{CDN}/2.jpg"])} >= {(j1, f"{A}/p.html")}
    assert j1 in log.jobs_for_host("cdn.a.test") and j2 in log.jobs_for_host("b.test%3A8080")
    assert log.delete_for(job=j1) >= 5 and log.batches(j1) == [] and j1 not in log.jobs_for_host("cdn.a.test")
    assert log.delete_for(job=j2) >= 3 and not [k for k in object_store.list("crawl-log/") if j2 in k]
