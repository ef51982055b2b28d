"""Retries with exponential backoff: Scrapy's RetryMiddleware, plus a wait before each retry.

A retried request carries the earliest time it may go out; ``process_request`` waits for it
without holding the site's download slot. Delay: ``RETRY_BACKOFF_BASE * 2**(n-1)``, capped at
``RETRY_BACKOFF_MAX``, with jitter (50-100%).
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.task import deferLater

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.settings import BaseSettings

NOT_BEFORE_META = "consentry_not_before"


class BackoffRetryMiddleware(RetryMiddleware):
    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.base_delay = settings.getfloat("RETRY_BACKOFF_BASE")
        self.max_delay = settings.getfloat("RETRY_BACKOFF_MAX")

    def backoff(self, retry_times: int) -> float:
        return min(self.max_delay, self.base_delay * 2 ** max(0, retry_times - 1)) * random.uniform(0.5, 1.0)

    def _retry(self, request: Request, reason):
        new = super()._retry(request, reason)
        if new is not None:
            delay = self.backoff(int(new.meta.get("retry_times", 1)))
            new.meta[NOT_BEFORE_META] = time.time() + delay
            self.crawler.stats.inc_value("crawler/retry/backoff_seconds", delay)  # type: ignore[arg-type]  # floats add up fine
        return new

    async def process_request(self, request: Request) -> None:
        not_before = request.meta.get(NOT_BEFORE_META)
        if not_before is None:
            return
        wait = not_before - time.time()
        if wait > 0:
            from twisted.internet import reactor  # the installed one; never import it at module level

            await maybe_deferred_to_future(deferLater(reactor, wait, lambda: None))
