"""Explain: what the platform decided about a URL, and why — at ingest (provenance) or at crawl time (crawl log).

Every URL gets an answer with a ``status``:

- ``indexed`` / ``refused-at-ingest``: its provenance record (every signal checked, the decision, the faces);
- ``refused-at-crawl``: the crawler refused it (which signal, its value, when, which job) or withheld it
  because the page it was found on opted out (which page, which signal);
- ``published``: the crawler found it on an allowed page and handed it to ingest, which has not recorded it yet;
- ``crawled-page``: a page the crawler read (``explain --page`` lists its images);
- ``erased``: an erasure by URL removed it (the receipt id); erasure by source or job leaves no per-URL trace;
- ``never-seen``: no record at all.

Crawl-time history (``crawl``) is shown in every case, newest last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..catalog import ProvenanceStore, Tombstones
from ..catalog.crawllog import CrawlLine, CrawlLog, CrawlRefusal, PageVisit, mentions
from ..core.records import Decision, Provenance, url_key
from .audit import AuditLog

STATUSES = ("indexed", "refused-at-ingest", "refused-at-crawl", "published", "crawled-page", "erased", "never-seen")


@dataclass
class Explanation:
    url: str
    status: str  # one of STATUSES
    summary: str  # one line for people
    page_url: str | None = None
    source_id: str | None = None
    basis: str | None = None
    decision: str | None = None
    reason: str | None = None
    signals: list[dict[str, Any]] = field(default_factory=list)
    faces_indexed: list[str] = field(default_factory=list)
    faces_erased: list[str] = field(default_factory=list)
    erasures: list[dict[str, Any]] = field(default_factory=list)
    fetched_at: str | None = None
    http_status: int | None = None
    sha256: str | None = None
    duplicate_of: str | None = None
    model_id: str | None = None
    crawl: list[dict[str, Any]] = field(default_factory=list)  # crawl-time decisions, oldest first
    erased: dict[str, Any] | None = None  # {request_id, at} of an erasure by URL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PageExplanation:
    url: str
    status: str  # crawled-page | refused-at-crawl | never-seen
    summary: str
    visits: list[dict[str, Any]] = field(default_factory=list)  # each time a job read the page
    refusals: list[dict[str, Any]] = field(default_factory=list)  # the page itself refused (robots.txt, scope, ...)
    images: list[dict[str, Any]] = field(default_factory=list)  # {url, status, reason, summary} per image found

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Explainer:
    def __init__(self, provenance: ProvenanceStore, audit: AuditLog, crawl_log: CrawlLog | None = None,
                 tombstones: Tombstones | None = None) -> None:
        self.provenance = provenance
        self.audit = audit
        self.crawl_log = crawl_log
        self.tombstones = tombstones

    # ------------------------------------------------------------------ one URL
    def explain(self, url: str) -> Explanation:
        lines = self.crawl_log.about([url]) if self.crawl_log else []
        return self._explain(url, lines)

    def _explain(self, url: str, lines: list[CrawlLine], with_audit: bool = True) -> Explanation:
        crawl = crawl_decisions(url, lines)
        erased = self._erased(url)
        prov = self.provenance.get(url_key(url))
        if prov is not None:
            return self._from_provenance(prov, crawl, erased, with_audit)
        last = crawl[-1] if crawl else None
        if last is not None:
            status = {"refused": "refused-at-crawl", "withheld": "refused-at-crawl", "published": "published",
                      "read": "crawled-page"}[last["decision"]]
            return Explanation(url=url, status=status, summary=_crawl_summary(last), page_url=last.get("page_url"),
                               source_id=last["source_id"], reason=last.get("reason"), signals=last["signals"],
                               decision="refuse" if status == "refused-at-crawl" else None, crawl=crawl,
                               erased=erased)
        if erased is not None:
            return Explanation(url=url, status="erased", erased=erased,
                               summary=f"erased by {erased['request_id']} at {erased['at']}: no record is kept")
        return Explanation(url=url, status="never-seen",
                           summary="never seen: no provenance and no crawl record (never crawled or ingested, "
                                   "or erased with its source or job)")

    def _from_provenance(self, prov: Provenance, crawl: list[dict[str, Any]], erased: dict[str, Any] | None,
                         with_audit: bool) -> Explanation:
        erasures = []
        if prov.erased_by and with_audit:
            wanted = set(prov.erased_by)
            for e in self.audit.entries():
                d = e.get("details", {})
                rid = d.get("request_id") or d.get("run_id")
                if rid in wanted:
                    erasures.append({"request_id": rid, "action": e["action"], "at": e["at"], "by": d.get("by"),
                                     "actor": e.get("actor")})
        indexed = prov.decision is Decision.INDEX
        faces = [f.face_id for f in prov.faces if not f.erased]
        summary = (f"indexed at ingest: {len(faces)} face(s)" if indexed
                   else f"refused at ingest: {prov.reason}" + _opt_outs(prov.signals))
        return Explanation(
            url=prov.url, status="indexed" if indexed else "refused-at-ingest", summary=summary,
            page_url=prov.page_url, source_id=prov.source_id, basis=prov.basis.value,
            decision=prov.decision.value, reason=prov.reason, signals=[s.model_dump() for s in prov.signals],
            faces_indexed=faces, faces_erased=[f.face_id for f in prov.faces if f.erased],
            erasures=erasures, fetched_at=prov.fetched_at.isoformat() if prov.fetched_at else None,
            http_status=prov.http_status, sha256=prov.sha256, duplicate_of=prov.duplicate_of,
            model_id=prov.model_id, crawl=crawl, erased=erased)

    def _erased(self, url: str) -> dict[str, Any] | None:
        if self.tombstones is None:
            return None
        found = self.tombstones.get("url", url_key(url))
        return None if found is None else {"request_id": found[1], "at": found[0].isoformat()}

    # ------------------------------------------------------------------ a page and its images
    def explain_page(self, url: str) -> PageExplanation:
        """The page's crawl-time decisions and, for every image found on it, what became of it."""
        cache: dict[str, list[CrawlLine]] = {}
        lines = self.crawl_log.about([url], cache) if self.crawl_log else []
        visits = [ln for ln in lines if isinstance(ln, PageVisit) and ln.url == url]
        refusals = [ln for ln in lines if isinstance(ln, CrawlRefusal) and ln.url == url]
        images = list(dict.fromkeys(u for v in visits for u in v.images))
        image_lines = self.crawl_log.about(images, cache) if self.crawl_log and images else []
        rows = []
        for image in images:
            e = self._explain(image, [ln for ln in image_lines if mentions(ln, image)], with_audit=False)
            rows.append({"url": image, "status": e.status, "reason": e.reason, "summary": e.summary,
                         "faces_indexed": len(e.faces_indexed)})
        if visits:
            last = visits[-1]
            status = "crawled-page"
            summary = (f"read by job {last.job_id} at {last.at.isoformat()}: "
                       + ("images withheld, " + last.reason + _opt_outs(last.signals)
                          if last.decision is Decision.REFUSE else "no opt-out")
                       + f"; {len(images)} image(s) found")
        elif refusals:
            status = "refused-at-crawl"
            summary = "not fetched: " + _crawl_summary(crawl_decisions(url, refusals)[-1])
        else:
            status, summary = "never-seen", "never seen: the crawler has no record of this page"
        return PageExplanation(
            url=url, status=status, summary=summary,
            visits=[{"job_id": v.job_id, "source_id": v.source_id, "at": v.at.isoformat(), "http_status": v.status,
                     "decision": v.decision.value, "reason": v.reason, "nofollow": v.nofollow,
                     "signals": [s.model_dump() for s in v.signals], "images": len(v.images)} for v in visits],
            refusals=crawl_decisions(url, refusals), images=rows)


