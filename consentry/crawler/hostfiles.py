"""Files fetched once per site (``/robots.txt``, ``/.well-known/tdmrep.json``), through the engine.

The request passes every downloader middleware (network policy included; retries with backoff),
so a robots.txt on a refused address is "unreachable", never fetched. Concurrent askers for the
same file wait for the one download.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http.request import NO_CALLBACK

from .shared import OnceCache
from .urls import site_root

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

log = logging.getLogger("consentry.crawler.hostfiles")

#: request.meta flag of a host-file fetch: the site-level policy middlewares let it through
HOST_FILE_META = "consentry_host_file"


@dataclass(frozen=True)
class HostFile:
    url: str
    status: int | None  # None: unreachable (network error, refused address, timeout)
    body: bytes = b""
    error: str | None = None


class HostFiles:
    """One download per (site, path) for the whole crawl."""

    PRIORITY = 1000

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._files = OnceCache()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HostFiles:
        return cls(crawler)

    async def get(self, url: str, path: str) -> HostFile:
        """The file at ``path`` on the site of ``url``."""
        key = site_root(url) + path
        return await self._files.get(key, lambda: self._download(key))

    async def _download(self, url: str) -> HostFile:
        stats = self.crawler.stats
        request = Request(url, priority=self.PRIORITY, callback=NO_CALLBACK, dont_filter=True,
                          meta={HOST_FILE_META: True, "dont_obey_robotstxt": True})
        try:
            response = await self.crawler.engine.download_async(request)
        except IgnoreRequest as exc:
            stats.inc_value("crawler/hostfiles/refused")
            return HostFile(url, None, error=f"not fetched: {exc}")
        except Exception as exc:
            stats.inc_value("crawler/hostfiles/unreachable")
            log.warning("%s unreachable: %s: %s", url, type(exc).__name__, exc)
            return HostFile(url, None, error=f"{type(exc).__name__}: {exc}")
        stats.inc_value(f"crawler/hostfiles/status/{response.status}")
        return HostFile(url, response.status, response.body)
