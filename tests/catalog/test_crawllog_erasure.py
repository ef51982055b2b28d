"""Erasure by source, job or URL removes the crawl-log records that name what was erased; retention expires them.

(The Eraser and the retention sweep call the crawl log; these tests run them on the in-memory fakes.)
"""

from __future__ import annotations

import time

from consentry.catalog import ProvenanceStore
from consentry.catalog.crawllog import CrawlLog
from consentry.faceindex import FaceIndex, IndexConfig
from consentry.indexer.audit import AuditLog
from consentry.indexer.erasure import Eraser
from consentry.indexer.retention import RetentionSweeper
from tests.fakes import MemoryObjectStore, MemoryVectorStore

from .test_crawllog import CDN, A, filled


def parts():
    store = MemoryObjectStore()
    index = FaceIndex(MemoryVectorStore(), IndexConfig())
    index.ensure()
    return store, index, ProvenanceStore(store), AuditLog(store)


def eraser(store, index, provenance, audit):
    return Eraser(index, provenance, store, audit, erasure_threshold=0.45)


def test_erasure_by_url_job_and_source_takes_the_crawl_records_with_it():
    store, index, prov, audit = parts()
    log = filled(store)
    r = eraser(store, index, prov, audit).forget_url(f"{A}/1.jpg", "privacy:test")
    assert r.deleted["crawl_log_objects"] == 1 and log.about([f"{A}/1.jpg"]) == []
    assert log.about([f"{CDN}/2.jpg"])  # other URLs of the same batch stay
    r = eraser(store, index, prov, audit).forget_job("job-1", "privacy:test")
    assert r.deleted["crawl_log_objects"] >= 2 and log.batches("job-1") == []
    r = eraser(store, index, prov, audit).forget_source("src-b", "privacy:test")
    assert r.deleted["crawl_log_objects"] >= 2 and log.batches("job-2") == []
    assert log.jobs_for_host("b.test%3A8080") == []
    assert [k for k in store.objects if k.startswith("crawl-log/")] == []


def test_the_retention_sweep_expires_crawl_records_past_their_source_retention():
    store, index, prov, audit = parts()
    log = CrawlLog(store)
    now = time.time()
    old = CrawlLog.batch_name("r1", 1, now_ms=int((now - 40 * 86400) * 1000))
    filled_log = filled(store)
    log.append("job-1", "src-a", list(filled_log.lines("job-1"))[:1], old)
    rep = RetentionSweeper(index, prov, audit, source_retention_days={"src-a": 30, "src-b": 365}).sweep(now=now)
    assert rep.deleted["crawl_log_objects"] == 1  # the 40-day-old batch; the fresh ones stay
    assert len(log.batches("job-1")) == 2 and log.batches("job-2")
    assert audit.verify().ok and list(audit.entries())[-1]["details"]["deleted"]["crawl_log_objects"] == 1
