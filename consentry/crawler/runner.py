"""CrawlRunner: the crawler stage's entry class. Wires spider, middlewares and pipeline from Settings.

It runs one job in the current process (Scrapy's reactor cannot restart, so the CLI runs each
crawl in a fresh ``python -m consentry.crawler.run JOB_ID`` process; see ``launcher``), keeps
the job's state in the JobStore (running → finished | stopped | failed) and returns an exit code.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..catalog import JobStore, SourceRegistry
from ..clients.broker import KafkaConfig
from ..clients.objectstore import ObjectStore, S3Config, S3ObjectStore
from ..core.errors import BrokerError, ConsentryError
from ..core.records import Basis, CrawlJob, JobState, Source
from ..core.settings import Settings
from .jobdir import JobDir
from .pipeline import CLOSE_REASON_BROKER
from .progress import job_counters
from .urls import in_scope, normalize_url

log = logging.getLogger("consentry.crawler.runner")

EXIT_OK, EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_STOPPED = 0, 1, 4, 130

_P = "consentry.crawler."
#: our components, in their places among Scrapy's (see middlewares/__init__.py)
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,  # replaced: RFC 9309 status rules
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,  # replaced: backoff
    "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,  # never through proxies
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,  # scope is ours
    _P + "middlewares.netpolicy.NetworkPolicyMiddleware": 40,
    _P + "middlewares.scope.SourceScopeMiddleware": 45,
    _P + "middlewares.robotstxt.RobotsTxtMiddleware": 100,
    _P + "middlewares.tdmrep.TdmRepMiddleware": 110,
    _P + "middlewares.robotstags.RobotsTagsMiddleware": 120,
    _P + "middlewares.retry.BackoffRetryMiddleware": 550,
}
SPIDER_MIDDLEWARES = {_P + "middlewares.consentgate.ConsentGateMiddleware": 950}
ITEM_PIPELINES = {_P + "pipeline.KafkaPublishPipeline": 300}
EXTENSIONS = {
    "scrapy.extensions.throttle.AutoThrottle": None,
    "scrapy.extensions.telnet.TelnetConsole": None,
    "scrapy.extensions.remote_control.RemoteControl": None,
    _P + "throttle.PoliteThrottle": 0,
    _P + "progress.JobProgress": 0,
}


def politeness_settings(settings: Settings, job: CrawlJob) -> dict[str, Any]:
    """The Scrapy settings of an honest, polite crawl (shared with the bare-Scrapy benchmark)."""
    delay = max(job.download_delay, 0.001)  # >0 keeps per-domain concurrency enforced (Scrapy >= 2.14)
    conc = job.concurrency_per_domain
    return {
        "BOT_NAME": "consentry",
        "USER_AGENT": settings.user_agent,
        "ROBOTSTXT_OBEY": True,
        "ROBOTSTXT_USER_AGENT": settings.crawl_robots_token,
        "ROBOTSTXT_PARSER": "scrapy.robotstxt.ProtegoRobotParser",
        "CONCURRENT_REQUESTS": max(16, conc),
        "CONCURRENT_REQUESTS_PER_DOMAIN": conc,
        "DOWNLOAD_DELAY": delay,
        "AUTOTHROTTLE_ENABLED": settings.crawl_autothrottle,
        "AUTOTHROTTLE_START_DELAY": delay,
        "AUTOTHROTTLE_MAX_DELAY": 60.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(conc),
        "RETRY_ENABLED": True,
        "RETRY_TIMES": settings.crawl_retry_times,
        "RETRY_BACKOFF_BASE": settings.retry_base_delay_s,
        "RETRY_BACKOFF_MAX": settings.retry_max_delay_s,
        "DOWNLOAD_MAXSIZE": settings.crawl_max_page_bytes,
        "DOWNLOAD_WARNSIZE": settings.crawl_max_page_bytes // 2,
        "DOWNLOAD_TIMEOUT": settings.fetch_timeout_s,
        "REDIRECT_MAX_TIMES": settings.fetch_max_redirects,
        "COOKIES_ENABLED": False,
        "HTTPPROXY_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,  # Scrapy >= 2.19 serves a code-running HTTP endpoint by default
        "DEPTH_PRIORITY": 1,  # breadth first: a page budget covers the site's top levels first
        "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",
        "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
        "LOG_LEVEL": settings.log_level,
    }


@dataclass
class _Outcome:
    reason: str | None = None
    error: str | None = None
    stats: dict[str, Any] | None = None


class CrawlRunner:
    def __init__(self, settings: Settings, store: ObjectStore | None = None,
                 stop_requested: Callable[[], bool] = lambda: False) -> None:
        self.settings = settings
        self.stop_requested = stop_requested  # a stop asked for before Scrapy's own signal handlers were in place
        self.store = store or S3ObjectStore(S3Config.from_settings(settings))
        self.jobs = JobStore(self.store)
        self.sources = SourceRegistry(self.store)
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
        s = self.settings
        out = politeness_settings(s, job)
        out.update({
            "JOBDIR": str(jobdir.scrapy_dir),
            "TWISTED_DNS_RESOLVER": _P + "resolver.PolicyResolver",  # connections only to checked addresses
            "DOWNLOADER_MIDDLEWARES": DOWNLOADER_MIDDLEWARES,
            "SPIDER_MIDDLEWARES": SPIDER_MIDDLEWARES,
            "ITEM_PIPELINES": ITEM_PIPELINES,
            "EXTENSIONS": EXTENSIONS,
            "CONSENTRY_HOME": str(s.home),
            "CONSENTRY_JOB_ID": job.id,
            "CONSENTRY_SOURCE_ID": source.id,
            "CONSENTRY_SOURCE_BASIS": source.basis.value,
            "CONSENTRY_SEEDS": list(job.seeds),
            "CONSENTRY_ALLOWED": list(job.allowed or [source.match]),
            "CONSENTRY_MAX_PAGES": job.max_pages,
            "CONSENTRY_DEPTH": job.depth,
            "CONSENTRY_ALLOW_PRIVATE_NETWORKS": s.allow_private_networks,
            "CONSENTRY_KAFKA_CONFIG": KafkaConfig.from_settings(s),
            "CONSENTRY_TOPIC_IMAGES": s.topic_images,
            "CONSENTRY_PUBLISH_RETRIES": s.crawl_publish_retries,
            "CONSENTRY_PUBLISH_TIMEOUT_SECONDS": s.kafka_request_timeout_ms / 1000,  # per send/flush attempt
            "CONSENTRY_PUBLISHED_FILE": str(jobdir.published_file),
            "CONSENTRY_UNPUBLISHED_FILE": str(jobdir.unpublished_file),
            "CONSENTRY_REFUSALS_FILE": str(jobdir.refusals_file),
            "CONSENTRY_BASELINE_STATS": dict(job.stats),
            "CONSENTRY_BASELINE_REFUSALS": dict(job.refusals),
            "CONSENTRY_PROGRESS_SINK": self._progress_sink(job),
        })
        return out

    def _progress_sink(self, job: CrawlJob):  # noqa: ANN202
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

        process = CrawlerProcess(ScrapySettings(self.scrapy_settings(job, source, jobdir)), install_root_handler=False)
        logging.getLogger("scrapy").setLevel(self.settings.log_level.upper())  # Scrapy sets its loggers to DEBUG
        crawler = process.create_crawler(ImageSpider)
        crawler.signals.connect(self._spider_closed, signal=signals.spider_closed)
        d = process.crawl(crawler)
        d.addErrback(self._crawl_failed)
        from twisted.internet.task import LoopingCall

        early_stop = LoopingCall(self._stop_if_requested, process, crawler)
        early_stop.start(0.1, now=False)
        process.start()
        if self._outcome.stats is None:
            self._outcome.stats = dict(crawler.stats.get_stats() or {})

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
        if broker_failed:
            state, code = JobState.FAILED, EXIT_UNAVAILABLE
            error = (f"broker unavailable, candidates kept for `consentry crawl resume {job.id}`: "
                     f"{out.error or stats.get('crawler/failure')}")
        elif out.reason == "finished" and not out.error:
            state, code, error = JobState.FINISHED, EXIT_OK, None
        elif out.reason == "shutdown" and not out.error:
            state, code, error = JobState.STOPPED, EXIT_STOPPED, None
        else:
            state, code, error = JobState.FAILED, EXIT_FAILED, out.error or f"crawl ended: {out.reason}"
        self.jobs.put(job.model_copy(update={"state": state, "stats": counters, "refusals": refusals, "error": error}))
        log.info("crawl job %s %s: %s", job.id, state.value, counters)
        return code
