"""Which network addresses Consentry may connect to.

The decision function is pure, so tests check refusals of private and metadata addresses
without ever connecting to them. The crawler and the fetcher call it after DNS resolution
(and again on every redirect), and the address they then connect to is one that passed it:
the fetcher's connections go through :func:`resolve_checked` (see ``ingest/pinned.py``), the
crawler's through a checking reactor resolver (``crawler/resolver.py``). A host that answers
DNS with a public address for the check and a private one for the connection (DNS rebinding)
is therefore refused at the connection too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from .errors import FetchRefused

Resolver = Callable[[str, int], list[str]]

#: addresses never allowed, even with allow_private_networks (cloud metadata endpoints)
METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
                      ipaddress.ip_address("100.100.100.200")}


def address_refusal(address: str, allow_private: bool) -> str | None:
    """Why we must not connect to ``address`` (None when it is fine).

    Loopback, private, link-local, CGNAT, multicast, reserved and unspecified addresses are
    refused unless ``allow_private`` is set; cloud metadata addresses are always refused.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"not an IP address: {address!r}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return f"metadata address {ip}"
    if ip.is_unspecified or ip.is_multicast:
        return f"unroutable address {ip}"
    if allow_private:
        return None
    if ip.is_loopback:
        return f"loopback address {ip}"
    if ip.is_link_local:
        return f"link-local address {ip}"
    if ip.is_private or ip.is_reserved or (ip.version == 4 and ip in ipaddress.ip_network("100.64.0.0/10")):
        return f"private address {ip}"
    if not ip.is_global:
        return f"non-global address {ip}"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


def check_url(url: str, allow_private: bool, resolver: Resolver = system_resolver) -> list[str]:
    """Refuse URLs we must not fetch; return the resolved addresses otherwise.

    Raises FetchRefused (reason ``bad-scheme``, ``private-address`` or ``dns``).
    Every resolved address must pass: a host with one public and one private address is refused.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchRefused(f"scheme {parts.scheme or '(none)'!r} is not allowed: {url}", reason="bad-scheme")
    host = parts.hostname
    if not host:
        raise FetchRefused(f"URL has no host: {url}", reason="bad-url")
    if parts.username or parts.password:
        raise FetchRefused(f"URL carries credentials: {parts.scheme}://…@{host}", reason="bad-url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FetchRefused(f"bad port in {url}", reason="bad-url") from None
    return resolve_checked(host, port, allow_private, resolver)


def resolve_checked(host: str, port: int, allow_private: bool, resolver: Resolver = system_resolver) -> list[str]:
    """Resolve ``host`` and return its addresses when every one of them passes the policy.

    Raises FetchRefused (reason ``dns`` or ``private-address``). Connect only to an address
    returned here, never to the host name, so the checked answer is the one used.
    """
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise FetchRefused(f"cannot resolve {host}: {exc}", reason="dns") from None
    if not addresses:
        raise FetchRefused(f"{host} resolves to no address", reason="dns")
    for addr in addresses:
        why = address_refusal(addr, allow_private)
        if why:
            raise FetchRefused(f"{host} resolves to a {why}", reason="private-address")
    return addresses
