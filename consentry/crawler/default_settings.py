"""Every default of a crawl's Scrapy settings, in one place (as Scrapy's own ``settings/default_settings.py``).

``CrawlRunner`` loads this module at ``project`` priority and sets each job's values over it
(``runner.scrapy_settings``: user agent, limits, job ids, the clients); components read typed
values in ``from_crawler`` and never repeat a default. Names are prefixed by feature.
Unit tests build crawlers with :func:`scrapy_defaults` so they see the same values.
"""

from __future__ import annotations

from typing import Any

_P = "consentry.crawler."

# --- our components, in their places among Scrapy's (see middlewares/__init__.py) -----------------
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,  # replaced: RFC 9309 status rules
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,  # replaced: backoff
    "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,  # never through proxies
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,  # scope is ours
    _P + "middlewares.netpolicy.NetworkPolicyMiddleware": 40,
    _P + "middlewares.scope.SourceScopeMiddleware": 45,
    _P + "middlewares.optouts.OptOutListMiddleware": 50,
    _P + "middlewares.robotstxt.RobotsTxtMiddleware": 100,
    _P + "middlewares.aitxt.AiTxtMiddleware": 105,
    _P + "middlewares.tdmrep.TdmRepMiddleware": 110,
    _P + "middlewares.robotstags.RobotsTagsMiddleware": 120,
    _P + "middlewares.retry.BackoffRetryMiddleware": 550,
    _P + "middlewares.netpolicy.ResolverRefusalMiddleware": 600,  # before retry sees a refused DNS answer
}
SPIDER_MIDDLEWARES = {_P + "middlewares.consentgate.ConsentGateMiddleware": 950}
ITEM_PIPELINES = {_P + "pipeline.KafkaPublishPipeline": 300}
EXTENSIONS = {
    "scrapy.extensions.throttle.AutoThrottle": None,
    "scrapy.extensions.telnet.TelnetConsole": None,
    "scrapy.extensions.remote_control.RemoteControl": None,
    _P + "throttle.PoliteThrottle": 0,
    _P + "progress.JobProgress": 0,
    _P + "record.CrawlRecorder": 0,
}
TWISTED_DNS_RESOLVER = _P + "resolver.PolicyResolver"  # connections only to checked addresses

# --- honest and polite (also the bare-Scrapy benchmark's settings) -------------------------------
BOT_NAME = "consentry"
ROBOTSTXT_OBEY = True
ROBOTSTXT_PARSER = "scrapy.robotstxt.ProtegoRobotParser"
AUTOTHROTTLE_MAX_DELAY = 60.0
RETRY_ENABLED = True
COOKIES_ENABLED = False
HTTPPROXY_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False  # Scrapy >= 2.19 serves a code-running HTTP endpoint by default
DEPTH_PRIORITY = 1  # breadth first: a page budget covers the site's top levels first
SCHEDULER_DISK_QUEUE = "scrapy.squeues.PickleFifoDiskQueue"
SCHEDULER_MEMORY_QUEUE = "scrapy.squeues.FifoMemoryQueue"

# --- retries with backoff (middlewares/retry.py; also the publisher's and recorder's retries) -----
RETRY_BACKOFF_BASE = 0.5  # seconds before the first retry (times 2 per retry, 50-100% jitter)
RETRY_BACKOFF_MAX = 10.0  # the longest wait between retries

# --- network policy (middlewares/netpolicy.py) ----------------------------------------------------
NETPOLICY_CACHE_SECONDS = 300.0  # how long a host's address verdict is reused
CONSENTRY_ALLOW_PRIVATE_NETWORKS = False  # loopback/private/link-local targets (tests and the demo only)

# --- consent signals ----------------------------------------------------------------------------------
CONSENTRY_HONOUR_AI_CRAWLER_GROUPS = True  # a robots.txt disallow for a known AI crawler opts that path out
CONSENTRY_OPTOUT_ENTRIES: list[Any] = []  # do-not-train (list, date, kind, value): domains and URL prefixes

# --- the Kafka publisher (pipeline.py) --------------------------------------------------------------
CONSENTRY_PUBLISH_BATCH = 100  # candidates per send-and-flush
CONSENTRY_PUBLISH_INTERVAL = 0.5  # seconds between flushes of a partial batch
CONSENTRY_PUBLISH_TIMEOUT_SECONDS = 30.0  # per send/flush attempt
CONSENTRY_PUBLISH_RETRIES = 5  # broker retries before the crawl fails loudly

# --- the crawl log in the object store (record.py) ------------------------------------------------
CONSENTRY_RECORD_BATCH = 1000  # lines (refusals, page visits) per stored batch
CONSENTRY_RECORD_INTERVAL = 5.0  # seconds between stores of a partial batch
CONSENTRY_RECORD_RETRIES = 5  # object-store retries before the lines are kept in the job dir

# --- job progress (progress.py) ----------------------------------------------------------------------
CONSENTRY_PROGRESS_INTERVAL = 0.5  # seconds between progress.json writes


def scrapy_defaults() -> dict[str, Any]:
    """This module's settings as a dict (unit tests: ``get_crawler(settings_dict=scrapy_defaults())``)."""
    return {k: v for k, v in globals().items() if k.isupper() and not k.startswith("_")}
