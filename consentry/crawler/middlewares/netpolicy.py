"""Network policy: resolve each request's host and refuse private/loopback/metadata targets before download.

Redirects are new requests and pass through here again. Decisions are cached per host and port
for ``NETPOLICY_CACHE_SECONDS``; DNS runs in the reactor's thread pool.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from ...core.errors import FetchRefused
from ...core.netpolicy import Resolver, check_url, system_resolver
from ..refusals import Refusals
from ..shared import shared

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

log = logging.getLogger("consentry.crawler.netpolicy")


class NetworkPolicyMiddleware:
    def __init__(self, allow_private: bool, refusals: Refusals, resolver: Resolver = system_resolver,
                 cache_seconds: float = 300.0) -> None:
        self.allow_private = allow_private
        self.refusals = refusals
        self.resolver = resolver
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str, int | None], tuple[float, FetchRefused | None]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NetworkPolicyMiddleware:
        return cls(allow_private=crawler.settings.getbool("CONSENTRY_ALLOW_PRIVATE_NETWORKS"),
                   refusals=shared(crawler, Refusals),
                   cache_seconds=crawler.settings.getfloat("NETPOLICY_CACHE_SECONDS", 300.0))

    def verdict(self, url: str) -> FetchRefused | None:
        """The refusal for ``url`` (None when it may be fetched). Blocking: resolves the host."""
        try:
            check_url(url, self.allow_private, self.resolver)
        except FetchRefused as exc:
            return exc
        return None

    async def process_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        try:
            key = (parts.scheme, (parts.hostname or "").lower(), parts.port)
        except ValueError:
            key = (parts.scheme, parts.netloc, None)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is None or now - cached[0] > self.cache_seconds:
            refusal = await maybe_deferred_to_future(deferToThread(self.verdict, request.url))
            self._cache[key] = (now, refusal)
        else:
            refusal = cached[1]
        if refusal is not None:
            self.refusals.refuse(refusal.reason, request.url, "request", str(refusal))
            raise IgnoreRequest(f"network policy: {refusal}")
