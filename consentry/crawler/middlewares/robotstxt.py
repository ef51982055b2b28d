"""robots.txt per RFC 9309, with Protego, for pages and (through the consent gate) image URLs.

Scrapy's own RobotsTxtMiddleware parses whatever body comes back, so a 500 page or an
unreachable server means "allow all". RFC 9309 says otherwise, and this middleware replaces it:

- 2xx: the rules for our token (``ROBOTSTXT_USER_AGENT``), parsed by ``ROBOTSTXT_PARSER`` (Protego);
- 4xx (except 429), or redirects past the limit: the file is unavailable, everything is allowed;
- 5xx, 429, network errors, or a robots.txt the network policy refused: unreachable, nothing is allowed.

A ``Crawl-delay`` for our token becomes the floor of that site's download slot delay.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.misc import build_from_crawler, load_object

from ...core.records import Signal
from ..hostfiles import HOST_FILE_META, HostFile, HostFiles
from ..refusals import Refusals, found_on
from ..shared import OnceCache, shared
from ..urls import site_root

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

log = logging.getLogger("consentry.crawler.robotstxt")

ROBOTS_PATH = "/robots.txt"


@dataclass(frozen=True)
class RobotsRules:
    """What one site's robots.txt says to us."""

    site: str
    mode: str  # parsed | allow-all | disallow-all
    why: str
    parser: Any = None
    token: str = ""

    def allowed(self, url: str) -> bool:
        if self.mode == "allow-all":
            return True
        if self.mode == "disallow-all":
            return False
        return bool(self.parser.allowed(url, self.token))

    def crawl_delay(self) -> float | None:
        if self.mode != "parsed":
            return None
        try:
            delay = self.parser.crawl_delay(self.token)
        except Exception:  # noqa: BLE001 - a parser that cannot tell
            return None
        return float(delay) if delay else None

    def signal(self, url: str, scope: str = "page") -> Signal:
        ok = self.allowed(url)
        return Signal(name="robots.txt", value="allowed" if ok else f"disallowed ({self.why})",
                      opt_out=not ok, scope=scope)  # type: ignore[arg-type]


def rules_from(file: HostFile, token: str, parse: Any) -> RobotsRules:
    """Apply RFC 9309's status rules to a fetched robots.txt."""
    site = site_root(file.url)
    status = file.status
    if status is None:
        return RobotsRules(site, "disallow-all", f"robots.txt unreachable: {file.error}")
    if 200 <= status < 300:
        return RobotsRules(site, "parsed", "robots.txt rules", parse(file.body), token)
    if status == 429 or status >= 500:
        return RobotsRules(site, "disallow-all", f"robots.txt answered {status}")
    return RobotsRules(site, "allow-all", f"robots.txt answered {status} (unavailable)")


class RobotsTxtPolicy:
    """The robots.txt rules of every site of the crawl, fetched once each."""

    def __init__(self, crawler: Crawler, token: str) -> None:
        self.crawler = crawler
        self.token = token
        self.files = shared(crawler, HostFiles)
        parser_cls = load_object(crawler.settings.get("ROBOTSTXT_PARSER"))
        self._parse = lambda body: build_from_crawler(parser_cls, crawler, body)
        self._rules = OnceCache()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RobotsTxtPolicy:
        token = crawler.settings.get("ROBOTSTXT_USER_AGENT") or crawler.settings.get("USER_AGENT")
        return cls(crawler, token)

    async def rules(self, url: str) -> RobotsRules:
        site = site_root(url)
        return await self._rules.get(site, lambda: self._load(url, site))

    async def _load(self, url: str, site: str) -> RobotsRules:
        file = await self.files.get(url, ROBOTS_PATH)
        rules = rules_from(file, self.token, self._parse)
        log.info("robots.txt for %s: %s", site, rules.why)
        self._apply_crawl_delay(url, rules)
        return rules

    def _apply_crawl_delay(self, url: str, rules: RobotsRules) -> None:
        delay = rules.crawl_delay()
        if not delay:
            return
        downloader = self.crawler.engine.downloader
        key = (urlsplit(url).hostname or "").lower()
        per_slot = downloader.per_slot_settings.setdefault(key, {})
        per_slot["delay"] = max(float(per_slot.get("delay", 0.0)), delay)
        per_slot["jitter"] = 0.0
        slot = downloader.slots.get(key)
        if slot is not None:
            slot.delay = max(slot.delay, per_slot["delay"])
            slot.jitter = 0.0
        self.crawler.stats.set_value(f"crawler/crawl_delay/{key}", per_slot["delay"])
        log.info("honouring Crawl-delay %.3fs for %s", per_slot["delay"], key)


class RobotsTxtMiddleware:
    """Refuses requests robots.txt disallows (reason ``robots-txt``); replaces Scrapy's middleware."""

    def __init__(self, policy: RobotsTxtPolicy, refusals: Refusals) -> None:
        self.policy = policy
        self.refusals = refusals

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RobotsTxtMiddleware:
        if not crawler.settings.getbool("ROBOTSTXT_OBEY"):
            raise NotConfigured
        return cls(shared(crawler, RobotsTxtPolicy), shared(crawler, Refusals))

    async def process_request(self, request: Request) -> None:
        if request.meta.get(HOST_FILE_META) or request.url.startswith(("data:", "file:")):
            return
        rules = await self.policy.rules(request.url)
        if not rules.allowed(request.url):
            self.refusals.refuse("robots-txt", request.url, "request", rules.why, page_url=found_on(request),
                                 signals=[rules.signal(request.url)])
            raise IgnoreRequest("forbidden by robots.txt")
