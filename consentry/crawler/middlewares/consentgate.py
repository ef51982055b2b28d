"""The consent gate: what a page yields becomes ImageCandidate records only if no opt-out applies.

For each page: its signals (robots tags, TDM, ai.txt, AI-crawler robots.txt groups; gathered by the
downloader middlewares) decide whether any of its images may be published; a refused page is counted
once with its reason and its images are withheld. For each image: it must be on one of the job's
hosts (``offsite-image`` otherwise: an operator's source does not cover a third party's files), on
no do-not-train list, robots.txt (our group, and the AI crawlers' groups) and ai.txt must allow its
URL, and tdmrep.json must not reserve it. A TDM reservation whose ``tdm-policy`` a ``licence``
source's evidence names is let through (``core.consent.licensed``). Allowed signals travel in the
candidate's ``signals``.
Every page read is recorded in the crawl log with its decision and the image URLs found on it, so
``explain`` can say which page's signal withheld an image.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ...catalog.crawllog import PageVisit
from ...core.consent import decide, licensed
from ...core.records import Basis, Decision, ImageCandidate, Signal
from ..extract import FoundImage
from ..record import CrawlRecorder
from ..refusals import Refusals
from ..shared import shared
from ..urls import allowed_hosts, on_allowed_host
from . import NOFOLLOW_META, SIGNALS_META
from .aitxt import AiTxtPolicy
from .optouts import OptOutUrls
from .robotstxt import RobotsTxtPolicy
from .tdmrep import TdmRepPolicy

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response


class ConsentGateMiddleware:
    def __init__(self, *, job_id: str, source_id: str, basis: Basis, allowed: list[str], stats: Any,
                 refusals: Refusals, robots: RobotsTxtPolicy | None, tdmrep: TdmRepPolicy | None,
                 recorder: CrawlRecorder | None = None, aitxt: AiTxtPolicy | None = None,
                 optouts: OptOutUrls | None = None, evidence: str | None = None) -> None:
        self.job_id = job_id
        self.source_id = source_id
        self.basis = basis
        self.evidence = evidence
        self.aitxt = aitxt
        self.optouts = optouts
        self.hosts = allowed_hosts(allowed)
        self.stats = stats
        self.refusals = refusals
        self.robots = robots
        self.tdmrep = tdmrep
        self.recorder = recorder
        self._refused_images: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ConsentGateMiddleware:
        s = crawler.settings
        return cls(job_id=s.get("CONSENTRY_JOB_ID"), source_id=s.get("CONSENTRY_SOURCE_ID"),
                   basis=Basis(s.get("CONSENTRY_SOURCE_BASIS")), allowed=s.getlist("CONSENTRY_ALLOWED"),
                   stats=crawler.stats, refusals=shared(crawler, Refusals),
                   robots=shared(crawler, RobotsTxtPolicy) if s.getbool("ROBOTSTXT_OBEY") else None,
                   tdmrep=shared(crawler, TdmRepPolicy), recorder=CrawlRecorder.from_crawler(crawler),
                   aitxt=shared(crawler, AiTxtPolicy), optouts=shared(crawler, OptOutUrls),
                   evidence=s.get("CONSENTRY_SOURCE_EVIDENCE"))

    async def process_spider_output(self, response: Response, result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        page_signals = [licensed(s, self.basis, self.evidence) for s in response.meta.get(SIGNALS_META, [])]
        decision, reason = decide(self.basis, page_signals)
        opted_out = [s for s in page_signals if s.opt_out]
        if decision is Decision.REFUSE:
            detail = "; ".join(f"{s.name}={s.value}" for s in opted_out)
            self.refusals.refuse(reason, response.url, "page", detail, signals=opted_out)
        images: list[str] = []
        async for item in result:
            if not isinstance(item, FoundImage):
                yield item
                continue
            images.append(item.url)
            if decision is Decision.REFUSE:
                self.stats.inc_value("crawler/images_withheld")
            else:
                candidate = await self.admit(item, page_signals)
                if candidate is not None:
                    yield candidate
        if self.recorder is not None:
            self.recorder.add(PageVisit(job_id=self.job_id, source_id=self.source_id, url=response.url,
                                        status=response.status, decision=decision, reason=reason,
                                        signals=page_signals, images=images,
                                        nofollow=bool(response.meta.get(NOFOLLOW_META))))

    async def admit(self, image: FoundImage, page_signals: list[Signal]) -> ImageCandidate | None:
        """The candidate for an image of an allowed page, or None (refusal counted once per URL)."""
        url = image.url
        if url in self._refused_images:
            return None
        if not on_allowed_host(url, self.hosts):
            self._refuse("offsite-image", image, "image host is outside the source")
            return None
        signals = list(page_signals)
        listed = self.optouts.match(url) if self.optouts is not None else None
        if listed is not None:
            self._refuse("do-not-train", image, listed.signal().value, listed.signal())
            return None
        if self.robots is not None:
            rules = await self.robots.rules(url)
            sig = rules.signal(url, scope="image")
            if sig.opt_out:
                self._refuse("robots-txt", image, rules.why, sig)
                return None
            signals.append(sig)
            ai = rules.ai_signal(url, scope="image")
            if ai is not None:
                if ai.opt_out:
                    self._refuse("robots-txt-ai-crawlers", image, ai.detail or "", ai)
                    return None
                signals.append(ai)
        if self.aitxt is not None:
            aitxt = (await self.aitxt.rules(url)).signal(url, scope="image")
            if aitxt is not None:
                if aitxt.opt_out:
                    self._refuse("ai-txt", image, "ai.txt disallows this URL", aitxt)
                    return None
                signals.append(aitxt)
        if self.tdmrep is not None:
            tdm = await self.tdmrep.signal(url, scope="image")
            if tdm is not None:
                tdm = licensed(tdm, self.basis, self.evidence)
                if tdm.opt_out:
                    self._refuse("tdm-reservation", image, "tdmrep.json reserves this location", tdm)
                    return None
                signals.append(tdm)
        return ImageCandidate.build(url=url, page_url=image.page_url, job_id=self.job_id, source_id=self.source_id,
                                    alt=image.alt, page_title=image.page_title, licence_url=image.licence_url,
                                    signals=signals)

    def _refuse(self, reason: str, image: FoundImage, detail: str, signal: Signal | None = None) -> None:
        self._refused_images.add(image.url)
        self.refusals.refuse(reason, image.url, "image", detail, page_url=image.page_url,
                             signals=[signal] if signal else [])
        return None
