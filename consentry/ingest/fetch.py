"""Fetch one image over HTTP(S): the ingest stage that talks to image hosts.

- http and https only; every hop (the first request and each redirect) passes
  :func:`~consentry.core.netpolicy.check_url` *before* any connection is made, so private,
  loopback, link-local and metadata addresses are refused unless the settings allow them;
  connections then go only to the addresses that passed (``pinned.py``: no DNS rebinding);
- redirects are followed by hand, up to ``max_redirects``;
- per-operation timeouts plus a deadline for the whole body (a slow trickle cannot hold a worker);
- the size limit is enforced while streaming (and up front from Content-Length);
- the declared Content-Type is checked against the bytes' magic numbers;
- ``X-Robots-Tag`` and ``tdm-reservation`` on the image response become image-scope signals.

httpx errors are translated here into FetchRefused / FetchError / ImageRejected.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin

import httpx

from ..core.consent import robots_signal, tdm_header_signal
from ..core.errors import FetchError, ImageRejected
from ..core.netpolicy import Resolver, check_url, system_resolver
from ..core.records import Signal, utcnow
from ..core.retry import RetryPolicy
from ..imaging import describe_non_image, sniff
from .config import FetchConfig
from .pinned import PinnedTransport

log = logging.getLogger("consentry.ingest.fetch")

REDIRECTS = (301, 302, 303, 307, 308)
TRANSIENT_STATUS = (408, 425, 429, 500, 502, 503, 504)
ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8"
#: declared types we accept as long as the bytes are a known image format
NEUTRAL_TYPES = ("application/octet-stream", "binary/octet-stream", "application/binary", "")


@dataclass(frozen=True)
class FetchResult:
    url: str
    final_url: str
    status: int
    content_type: str | None
    body: bytes = field(repr=False)
    fetched_at: datetime
    format: str  # sniffed from the bytes: JPEG, PNG, ...
    signals: list[Signal] = field(default_factory=list)  # image-scope signals from the response headers
    redirects: tuple[str, ...] = ()


class Fetcher:
    """One HTTP client per worker. ``resolver`` and ``transport`` are injectable for tests.

    Transient failures (timeout, connection reset, 408/425/429/5xx) are retried with the one
    RetryPolicy (``retry_max_attempts``, exponential backoff with full jitter); what still fails
    is a permanent failure of this image (the DLQ), never a reason to hold back the partition.
    The resolver serves both the check and the connection (a ``transport`` given for a test
    replaces the connection part).
    """

    def __init__(self, cfg: FetchConfig, retry: RetryPolicy | None = None, resolver: Resolver = system_resolver,
                 transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.cfg = cfg
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.resolver = resolver
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=8)
        self._client = httpx.Client(
            timeout=httpx.Timeout(cfg.timeout_s), follow_redirects=False, trust_env=False,
            transport=transport or PinnedTransport(cfg.allow_private, resolver, limits),
            headers={"User-Agent": cfg.user_agent, "Accept": ACCEPT})

    def close(self) -> None:
        self._client.close()

    def fetch(self, url: str) -> FetchResult:
        """GET ``url``, retrying transient failures with the RetryPolicy; raises on anything else."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._fetch_once(url)
            except FetchError as exc:
                if not exc.transient or attempt >= self.retry.attempts:
                    raise
                delay = self.retry.delay(attempt)
                log.info("fetch %s failed (%s, attempt %d/%d), retrying in %.2fs", url, exc.reason, attempt,
                         self.retry.attempts, delay)
                self.sleep(delay)

    def _fetch_once(self, url: str) -> FetchResult:
        deadline = time.monotonic() + self.cfg.timeout_s * 2
        hops: list[str] = []
        current = url
        while True:
            check_url(current, self.cfg.allow_private, self.resolver)  # FetchRefused before connecting
            try:
                with self._client.stream("GET", current) as resp:
                    if resp.status_code in REDIRECTS and resp.headers.get("location"):
                        if len(hops) >= self.cfg.max_redirects:
                            raise FetchError(f"more than {self.cfg.max_redirects} redirects from {url}",
                                             reason="too-many-redirects", status=resp.status_code)
                        hops.append(current)
                        current = urljoin(current, resp.headers["location"])
                        continue
                    if resp.status_code >= 400 or resp.status_code < 200 or resp.status_code in REDIRECTS:
                        transient = resp.status_code in TRANSIENT_STATUS
                        raise FetchError(f"HTTP {resp.status_code} for {current}", reason=f"http-{resp.status_code}",
                                         transient=transient, status=resp.status_code)
                    body = self._read(resp, deadline)
                    return self._result(url, current, resp, body, tuple(hops))
            except httpx.TimeoutException as exc:
                raise FetchError(f"timeout fetching {current}: {type(exc).__name__}", reason="timeout",
                                 transient=True) from None
            except httpx.TransportError as exc:
                raise FetchError(f"cannot fetch {current}: {type(exc).__name__}: {exc}", reason="connection",
                                 transient=True) from None
            except httpx.HTTPError as exc:  # bad URL, decoding errors ...
                raise FetchError(f"cannot fetch {current}: {type(exc).__name__}: {exc}", reason="http-error") from None

    def _read(self, resp: httpx.Response, deadline: float) -> bytes:
        limit = self.cfg.max_bytes
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise FetchError(f"Content-Length {declared} exceeds the limit of {limit} bytes", reason="too-large",
                             status=resp.status_code)
        chunks, total = [], 0
        for chunk in resp.iter_bytes():  # decoded bytes: gzip bombs count at their inflated size
            total += len(chunk)
            if total > limit:
                raise FetchError(f"body exceeds the limit of {limit} bytes", reason="too-large",
                                 status=resp.status_code)
            if time.monotonic() > deadline:
                raise FetchError(f"body not received within {self.cfg.timeout_s * 2:.0f}s", reason="timeout",
                                 transient=True)
            chunks.append(chunk)
        return b"".join(chunks)

    def _result(self, url: str, final: str, resp: httpx.Response, body: bytes,
                hops: tuple[str, ...]) -> FetchResult:
        ctype = resp.headers.get("content-type")
        declared = (ctype or "").split(";", 1)[0].strip().lower()
        fmt = sniff(body)
        if fmt is None:
            what, reason = describe_non_image(body)
            raise ImageRejected(f"{what} (served as {declared or 'no content type'})", reason=reason)
        if not declared.startswith("image/") and declared not in NEUTRAL_TYPES:
            raise ImageRejected(f"content type {declared!r} does not match the {fmt} bytes",
                                reason="content-type-mismatch")
        signals: list[Signal] = []
        robots = robots_signal("x-robots-tag", resp.headers.get_list("x-robots-tag"), self.cfg.robots_token,
                               scope="image")
        if robots is not None:
            signals.append(robots)
        tdm = tdm_header_signal(resp.headers.get("tdm-reservation"), scope="image")
        if tdm is not None:
            signals.append(tdm)
        return FetchResult(url=url, final_url=final, status=resp.status_code, content_type=ctype, body=body,
                           fetched_at=utcnow(), format=fmt, signals=signals, redirects=hops)
