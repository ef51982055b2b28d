"""AutoThrottle that never goes below a site's Crawl-delay.

Scrapy's AutoThrottle adjusts each download slot's delay from observed latency, down to
``DOWNLOAD_DELAY``; a robots.txt ``Crawl-delay`` (set as the slot's ``delay`` in
``DOWNLOAD_SLOTS`` by the robots.txt middleware) must stay a floor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.extensions.throttle import AutoThrottle

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.http import Response


class PoliteThrottle(AutoThrottle):
    def _response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        super()._response_downloaded(response, request, spider)
        key, slot = self._get_slot(request, spider)
        if slot is None or key is None:
            return
        floor = self.crawler.engine.downloader.per_slot_settings.get(key, {}).get("delay")
        if floor is not None and slot.delay < floor:
            slot.delay = float(floor)
