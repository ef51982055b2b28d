"""The reactor's DNS resolver for crawls: Scrapy's caching resolver plus the network policy.

:class:`~consentry.crawler.middlewares.netpolicy.NetworkPolicyMiddleware` refuses (and records)
requests to private, loopback and metadata addresses before they are downloaded, but Scrapy
then resolves the host again to connect, and a host can answer that second lookup differently
(DNS rebinding). Installed as ``TWISTED_DNS_RESOLVER``, this resolver checks the very address the
connection will use; a refused one fails the lookup (Twisted reports it to the request as "no
results for hostname lookup"; the reason is logged here and noted in its :class:`RefusedHosts`,
from which ``ResolverRefusalMiddleware`` records a ``private-address`` refusal), so nothing reaches
it. IP-literal hosts never come here: the middleware's check of them cannot be answered differently
later.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Self

from scrapy.resolver import CachingThreadedResolver
from twisted.internet.error import DNSLookupError

from ..core.netpolicy import address_refusal

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from twisted.internet.base import ReactorBase
    from twisted.internet.defer import Deferred

log = logging.getLogger("consentry.crawler.resolver")


class RefusedHosts:
    """Host names the resolver refused to connect to, and why."""

    def __init__(self) -> None:
        self._why: dict[str, str] = {}

    def note(self, host: str, why: str) -> None:
        self._why[host.lower()] = why

    def why(self, host: str) -> str | None:
        return self._why.get(host.lower())


class PolicyResolver(CachingThreadedResolver):
    def __init__(self, reactor: ReactorBase, cache_size: int, timeout: float, allow_private: bool,
                 refused: RefusedHosts | None = None) -> None:
        super().__init__(reactor, cache_size, timeout)
        self.allow_private = allow_private
        self.refused = refused or RefusedHosts()

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: ReactorBase) -> Self:
        """(Scrapy passes the CrawlerProcess here: one resolver serves every crawl of the process.)"""
        s = crawler.settings
        return cls(reactor, s.getint("DNSCACHE_SIZE") if s.getbool("DNSCACHE_ENABLED") else 0,
                   s.getfloat("DNS_TIMEOUT"), s.getbool("CONSENTRY_ALLOW_PRIVATE_NETWORKS"))

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:
        return super().getHostByName(name, timeout).addCallback(self.checked, name)

    def checked(self, address: str, name: str) -> str:
        """``address`` when the policy lets us connect to it; DNSLookupError otherwise (cached answers too)."""
        why = address_refusal(address, self.allow_private)
        if why:
            log.warning("network policy: refused to connect to %s (%s): %s", name, address, why)
            self.refused.note(name, why)
            raise DNSLookupError(f"{name} resolves to a {why}: refused by the network policy")
        return address
