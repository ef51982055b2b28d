"""The crawler stage: Scrapy crawl jobs over registered sources → ImageCandidate records on Kafka.

``CrawlRunner`` runs one job (spider, consent middlewares, Kafka pipeline); ``CrawlLauncher``
starts, watches, stops and resumes job processes for the CLI. Both are imported on first use,
so a crawl process can install its signal handlers before Scrapy and Twisted load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .launcher import CrawlLauncher
    from .runner import CrawlRunner

__all__ = ["CrawlLauncher", "CrawlRunner"]


def __getattr__(name: str) -> Any:
    if name == "CrawlLauncher":
        from .launcher import CrawlLauncher

        return CrawlLauncher
    if name == "CrawlRunner":
        from .runner import CrawlRunner

        return CrawlRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
