"""Network policy: resolve each request's host and refuse private/loopback/metadata targets before download.

Redirects are new requests and pass through here again. Decisions are cached per host and port
for ``NETPOLICY_CACHE_SECONDS``; DNS runs in the reactor's thread pool.

A host that passed here but answers the connection's own lookup with a refused address (DNS
rebinding) is stopped by the reactor's ``PolicyResolver``; Twisted reports that to the request only
as a failed DNS lookup, so :class:`ResolverRefusalMiddleware` turns it back into a counted and
recorded ``private-address`` refusal (and stops the retries a DNS failure would get).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy.exceptions import CannotResolveHostError, IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.error import DNSLookupError
from twisted.internet.threads import deferToThread

from ...core.errors import FetchRefused
from ...core.netpolicy import Resolver, check_url, system_resolver
from ..refusals import Refusals, found_on
from ..resolver import RefusedHosts
from ..shared import shared

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

log = logging.getLogger("consentry.crawler.netpolicy")


class NetworkPolicyMiddleware:
    def __init__(self, allow_private: bool, refusals: Refusals, resolver: Resolver = system_resolver,
                 cache_seconds: float = 0.0) -> None:
        self.allow_private = allow_private
        self.refusals = refusals
        self.resolver = resolver
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str, int | None], tuple[float, FetchRefused | None]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NetworkPolicyMiddleware:
        return cls(allow_private=crawler.settings.getbool("CONSENTRY_ALLOW_PRIVATE_NETWORKS"),
                   refusals=shared(crawler, Refusals),
                   cache_seconds=crawler.settings.getfloat("NETPOLICY_CACHE_SECONDS"))

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
            self.refusals.refuse(refusal.reason, request.url, "request", str(refusal), page_url=found_on(request))
            raise IgnoreRequest(f"network policy: {refusal}")


class ResolverRefusalMiddleware:
    """A DNS failure caused by the resolver's policy check becomes a ``private-address`` refusal, not retried.

    ``refused`` is the reactor resolver's record (Scrapy builds the resolver for the whole process,
    not per crawler, so it is looked up on the reactor when a lookup fails).
    """

    def __init__(self, refusals: Refusals, refused: RefusedHosts | None = None) -> None:
        self.refusals = refusals
        self._refused = refused

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ResolverRefusalMiddleware:
        return cls(shared(crawler, Refusals))

    @property
    def refused(self) -> RefusedHosts | None:
        if self._refused is None:
            from twisted.internet import reactor  # the installed one; never import it at module level

            self._refused = getattr(getattr(reactor, "resolver", None), "refused", None)
        return self._refused

    def process_exception(self, request: Request, exception: Exception) -> None:
        if not isinstance(exception, (CannotResolveHostError, DNSLookupError)) or self.refused is None:
            return  # (CannotResolveHostError: Scrapy >= 2.14's name for a failed lookup)
        host = (urlsplit(request.url).hostname or "").lower()
        why = self.refused.why(host)
        if why is None:
            return
        detail = f"{host} resolved to a {why} when connecting (DNS rebinding)"
        self.refusals.refuse("private-address", request.url, "request", detail, page_url=found_on(request))
        raise IgnoreRequest(f"network policy: {detail}")
