"""robots.txt per RFC 9309, with Protego, for pages and (through the consent gate) image URLs.

Scrapy's own RobotsTxtMiddleware parses whatever body comes back, so a 500 page or an
unreachable server means "allow all". RFC 9309 says otherwise, and this middleware replaces it:

- 2xx: the rules for our token (``ROBOTSTXT_USER_AGENT``), parsed by ``ROBOTSTXT_PARSER`` (Protego);
- 4xx (except 429), or redirects past the limit: the file is unavailable, everything is allowed;
- 5xx, 429, network errors, or a robots.txt the network policy refused: unreachable, nothing is allowed.

A ``Crawl-delay`` for our token becomes the floor of that site's download slot delay.

Groups that name a well-known AI crawler (``core.aicrawlers``) are read as the site's statement
of intent (``CONSENTRY_HONOUR_AI_CRAWLER_GROUPS``): a path they disallow is opted out for us too —
a page's images are withheld (the page is still read for its links, when our own group allows it),
an image URL is refused (reason ``robots-txt-ai-crawlers``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.misc import build_from_crawler, load_object

from ...core.aicrawlers import ai_group_rules, ai_group_signal
from ...core.records import Signal
from ...core.robotsgroups import Rule, availability, parse_groups
from ..hostfiles import HOST_FILE_META, HostFile, HostFiles
from ..refusals import Refusals, found_on
from ..shared import OnceCache, shared
from ..urls import site_root
from . import add_signals

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

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
    ai_rules: dict[str, list[Rule]] = field(default_factory=dict)  # AI crawler -> its groups' rules

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
        except Exception:
            return None
        return float(delay) if delay else None

    def signal(self, url: str, scope: str = "page") -> Signal:
        ok = self.allowed(url)
        return Signal(name="robots.txt", value="allowed" if ok else f"disallowed ({self.why})",
                      opt_out=not ok, scope=scope)  # type: ignore[arg-type]

    def ai_signal(self, url: str, scope: str = "page") -> Signal | None:
        """The AI-crawler groups' signal for ``url`` (None when the file names no AI crawler)."""
        return ai_group_signal(self.ai_rules, url, scope)


def rules_from(file: HostFile, token: str, parse: Any, honour_ai_groups: bool = True) -> RobotsRules:
    """Apply RFC 9309's status rules to a fetched robots.txt."""
    site = site_root(file.url)
    mode = availability(file.status)
    if mode == "parsed":
        ai_rules = ai_group_rules(parse_groups(file.body)) if honour_ai_groups else {}
        return RobotsRules(site, "parsed", "robots.txt rules", parse(file.body), token, ai_rules)
    if file.status is None:
        return RobotsRules(site, mode, f"robots.txt unreachable: {file.error}")
    if mode == "disallow-all":
        return RobotsRules(site, mode, f"robots.txt answered {file.status}")
    return RobotsRules(site, mode, f"robots.txt answered {file.status} (unavailable)")


class RobotsTxtPolicy:
    """The robots.txt rules of every site of the crawl, fetched once each."""

    def __init__(self, crawler: Crawler, token: str, honour_ai_groups: bool = True) -> None:
        self.crawler = crawler
        self.token = token
        self.honour_ai_groups = honour_ai_groups
        self.files = shared(crawler, HostFiles)
        parser_cls = load_object(crawler.settings.get("ROBOTSTXT_PARSER"))
        self._parse = lambda body: build_from_crawler(parser_cls, crawler, body)
        self._rules = OnceCache()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RobotsTxtPolicy:
        s = crawler.settings
        return cls(crawler, s.get("ROBOTSTXT_USER_AGENT") or s.get("USER_AGENT"),
                   s.getbool("CONSENTRY_HONOUR_AI_CRAWLER_GROUPS"))

    async def rules(self, url: str) -> RobotsRules:
        site = site_root(url)
        return await self._rules.get(site, lambda: self._load(url, site))

    def cached(self, url: str) -> RobotsRules | None:
        """The site's rules if already fetched (the middleware fetches them before the site's first page)."""
        return self._rules.cached(site_root(url))

    async def _load(self, url: str, site: str) -> RobotsRules:
        file = await self.files.get(url, ROBOTS_PATH)
        rules = rules_from(file, self.token, self._parse, self.honour_ai_groups)
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
    """Refuses requests robots.txt disallows (reason ``robots-txt``); replaces Scrapy's middleware.

    Adds the AI-crawler groups' signal to each page it let through (the consent gate decides).
    """

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

    def process_response(self, request: Request, response: Response) -> Response:
        if request.meta.get(HOST_FILE_META):
            return response
        rules = self.policy.cached(request.url)
        add_signals(request, rules.ai_signal(request.url) if rules is not None else None)
        return response
