"""URL normalisation and scope: one canonical form per URL, so dedupe and Kafka keys agree."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from w3lib.url import canonicalize_url

from ..core.consent import matches_source

#: path endings of links that point at an image file rather than a page
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".bmp", ".tif", ".tiff", ".jfif", ".heic")

MAX_URL_LENGTH = 4096
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_url(url: str) -> str | None:
    """The canonical form of an absolute http(s) URL (None for anything else).

    w3lib's ``canonicalize_url`` (sorted query, percent-encoding, no fragment), plus a lower-case
    host and no default port.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    canon = canonicalize_url(url, keep_fragments=False)
    p = urlsplit(canon)
    host = p.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[p.scheme]) else f"{host}:{port}"
    out = urlunsplit((p.scheme, netloc, p.path or "/", p.query, ""))
    return out if len(out) <= MAX_URL_LENGTH else None


def is_image_link(url: str) -> bool:
    """Does the URL's path end like an image file?"""
    return urlsplit(url).path.lower().endswith(IMAGE_EXTENSIONS)


def in_scope(url: str, allowed: Iterable[str]) -> bool:
    """Is ``url`` under one of a job's allowed hosts or URL prefixes?"""
    return any(matches_source(a, url) for a in allowed)


def allowed_hosts(allowed: Iterable[str]) -> set[str]:
    """The hosts named by a job's allowed entries (hosts, host:port, or URL prefixes)."""
    hosts = set()
    for a in allowed:
        if "://" in a:
            hosts.add((urlsplit(a).hostname or "").lower())
        else:
            hosts.add(a.lower().partition(":")[0])
    return {h for h in hosts if h}


def on_allowed_host(url: str, hosts: set[str]) -> bool:
    """Is the URL's host one of ``hosts`` or a subdomain of one (any path, any port)?"""
    h = (urlsplit(url).hostname or "").lower()
    return any(h == a or h.endswith("." + a) for a in hosts)


def site_root(url: str) -> str:
    """``scheme://netloc`` of a URL: the key of per-host files such as robots.txt."""
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc.lower()}"
