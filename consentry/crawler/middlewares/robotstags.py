"""Robots tags on pages: the ``X-Robots-Tag`` header and ``<meta name="robots">``.

``noai``, ``noimageai``, ``noindex``, ``noimageindex``, ``none`` and an ``unavailable_after`` date
that has passed opt a page's images out (``core.consent.robots_signal``), including the user-agent
scoped forms (``X-Robots-Tag: consentry: noai``, ``<meta name="consentry" content="noai">``);
directives for other agents are ignored.
``nofollow`` stops the spider following that page's links.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.http import HtmlResponse

from ...core.consent import robots_directives, robots_signal
from ..extract import meta_contents
from ..hostfiles import HOST_FILE_META
from . import NOFOLLOW_META, add_signals

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response


class RobotsTagsMiddleware:
    def __init__(self, token: str) -> None:
        self.token = token.lower()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RobotsTagsMiddleware:
        return cls(crawler.settings.get("ROBOTSTXT_USER_AGENT") or "consentry")

    def process_response(self, request: Request, response: Response) -> Response:
        if request.meta.get(HOST_FILE_META):
            return response
        header = [v.decode("latin-1") for v in response.headers.getlist("X-Robots-Tag")]
        meta: list[str] = []
        if isinstance(response, HtmlResponse):
            sel = response.selector
            meta = meta_contents(sel, "robots") + [f"{self.token}: {c}" for c in meta_contents(sel, self.token)]
        add_signals(request, robots_signal("x-robots-tag", header, self.token),
                    robots_signal("meta-robots", meta, self.token))
        if {"nofollow", "none"} & robots_directives(header + meta, self.token):
            request.meta[NOFOLLOW_META] = True
        return response
