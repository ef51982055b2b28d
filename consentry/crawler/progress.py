"""Live job counters: ``progress.json`` in the job dir twice a second, and the JobStore every few seconds.

Counters are cumulative over a job's runs: a resumed run starts from the counters the last run
left (``CONSENTRY_BASELINE_STATS`` / ``CONSENTRY_BASELINE_REFUSALS``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import signals
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread

from ..core.records import utcnow
from .jobdir import JobDir
from .refusals import refusal_counts

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

log = logging.getLogger("consentry.crawler.progress")

#: job counter -> Scrapy stats key
COUNTERS = {
    "pages": "crawler/pages",
    "images_found": "crawler/images_found",
    "published": "crawler/published",
    "already_published": "crawler/already_published",
    "images_withheld": "crawler/images_withheld",
    "refused_pages": "crawler/refused_pages",
    "refused_requests": "crawler/refused_requests",
    "refused_images": "crawler/refused_images",
    "refused_links": "crawler/refused_links",
    "requests": "downloader/request_count",
    "errors": "log_count/ERROR",
}

Sink = Callable[[dict[str, int], dict[str, int]], None]


def job_counters(stats: Mapping[str, Any], baseline: Mapping[str, int] | None = None,
                 baseline_refusals: Mapping[str, int] | None = None) -> tuple[dict[str, int], dict[str, int]]:
    """(counters, refusals by reason) from Scrapy stats, added to a previous run's."""
    base = baseline or {}
    counters = {name: int(base.get(name, 0)) + int(stats.get(key, 0) or 0) for name, key in COUNTERS.items()}
    counters["elapsed_ms"] = int(base.get("elapsed_ms", 0)) + int(1000 * _elapsed_s(stats))
    refusals = dict(baseline_refusals or {})
    for reason, n in refusal_counts(stats).items():
        refusals[reason] = refusals.get(reason, 0) + n
    return counters, refusals


def _elapsed_s(stats: Mapping[str, Any]) -> float:
    """Seconds this run has crawled (Scrapy's own figure once closed)."""
    if stats.get("elapsed_time_seconds") is not None:
        return float(stats["elapsed_time_seconds"])
    start = stats.get("start_time")
    if isinstance(start, datetime):
        return max(0.0, (datetime.now(start.tzinfo) - start).total_seconds())
    return 0.0


class JobProgress:
    def __init__(self, stats: Any, jobdir: JobDir | None, sink: Sink | None, baseline: Mapping[str, int],
                 baseline_refusals: Mapping[str, int], interval_s: float = 0.5, sink_every: int = 4) -> None:
        self.stats = stats
        self.jobdir = jobdir
        self.sink = sink
        self.baseline = dict(baseline)
        self.baseline_refusals = dict(baseline_refusals)
        self.interval_s = interval_s
        self.sink_every = sink_every
        self._ticks = 0
        self._loop: LoopingCall | None = None
        self._sinking = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> JobProgress:
        s = crawler.settings
        home, job_id = s.get("CONSENTRY_HOME"), s.get("CONSENTRY_JOB_ID")
        ext = cls(crawler.stats, JobDir(Path(home), job_id) if home and job_id else None,
                  s.get("CONSENTRY_PROGRESS_SINK"), s.getdict("CONSENTRY_BASELINE_STATS"),
                  s.getdict("CONSENTRY_BASELINE_REFUSALS"), s.getfloat("CONSENTRY_PROGRESS_INTERVAL"))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        return job_counters(self.stats.get_stats(), self.baseline, self.baseline_refusals)

    def spider_opened(self) -> None:
        self._loop = LoopingCall(self.tick)
        self._loop.start(self.interval_s, now=True)

    def spider_closed(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._write_local(*self.snapshot())

    def tick(self) -> None:
        counters, refusals = self.snapshot()
        self._write_local(counters, refusals)
        self._ticks += 1
        if self.sink is not None and self._ticks % self.sink_every == 0 and not self._sinking:
            self._sinking = True
            d = deferToThread(self.sink, counters, refusals)
            d.addErrback(lambda f: log.warning("could not store job progress: %s", f.value))
            d.addBoth(self._sink_done)

    def _sink_done(self, _: Any) -> None:
        self._sinking = False

    def _write_local(self, counters: dict[str, int], refusals: dict[str, int]) -> None:
        if self.jobdir is not None:
            self.jobdir.write_progress({"stats": counters, "refusals": refusals, "updated_at": utcnow().isoformat()})
