"""TDMRep (W3C TDM Reservation Protocol): the ``tdm-reservation`` header and meta, and ``/.well-known/tdmrep.json``.

tdmrep.json is fetched once per site, before its first page; its location patterns apply to
page URLs here and to image URLs in the consent gate. A missing or malformed file reserves nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.http import HtmlResponse

from ...core.consent import tdm_header_signal, tdmrep_reserved, tdmrep_rules
from ...core.records import Signal
from ..extract import meta_contents
from ..hostfiles import HOST_FILE_META, HostFiles
from ..shared import OnceCache, shared
from ..urls import site_root
from . import SIGNALS_META

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

log = logging.getLogger("consentry.crawler.tdmrep")

TDMREP_PATH = "/.well-known/tdmrep.json"

Rules = list[tuple[str, bool]]


class TdmRepPolicy:
    """Each site's tdmrep.json rules, fetched once."""

    def __init__(self, crawler: Crawler) -> None:
        self.files = shared(crawler, HostFiles)
        self.stats = crawler.stats
        self._rules = OnceCache()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> TdmRepPolicy:
        return cls(crawler)

    async def rules(self, url: str) -> Rules:
        site = site_root(url)
        return await self._rules.get(site, lambda: self._load(url, site))

    async def _load(self, url: str, site: str) -> Rules:
        file = await self.files.get(url, TDMREP_PATH)
        if file.status is None or not 200 <= file.status < 300:
            return []
        try:
            return tdmrep_rules(file.body)
        except ValueError as exc:
            self.stats.inc_value("crawler/tdmrep/malformed")
            log.warning("%s%s is malformed (%s); no reservation read from it", site, TDMREP_PATH, exc)
            return []

    def cached(self, url: str) -> Rules:
        """The site's rules if already fetched (the middleware fetches them before the site's first page)."""
        return self._rules.cached(site_root(url)) or []

    async def signal(self, url: str, scope: str = "page") -> Signal | None:
        """The tdmrep.json signal for ``url`` (None when no location pattern matches)."""
        reserved = tdmrep_reserved(await self.rules(url), url)
        if reserved is None:
            return None
        return Signal(name="tdmrep.json", value="1" if reserved else "0", opt_out=reserved, scope=scope)  # type: ignore[arg-type]


class TdmRepMiddleware:
    """Fetches a site's tdmrep.json before its first page; adds the page's TDM signals to its meta."""

    def __init__(self, policy: TdmRepPolicy) -> None:
        self.policy = policy

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> TdmRepMiddleware:
        return cls(shared(crawler, TdmRepPolicy))

    async def process_request(self, request: Request) -> None:
        if not request.meta.get(HOST_FILE_META):
            await self.policy.rules(request.url)

    def process_response(self, request: Request, response: Response) -> Response:
        if request.meta.get(HOST_FILE_META):
            return response
        found: list[Signal] = []
        header = response.headers.get("tdm-reservation")
        if header is not None:
            sig = tdm_header_signal(header.decode("latin-1"))
            if sig:
                found.append(sig)
        if isinstance(response, HtmlResponse):
            for content in meta_contents(response.selector, "tdm-reservation")[:1]:
                sig = tdm_header_signal(content)
                if sig:
                    found.append(sig)
        reserved = tdmrep_reserved(self.policy.cached(request.url), request.url)
        if reserved is not None:
            found.append(Signal(name="tdmrep.json", value="1" if reserved else "0", opt_out=reserved))
        if found:
            request.meta[SIGNALS_META] = [*request.meta.get(SIGNALS_META, []), *found]
        return response
