"""Scrapy middlewares, one per concern, each named after it.

Downloader (request order): ``netpolicy`` (never connect to refused addresses), ``scope`` (stay
inside the job's allowed hosts/prefixes, redirects included), ``optouts`` (do-not-train lists),
``robotstxt`` (RFC 9309, Crawl-delay, AI-crawler groups), ``aitxt`` (ai.txt), ``tdmrep`` (TDMRep
header, meta and tdmrep.json), ``robotstags`` (X-Robots-Tag and meta robots), ``retry`` (retries
with exponential backoff), then ``netpolicy.ResolverRefusalMiddleware`` (a DNS-rebinding refusal
is recorded, not retried). Spider: ``consentgate`` (applies the signals to the images a page
yields and builds the ImageCandidate records).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..hostfiles import HOST_FILE_META

if TYPE_CHECKING:
    from scrapy import Request

    from ...core.records import Signal

#: request.meta / response.meta keys shared by the middlewares and the spider
SIGNALS_META = "consentry_signals"
NOFOLLOW_META = "consentry_nofollow"


def add_signals(request: Request, *signals: Signal | None) -> None:
    """Note a page's signals for the consent gate (``None``: the check found nothing to say)."""
    found = [s for s in signals if s is not None]
    if found:
        request.meta[SIGNALS_META] = [*request.meta.get(SIGNALS_META, []), *found]



class SiteFileMiddleware:
    """Base of the middlewares that honour a site-level file: fetched (once, by ``policy.rules``) before the
    site's first page, so its rules are ``policy.cached`` when the page's response arrives."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy

    async def process_request(self, request: Request) -> None:
        if not request.meta.get(HOST_FILE_META):
            await self.policy.rules(request.url)
