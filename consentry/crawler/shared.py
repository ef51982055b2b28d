"""Per-crawl shared components (host-file caches, the refusal log), one of each per Scrapy crawler.

Scrapy builds middlewares independently; those that must share state (the robots.txt rules
fetched by one downloader middleware and consulted again by the consent gate for image URLs)
get the same instance through :func:`shared`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

T = TypeVar("T")

_REGISTRY: WeakKeyDictionary = WeakKeyDictionary()


def shared(crawler: "Crawler", cls: type[T], factory: Callable[["Crawler"], T] | None = None) -> T:
    """The crawler's one instance of ``cls`` (built with ``factory(crawler)`` or ``cls.from_crawler``)."""
    per = _REGISTRY.setdefault(crawler, {})
    if cls not in per:
        per[cls] = (factory or cls.from_crawler)(crawler)  # type: ignore[attr-defined]
    return per[cls]
