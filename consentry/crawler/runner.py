"""CrawlRunner: the crawler stage's entry class. Turns a job and Settings into a Scrapy crawl and runs it.

It runs one job in the current process (Scrapy's reactor cannot restart, so the CLI runs each
crawl in a fresh ``python -m consentry.cli.crawl_process JOB_ID`` process; see ``launcher``), keeps
the job's state in the JobStore (running → finished | stopped | failed) and returns an exit code.
Its clients (the object store, the Kafka producer factory) arrive built, from ``consentry.wiring``;
Scrapy-setting defaults come from ``default_settings``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..catalog import JobStore, SourceRegistry
from ..catalog.crawllog import CrawlLog
from ..catalog.optouts import OptOutRegistry
from ..clients.broker import Producer
from ..clients.objectstore import ObjectStore
from ..core.errors import BrokerError, ConsentryError
from ..core.records import Basis, CrawlJob, JobState, Source
from ..core.settings import Settings
from . import default_settings as defaults
from .jobdir import JobDir
from .pipeline import CLOSE_REASON_BROKER
from .progress import job_counters
from .record import UNSTORED
from .urls import in_scope, normalize_url

log = logging.getLogger("consentry.crawler.runner")

EXIT_OK, EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_STOPPED = 0, 1, 4, 130

def politeness_settings(settings: Settings, job: CrawlJob) -> dict[str, Any]:
    """The Scrapy settings of an honest, polite crawl (shared with the bare-Scrapy benchmark)."""
    delay = max(job.download_delay, 0.001)  # >0 keeps per-domain concurrency enforced (Scrapy >= 2.14)
    conc = job.concurrency_per_domain
    fixed = ("BOT_NAME", "ROBOTSTXT_OBEY", "ROBOTSTXT_PARSER", "AUTOTHROTTLE_MAX_DELAY", "RETRY_ENABLED",
             "COOKIES_ENABLED", "HTTPPROXY_ENABLED", "TELNETCONSOLE_ENABLED", "REMOTE_CONTROL_ENABLED",
             "DEPTH_PRIORITY", "SCHEDULER_DISK_QUEUE", "SCHEDULER_MEMORY_QUEUE")
    return {
        **{name: getattr(defaults, name) for name in fixed},
        "USER_AGENT": settings.user_agent,
        "ROBOTSTXT_USER_AGENT": settings.crawl_robots_token,
        "CONCURRENT_REQUESTS": max(16, conc),
        "CONCURRENT_REQUESTS_PER_DOMAIN": conc,
        "DOWNLOAD_DELAY": delay,
        "AUTOTHROTTLE_ENABLED": settings.crawl_autothrottle,
        "AUTOTHROTTLE_START_DELAY": delay,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(conc),
        "RETRY_TIMES": settings.crawl_retry_times,
        "RETRY_BACKOFF_BASE": settings.retry_base_delay_s,
        "RETRY_BACKOFF_MAX": settings.retry_max_delay_s,
        "DOWNLOAD_MAXSIZE": settings.crawl_max_page_bytes,
        "DOWNLOAD_WARNSIZE": settings.crawl_max_page_bytes // 2,
        "DOWNLOAD_TIMEOUT": settings.fetch_timeout_s,
        "REDIRECT_MAX_TIMES": settings.fetch_max_redirects,
        "LOG_LEVEL": settings.log_level,
    }


@dataclass
class _Outcome:
    reason: str | None = None
    error: str | None = None
    stats: dict[str, Any] | None = None


class CrawlRunner:
    """``producer_factory`` connects to Kafka (in the crawl's reactor thread pool) and returns a Producer."""

    def __init__(self, settings: Settings, store: ObjectStore, producer_factory: Callable[[], Producer],
                 stop_requested: Callable[[], bool] = lambda: False) -> None:
        self.settings = settings
        self.stop_requested = stop_requested  # a stop asked for before Scrapy's own signal handlers were in place
        self.store = store
        self.producer_factory = producer_factory
        self.jobs = JobStore(store)
        self.sources = SourceRegistry(store)
        self.crawl_log = CrawlLog(store)
        self._outcome = _Outcome()
        self._early_stop_sent = False

    # --- checks shared with the CLI ------------------------------------------------------------
    @staticmethod
    def check(job: CrawlJob, source: Source) -> None:
        """Refuse jobs a source does not cover: basis ``none``, seeds or allowed entries outside its match."""
        if source.basis is Basis.NONE:
            raise ConsentryError(f"source {source.id!r} has basis 'none': nothing may be crawled for it",
                                 reason="basis-none")
        for seed in job.seeds:
            if normalize_url(seed) is None or not in_scope(seed, [source.match]):
                raise ConsentryError(f"seed {seed} is outside source {source.id!r} (match {source.match})",
                                     reason="out-of-scope")
            if not in_scope(seed, job.allowed or [source.match]):
                raise ConsentryError(f"seed {seed} is outside the job's allowed hosts/prefixes", reason="out-of-scope")
        for entry in job.allowed:
            probe = entry if "://" in entry else f"http://{entry}/"
            if not in_scope(probe, [source.match]):
                raise ConsentryError(f"allowed entry {entry} is outside source {source.id!r} (match {source.match})",
                                     reason="out-of-scope")

    # --- Scrapy settings -------------------------------------------------------------------------
    def scrapy_settings(self, job: CrawlJob, source: Source, jobdir: JobDir) -> dict[str, Any]:
        """The job's values, set over ``default_settings`` (clients travel as factories: Scrapy copies settings)."""
        s = self.settings
        log_store = self.crawl_log
        out = politeness_settings(s, job)
        out.update({
            "JOBDIR": str(jobdir.scrapy_dir),
            "CONSENTRY_HOME": str(s.home),
            "CONSENTRY_JOB_ID": job.id,
            "CONSENTRY_SOURCE_ID": source.id,
            "CONSENTRY_SOURCE_BASIS": source.basis.value,
            "CONSENTRY_SOURCE_EVIDENCE": source.evidence,
            "CONSENTRY_HONOUR_AI_CRAWLER_GROUPS": s.crawl_honour_ai_crawler_groups,
            "CONSENTRY_OPTOUT_ENTRIES": OptOutRegistry(self.store).index().url_entries(),
            "CONSENTRY_SEEDS": list(job.seeds),
            "CONSENTRY_ALLOWED": list(job.allowed or [source.match]),
            "CONSENTRY_MAX_PAGES": job.max_pages,
            "CONSENTRY_DEPTH": job.depth,
            "CONSENTRY_ALLOW_PRIVATE_NETWORKS": s.allow_private_networks,
            "CONSENTRY_PRODUCER_FACTORY": self.producer_factory,
            "CONSENTRY_CRAWL_LOG": lambda: log_store,
            "CONSENTRY_TOPIC_IMAGES": s.topic_images,
            "CONSENTRY_PUBLISH_RETRIES": s.crawl_publish_retries,
            "CONSENTRY_PUBLISH_TIMEOUT_SECONDS": s.kafka_request_timeout_ms / 1000,  # per send/flush attempt
            "CONSENTRY_PUBLISHED_FILE": str(jobdir.published_file),
            "CONSENTRY_UNPUBLISHED_FILE": str(jobdir.unpublished_file),
            "CONSENTRY_RECORDS_PENDING_FILE": str(jobdir.records_pending_file),
            "CONSENTRY_BASELINE_STATS": dict(job.stats),
            "CONSENTRY_BASELINE_REFUSALS": dict(job.refusals),
            "CONSENTRY_PROGRESS_SINK": self._progress_sink(job),
        })
        return out

    def _progress_sink(self, job: CrawlJob):
        def sink(counters: dict[str, int], refusals: dict[str, int]) -> None:
            self.jobs.put(job.model_copy(update={"state": JobState.RUNNING, "stats": counters, "refusals": refusals}))
        return sink

    # --- running ---------------------------------------------------------------------------------
    def run(self, job_id: str) -> int:
        """Run (or resume) a job to its end in this process; returns the exit code."""
        job = self.jobs.get(job_id)
        jobdir = JobDir(self.settings.home, job.id).create()
        other = jobdir.running_pid()
        if other is not None and other != os.getpid():  # the launcher writes our pid as it starts us
            raise ConsentryError(f"crawl job {job.id} is already running (pid {other})")
        try:
            try:
                source = self.sources.get(job.source_id)
                self.check(job, source)
            except ConsentryError as exc:
                self.jobs.put(job.model_copy(update={"state": JobState.FAILED, "error": str(exc)}))
                raise
            jobdir.write_pid()
            job = self.jobs.put(job.model_copy(update={"state": JobState.RUNNING, "error": None}))
            log.info("crawl job %s: source %s (%s), seeds %s", job.id, source.id, source.basis.value, job.seeds)
            try:
                self._crawl(job, source, jobdir)
            except Exception as exc:  # recorded in the job, never lost
                log.exception("crawl job %s crashed", job.id)
                self._outcome.reason, self._outcome.error = "error", f"{type(exc).__name__}: {exc}"
            return self._finish(job)  # the final state is stored before the pid goes: `stop` then sees it
        finally:
            jobdir.clear_pid()

    def _crawl(self, job: CrawlJob, source: Source, jobdir: JobDir) -> None:
        from scrapy import signals
        from scrapy.crawler import CrawlerProcess
        from scrapy.settings import Settings as ScrapySettings

        from .spider import ImageSpider

        scrapy_settings = ScrapySettings()
        scrapy_settings.setmodule(defaults, priority="project")
        scrapy_settings.setdict(self.scrapy_settings(job, source, jobdir), priority="project")
        process = CrawlerProcess(scrapy_settings, install_root_handler=False)
        logging.getLogger("scrapy").setLevel(self.settings.log_level.upper())  # Scrapy sets its loggers to DEBUG
        crawler = process.create_crawler(ImageSpider)
        crawler.signals.connect(self._spider_closed, signal=signals.spider_closed)
        d = process.crawl(crawler)
        d.addErrback(self._crawl_failed)
        from twisted.internet.task import LoopingCall

        early_stop = LoopingCall(self._stop_if_requested, process, crawler)
        early_stop.start(0.1, now=False)
        process.start()
        # the final figures, including what spider_closed handlers (the crawl log's last store) added
        self._outcome.stats = dict(crawler.stats.get_stats() or {}) or self._outcome.stats

    def _stop_if_requested(self, process: Any, crawler: Any) -> None:
        """Honour a stop that came before Scrapy's signal handlers, once the engine can stop gracefully."""
        if self._early_stop_sent or not self.stop_requested():
            return
        if crawler.engine is not None and crawler.engine.running:
            self._early_stop_sent = True
            log.info("a stop was requested while the crawl was starting; stopping")
            process.stop()

    def _spider_closed(self, spider: Any, reason: str) -> None:
        self._outcome.reason = reason
        self._outcome.stats = dict(spider.crawler.stats.get_stats())
        self._outcome.error = self._outcome.stats.get("crawler/failure")

    def _crawl_failed(self, failure: Any) -> None:
        exc = failure.value
        log.error("crawl failed: %s: %s", type(exc).__name__, exc)
        self._outcome.error = f"{exc}"
        self._outcome.reason = CLOSE_REASON_BROKER if isinstance(exc, BrokerError) else "error"

    def _finish(self, job: CrawlJob) -> int:
        out = self._outcome
        stats = out.stats or {}
        counters, refusals = job_counters(stats, job.stats, job.refusals)
        broker_failed = out.reason == CLOSE_REASON_BROKER or bool(stats.get("crawler/publish_failures"))
        unstored = int(stats.get(UNSTORED) or 0)
        if broker_failed:
            state, code = JobState.FAILED, EXIT_UNAVAILABLE
            error = (f"broker unavailable, candidates kept for `consentry crawl resume {job.id}`: "
                     f"{out.error or stats.get('crawler/failure')}")
        elif unstored:
            state, code = JobState.FAILED, EXIT_UNAVAILABLE
            error = (f"object store unavailable: {unstored} crawl records (refusals, pages) kept in the job dir "
                     f"for `consentry crawl resume {job.id}`")
        elif out.reason == "finished" and not out.error:
            state, code, error = JobState.FINISHED, EXIT_OK, None
        elif out.reason == "shutdown" and not out.error:
            state, code, error = JobState.STOPPED, EXIT_STOPPED, None
        else:
            state, code, error = JobState.FAILED, EXIT_FAILED, out.error or f"crawl ended: {out.reason}"
        self.jobs.put(job.model_copy(update={"state": state, "stats": counters, "refusals": refusals, "error": error}))
        log.info("crawl job %s %s: %s", job.id, state.value, counters)
        return code
