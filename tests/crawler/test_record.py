"""The crawl recorder: lines stored in batches, kept (never dropped) when the object store fails, stored on resume."""

import asyncio

from scrapy.utils.test import get_crawler
from twisted.internet.defer import maybeDeferred

from consentry.catalog.crawllog import CrawlLog, CrawlRefusal
from consentry.core.retry import RetryPolicy
from consentry.crawler.record import BATCHES, FAILURES, STORED, UNSTORED, CrawlRecorder
from tests.fakes import MemoryObjectStore


def line(i: int) -> CrawlRefusal:
    return CrawlRefusal(job_id="job-1", source_id="src", url=f"http://h.test/{i}.jpg", what="image",
                        reason="robots-txt")


def recorder(store, pending, interval_s=0.0, overflow=None):
    return CrawlRecorder(CrawlLog(store), "job-1", "src", get_crawler().stats, batch_size=4, interval_s=interval_s,
                         retry=RetryPolicy(attempts=2, base_delay_s=0.001, max_delay_s=0.002), pending_file=pending,
                         run_blocking=maybeDeferred, on_overflow=overflow)


def test_lines_are_stored_in_batches_and_the_rest_at_close(tmp_path):
    store = MemoryObjectStore()
    rec = recorder(store, tmp_path / "records.pending.jsonl")
    rec.spider_opened()
    for i in range(10):
        rec.add(line(i))
    assert len(CrawlLog(store).batches("job-1")) == 2  # two full batches of 4, stored as they filled
    asyncio.run(rec.spider_closed())
    assert [r.url for r in CrawlLog(store).refusals("job-1")] == [f"http://h.test/{i}.jpg" for i in range(10)]
    assert (rec.stats.get_value(STORED), rec.stats.get_value(BATCHES)) == (10, 3)
    assert not (tmp_path / "records.pending.jsonl").exists()


def test_an_object_store_outage_keeps_the_lines_and_resume_stores_them(tmp_path):
    store, pending = MemoryObjectStore(), tmp_path / "records.pending.jsonl"
    overflows = []
    rec = recorder(store, pending, interval_s=60, overflow=lambda: overflows.append(1))
    store.down = True
    for i in range(6):
        rec.add(line(i))  # the first full batch fails: kept, in order, for the next interval
    assert rec.stats.get_value(FAILURES) == 1 and not overflows
    asyncio.run(rec.spider_closed())  # retried, fails again: kept in the job dir
    assert rec.stats.get_value(UNSTORED) == 6 and len(pending.read_text().splitlines()) == 6
    store.down = False
    again = recorder(store, pending)  # `crawl resume`: a new run of the same job
    again.spider_opened()
    again.add(line(6))
    asyncio.run(again.spider_closed())
    assert [r.url for r in CrawlLog(store).refusals("job-1")] == [f"http://h.test/{i}.jpg" for i in range(7)]
    assert not pending.exists() and again.stats.get_value(UNSTORED) is None


def test_a_store_that_keeps_failing_stops_the_crawl_before_memory_runs_out(tmp_path):
    store, overflows = MemoryObjectStore(), []
    rec = recorder(store, tmp_path / "p.jsonl", interval_s=0, overflow=lambda: overflows.append(1))
    store.down = True
    for i in range(4 * 10):
        rec.add(line(i))
    assert overflows  # ten batches waiting: the crawl is asked to stop (and its lines are kept at close)


def test_without_a_crawl_log_nothing_is_buffered():
    rec = CrawlRecorder(None, "job-1", "src", get_crawler().stats, batch_size=1, interval_s=0, retry=RetryPolicy())
    rec.add(line(1))
    asyncio.run(rec.spider_closed())
    assert rec.stats.get_value(STORED) is None