def crawl_decisions(url: str, lines: Sequence[CrawlLine]) -> list[dict[str, Any]]:
    """What each crawl decided about ``url``, oldest first.

    ``refused`` (a refusal of the URL itself), ``withheld`` (found on a page under an opt-out),
    ``published`` (found on an allowed page and not refused: handed to ingest), ``read`` (a page read).
    """
    refused_in = {(ln.job_id, ln.url) for ln in lines if isinstance(ln, CrawlRefusal)}
    out: list[dict[str, Any]] = []
    seen: set[tuple] = set()
    for ln in lines:
        base = {"job_id": ln.job_id, "source_id": ln.source_id, "at": ln.at.isoformat()}
        if isinstance(ln, CrawlRefusal):
            if ln.url != url:
                continue
            entry = {**base, "decision": "refused", "what": ln.what, "reason": ln.reason, "page_url": ln.page_url,
                     "signals": [s.model_dump() for s in ln.signals], "detail": ln.detail}
        elif ln.url == url:
            entry = {**base, "decision": "read", "what": "page", "reason": ln.reason, "page_url": None,
                     "signals": [s.model_dump() for s in ln.signals], "detail": ""}
        elif ln.decision is Decision.REFUSE:
            entry = {**base, "decision": "withheld", "what": "image", "reason": ln.reason, "page_url": ln.url,
                     "signals": [s.model_dump() for s in ln.signals if s.opt_out],
                     "detail": "found on a page under an opt-out: none of its images are published"}
        elif (ln.job_id, url) in refused_in:
            continue  # refused on its own in this job: that refusal is the decision
        else:
            entry = {**base, "decision": "published", "what": "image", "reason": "allowed", "page_url": ln.url,
                     "signals": [], "detail": "found on an allowed page and handed to ingest"}
        key = (entry["job_id"], entry["decision"], entry["reason"], entry["page_url"])
        if key not in seen:  # the same decision in the same job, seen on several pages' visits: once
            seen.add(key)
            out.append(entry)
    return out


def _opt_outs(signals: list[Any]) -> str:
    found = [(s["name"], s["value"]) if isinstance(s, dict) else (s.name, s.value)
             for s in signals if (s["opt_out"] if isinstance(s, dict) else s.opt_out)]
    return f" ({'; '.join(f'{n}: {v}' for n, v in found)})" if found else ""


def _crawl_summary(entry: dict[str, Any]) -> str:
    when = f"at {entry['at']} (job {entry['job_id']})"
    page = entry.get("page_url")
    if entry["decision"] == "withheld":
        return f"refused at crawl {when}: withheld with its page {page}, {entry['reason']}{_opt_outs(entry['signals'])}"
    if entry["decision"] == "refused":
        where = f", found on {page}" if page else ""
        detail = _opt_outs(entry["signals"]) or (f" ({entry['detail']})" if entry.get("detail") else "")
        return f"refused at crawl {when}: {entry['what']} {entry['reason']}{detail}{where}"
    if entry["decision"] == "published":
        return f"published by the crawler {when} from {page}; ingest has not recorded it yet"
    return f"page read by the crawler {when}"
