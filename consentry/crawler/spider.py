"""The spider: follows in-scope links breadth-first within depth and page limits, and yields every image it sees.

Its bookkeeping (pages claimed, image URLs seen, out-of-scope links refused) lives in ``spider.state``,
which Scrapy keeps in the JOBDIR, so a resumed job neither re-claims pages nor recounts images.
A link outside the job's scope is refused (``out-of-scope``, once per URL) and recorded with its page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import scrapy
from scrapy.http import HtmlResponse

from .extract import FoundImage, extract_page
from .middlewares import NOFOLLOW_META
from .refusals import Refusals
from .shared import shared
from .urls import in_scope, normalize_url

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response


class ImageSpider(scrapy.Spider):
    name = "consentry"

    def __init__(self, *, seeds: list[str], allowed: list[str], max_pages: int, depth: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seeds = list(seeds)
        self.allowed = list(allowed)
        self.max_pages = max_pages
        self.max_depth = depth

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> ImageSpider:
        s = crawler.settings
        kwargs.setdefault("seeds", s.getlist("CONSENTRY_SEEDS"))
        kwargs.setdefault("allowed", s.getlist("CONSENTRY_ALLOWED"))
        kwargs.setdefault("max_pages", s.getint("CONSENTRY_MAX_PAGES"))
        kwargs.setdefault("depth", s.getint("CONSENTRY_DEPTH"))
        return super().from_crawler(crawler, *args, **kwargs)

    # --- bookkeeping (persisted in the JOBDIR by Scrapy's SpiderState extension) ---------------
    @property
    def _state(self) -> dict[str, Any]:
        if not hasattr(self, "state"):
            self.state: dict[str, Any] = {}
        st = self.state
        st.setdefault("pages", set())
        st.setdefault("images", set())
        st.setdefault("links_out", set())
        return st

    def claim_page(self, url: str) -> bool:
        """Reserve ``url`` for crawling: False if seen before or the page budget is spent."""
        st = self._state
        if url in st["pages"]:
            return False
        if len(st["pages"]) >= self.max_pages:
            self.crawler.stats.inc_value("crawler/max_pages_reached")
            return False
        st["pages"].add(url)
        return True

    def first_sighting(self, image_url: str) -> bool:
        images = self._state["images"]
        if image_url in images:
            return False
        images.add(image_url)
        return True

    def refuse_link(self, link: str, page_url: str) -> None:
        """A link outside the job's scope: counted and recorded once per URL, never followed."""
        self.crawler.stats.inc_value("crawler/links_out_of_scope")
        seen = self._state["links_out"]
        if link not in seen:
            seen.add(link)
            shared(self.crawler, Refusals).refuse("out-of-scope", link, "link", "link outside the job's allowed "
                                                  "hosts/prefixes (not followed)", page_url=page_url)

    # --- crawling ------------------------------------------------------------------------------
    async def start(self) -> AsyncIterator[scrapy.Request]:
        for seed in self.seeds:
            url = normalize_url(seed)
            if url and in_scope(url, self.allowed) and self.claim_page(url):
                yield scrapy.Request(url, callback=self.parse)

    def parse(self, response: Response) -> Iterator[Any]:
        stats = self.crawler.stats
        if not isinstance(response, HtmlResponse):
            stats.inc_value("crawler/non_html")
            return
        stats.inc_value("crawler/pages")
        page = extract_page(response.selector, normalize_url(response.url) or response.url)
        for image in page.images:
            if self.first_sighting(image.url):
                stats.inc_value("crawler/images_found")
            yield image
        if response.meta.get(NOFOLLOW_META):
            stats.inc_value("crawler/nofollow_pages")
            return
        if response.meta.get("depth", 0) >= self.max_depth:
            return
        for link in page.links:
            if not in_scope(link, self.allowed):
                self.refuse_link(link, page.url)
            elif self.claim_page(link):
                yield scrapy.Request(link, callback=self.parse)


__all__ = ["FoundImage", "ImageSpider"]
