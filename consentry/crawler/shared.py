"""Per-crawl shared components (host-file caches, the refusal log), one of each per Scrapy crawler.

Scrapy builds middlewares independently; those that must share state (the robots.txt rules
fetched by one downloader middleware and consulted again by the consent gate for image URLs)
get the same instance through :func:`shared`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar
from weakref import WeakKeyDictionary

from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

T = TypeVar("T")

_REGISTRY: WeakKeyDictionary = WeakKeyDictionary()


def shared(crawler: Crawler, cls: type[T], factory: Callable[[Crawler], T] | None = None) -> T:
    """The crawler's one instance of ``cls`` (built with ``factory(crawler)`` or ``cls.from_crawler``)."""
    per = _REGISTRY.setdefault(crawler, {})
    if cls not in per:
        per[cls] = (factory or cls.from_crawler)(crawler)  # type: ignore[attr-defined]
    return per[cls]


class OnceCache:
    """Compute an async value once per key; concurrent askers wait for the one computation.

    Each waiter gets its own Deferred: a Deferred awaited by several coroutines hands its result to
    the first only (the adapter's callback returns None to the rest).
    """

    def __init__(self) -> None:
        self._done: dict = {}
        self._waiting: dict = {}

    def cached(self, key: Any) -> Any:
        return self._done.get(key)

    async def get(self, key: Any, compute: Callable[[], Awaitable[Any]]) -> Any:
        if key in self._done:
            return self._done[key]
        if key in self._waiting:
            waiter: Deferred = Deferred()
            self._waiting[key].append(waiter)
            return await maybe_deferred_to_future(waiter)
        self._waiting[key] = []
        try:
            value = await compute()
        except BaseException as exc:
            for waiter in self._waiting.pop(key):
                waiter.errback(exc)
            raise
        self._done[key] = value
        for waiter in self._waiting.pop(key):
            waiter.callback(value)
        return value
