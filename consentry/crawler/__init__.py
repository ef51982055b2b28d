"""The crawler stage: Scrapy crawl jobs over registered sources → ImageCandidate records on Kafka.

``CrawlRunner`` runs one job (spider, consent middlewares, Kafka pipeline); ``CrawlLauncher``
starts, watches, stops and resumes job processes for the CLI.
"""

from .launcher import CrawlLauncher
from .runner import CrawlRunner

__all__ = ["CrawlLauncher", "CrawlRunner"]
