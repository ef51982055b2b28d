"""Source scope: only URLs under the job's allowed hosts or URL prefixes are fetched.

The spider only follows in-scope links; this catches redirects that leave the source.
Host files (robots.txt, tdmrep.json) of in-scope hosts are let through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.exceptions import IgnoreRequest

from ..hostfiles import HOST_FILE_META
from ..refusals import Refusals, found_on
from ..shared import shared
from ..urls import allowed_hosts, in_scope, on_allowed_host

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler


class SourceScopeMiddleware:
    def __init__(self, allowed: list[str], refusals: Refusals) -> None:
        self.allowed = list(allowed)
        self.hosts = allowed_hosts(allowed)
        self.refusals = refusals

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SourceScopeMiddleware:
        return cls(crawler.settings.getlist("CONSENTRY_ALLOWED"), shared(crawler, Refusals))

    def process_request(self, request: Request) -> None:
        if request.meta.get(HOST_FILE_META):
            ok = on_allowed_host(request.url, self.hosts)
        else:
            ok = in_scope(request.url, self.allowed)
        if not ok:
            self.refusals.refuse("out-of-scope", request.url, "request", "outside the job's allowed hosts/prefixes",
                                 page_url=found_on(request))
            raise IgnoreRequest(f"outside the source: {request.url}")
