"""An httpx transport whose connections go only to addresses the network policy passed.

The fetcher checks every hop with :func:`~consentry.core.netpolicy.check_url` before it asks
for it, but httpx would then resolve the host again to connect, and a host can answer the
second lookup differently (DNS rebinding: public for the check, 169.254.169.254 or 10.x for
the connection). Here the connection's own lookup is the checked one: the network backend
resolves the host through :func:`~consentry.core.netpolicy.resolve_checked` and connects to
those addresses. TLS still verifies the certificate against the host name (httpcore sends the
origin's name as SNI), so pinning the address weakens nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from ..core.netpolicy import Resolver, resolve_checked


class PolicyNetworkBackend(httpcore.SyncBackend):
    """Resolves and checks each host itself, then connects to a checked address."""

    def __init__(self, allow_private: bool, resolver: Resolver) -> None:
        self.allow_private = allow_private
        self.resolver = resolver

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        addresses = resolve_checked(host, port, self.allow_private, self.resolver)  # FetchRefused: no connection
        last: Exception | None = None
        for address in addresses:  # like getaddrinfo's callers: the first that answers
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last


class PinnedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` (its exception mapping included) over a :class:`PolicyNetworkBackend` pool."""

    def __init__(self, allow_private: bool, resolver: Resolver, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(  # the pool httpx builds, plus our backend (httpx has no option for it)
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PolicyNetworkBackend(allow_private, resolver),
        )
