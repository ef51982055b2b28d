"""TDMRep (W3C TDM Reservation Protocol): the ``tdm-reservation`` header and meta, and ``/.well-known/tdmrep.json``.

tdmrep.json is fetched once per site, before its first page; its location patterns apply to
page URLs here and to image URLs in the consent gate. A missing or malformed file reserves nothing.
A reservation's ``tdm-policy`` (header, meta, or the tdmrep.json entry's field) travels in the
signal's ``policy``; the consent gate lets it through only for a ``licence`` source whose evidence
names that policy (``core.consent.licensed``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.http import HtmlResponse

from ...core.consent import tdm_header_signal, tdmrep_rules, tdmrep_signal
from ...core.records import Signal
from ..extract import meta_contents
from ..hostfiles import HOST_FILE_META, HostFiles
from ..shared import OnceCache, shared
from ..urls import site_root
from . import SiteFileMiddleware, add_signals

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

log = logging.getLogger("consentry.crawler.tdmrep")

TDMREP_PATH = "/.well-known/tdmrep.json"

Rules = list[tuple[str, bool, str | None]]


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
        return tdmrep_signal(await self.rules(url), url, scope)


class TdmRepMiddleware(SiteFileMiddleware):
    """Fetches a site's tdmrep.json before its first page; adds the page's TDM signals to its meta."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> TdmRepMiddleware:
        return cls(shared(crawler, TdmRepPolicy))

    def process_response(self, request: Request, response: Response) -> Response:
        if request.meta.get(HOST_FILE_META):
            return response
        found: list[Signal] = []
        header = response.headers.get("tdm-reservation")
        if header is not None:
            policy = response.headers.get("tdm-policy")
            sig = tdm_header_signal(header.decode("latin-1"), policy=policy.decode("latin-1") if policy else None)
            if sig:
                found.append(sig)
        if isinstance(response, HtmlResponse):
            policies = meta_contents(response.selector, "tdm-policy")[:1]
            for content in meta_contents(response.selector, "tdm-reservation")[:1]:
                sig = tdm_header_signal(content, policy=policies[0] if policies else None)
                if sig:
                    found.append(sig)
        add_signals(request, *found, tdmrep_signal(self.policy.cached(request.url), request.url))
        return response
