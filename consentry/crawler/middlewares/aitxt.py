"""ai.txt (Spawning's site-level file): fetched once per site, honoured for page and image URLs.

Fetched through the engine like robots.txt (``HostFiles``: one download per site, every downloader
middleware, retries), before the site's first page; robots.txt's failure rules apply (RFC 9309:
5xx, 429 or unreachable disallow everything; 4xx means there is none). The group for our token
applies, else ``*``. A page ai.txt disallows is still read for its links but publishes no image;
an image URL it disallows is refused by the consent gate (reason ``ai-txt``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ...core.aicrawlers import AI_TXT_PATH, AiTxt, ai_txt
from ..hostfiles import HOST_FILE_META, HostFiles
from ..shared import OnceCache, shared
from ..urls import site_root
from . import SiteFileMiddleware, add_signals

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

log = logging.getLogger("consentry.crawler.aitxt")


class AiTxtPolicy:
    """Each site's ai.txt, fetched once."""

    def __init__(self, crawler: Crawler, tokens: list[str]) -> None:
        self.files = shared(crawler, HostFiles)
        self.tokens = tokens
        self._rules = OnceCache()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AiTxtPolicy:
        return cls(crawler, [crawler.settings.get("ROBOTSTXT_USER_AGENT") or "consentry"])

    async def rules(self, url: str) -> AiTxt:
        site = site_root(url)
        return await self._rules.get(site, lambda: self._load(url, site))

    async def _load(self, url: str, site: str) -> AiTxt:
        file = await self.files.get(url, AI_TXT_PATH)
        rules = ai_txt(file.status, file.body, file.error, self.tokens)
        log.info("ai.txt for %s: %s", site, rules.why)
        return rules

    def cached(self, url: str) -> AiTxt | None:
        return self._rules.cached(site_root(url))


class AiTxtMiddleware(SiteFileMiddleware):
    """Fetches a site's ai.txt before its first page; adds the page's ai.txt signal to its meta."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AiTxtMiddleware:
        return cls(shared(crawler, AiTxtPolicy))

    def process_response(self, request: Request, response: Response) -> Response:
        if request.meta.get(HOST_FILE_META):
            return response
        rules = self.policy.cached(request.url)
        add_signals(request, rules.signal(request.url) if rules is not None else None)
        return response
