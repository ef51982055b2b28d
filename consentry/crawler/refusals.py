"""Every refusal is counted by reason (stats ``crawler/refused/<reason>``) and recorded in the crawl log."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..catalog.crawllog import CrawlRefusal, What
from ..core.records import Signal
from .record import CrawlRecorder

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

log = logging.getLogger("consentry.crawler.refusals")

STATS_PREFIX = "crawler/refused/"


class Refusals:
    """Count and record why a URL was not fetched, its images not published, or a link not followed.

    ``what`` is ``page`` (a page fetched but under an opt-out), ``request`` (a URL not fetched at all),
    ``image`` (one image URL refused on its own) or ``link`` (a link outside the job's scope).
    """

    def __init__(self, stats: Any, recorder: CrawlRecorder | None = None, job_id: str = "",
                 source_id: str = "") -> None:
        self.stats = stats
        self.recorder = recorder
        self.job_id = job_id
        self.source_id = source_id

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Refusals:
        s = crawler.settings
        return cls(crawler.stats, CrawlRecorder.from_crawler(crawler), s.get("CONSENTRY_JOB_ID") or "",
                   s.get("CONSENTRY_SOURCE_ID") or "")

    def refuse(self, reason: str, url: str, what: What, detail: str = "", *, page_url: str | None = None,
               signals: Iterable[Signal] = ()) -> None:
        self.stats.inc_value(f"{STATS_PREFIX}{reason}")
        self.stats.inc_value(f"crawler/refused_{what}s")
        log.info("refused %s %s: %s%s", what, url, reason, f" ({detail})" if detail else "")
        if self.recorder is not None and self.job_id:
            self.recorder.add(CrawlRefusal(job_id=self.job_id, source_id=self.source_id, url=url, what=what,
                                           reason=reason, signals=list(signals), detail=detail, page_url=page_url))


def found_on(request: Request) -> str | None:
    """Where a request came from: the URL that redirected to it, else the page that linked it (Referer)."""
    chain = request.meta.get("redirect_urls")
    if chain:
        return str(chain[-1])
    referer = request.headers.get("Referer")
    return referer.decode("latin-1") if referer else None


def refusal_counts(stats: Mapping[str, Any]) -> dict[str, int]:
    """``{reason: count}`` from a stats dict."""
    return {k[len(STATS_PREFIX):]: int(v) for k, v in stats.items() if k.startswith(STATS_PREFIX)}
