"""Do-not-train lists in the crawl: a page or image URL under a listed domain or URL prefix is refused.

The job's entries (``CONSENTRY_OPTOUT_ENTRIES``: list, date, kind, value) are read from the
registry when the crawl starts. A listed page is never fetched (reason ``do-not-train``, the list
and entry in its signal); the consent gate refuses listed image URLs the same way. Hash entries
are for ingest, which sees the bytes.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from scrapy.exceptions import IgnoreRequest

from ...core.optouts import Entry, Match, OptOutIndex
from ..hostfiles import HOST_FILE_META
from ..refusals import Refusals, found_on
from ..shared import shared

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler


class OptOutUrls:
    """The job's do-not-train domains and prefixes (one per crawl, shared by the middleware and the gate)."""

    def __init__(self, entries: list[tuple[str, str, str, str]]) -> None:
        lists: dict[tuple[str, str], list[Entry]] = defaultdict(list)
        for name, date, kind, value in entries:
            lists[(name, date)].append(Entry(kind, value))  # type: ignore[arg-type]
        self.index = OptOutIndex([(name, date, es) for (name, date), es in lists.items()]) if lists else None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> OptOutUrls:
        return cls([tuple(e) for e in crawler.settings.getlist("CONSENTRY_OPTOUT_ENTRIES")])

    def match(self, url: str) -> Match | None:
        return self.index.match_url(url) if self.index is not None else None


class OptOutListMiddleware:
    def __init__(self, urls: OptOutUrls, refusals: Refusals) -> None:
        self.urls = urls
        self.refusals = refusals

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> OptOutListMiddleware:
        return cls(shared(crawler, OptOutUrls), shared(crawler, Refusals))

    def process_request(self, request: Request) -> None:
        if request.meta.get(HOST_FILE_META):
            return
        match = self.urls.match(request.url)
        if match is not None:
            sig = match.signal("page")
            self.refusals.refuse("do-not-train", request.url, "request", sig.value, page_url=found_on(request),
                                 signals=[sig])
            raise IgnoreRequest(f"on a do-not-train list: {sig.value}")
