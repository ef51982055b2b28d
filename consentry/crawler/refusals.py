"""Every refusal is counted by reason and recorded: stats ``crawler/refused/<reason>`` and a JSON-lines file."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.records import utcnow

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

log = logging.getLogger("consentry.crawler.refusals")

STATS_PREFIX = "crawler/refused/"


class Refusals:
    """Count and record why a URL was not fetched or its images not published.

    ``kind`` is ``page`` (a page fetched but under an opt-out), ``request`` (a URL not fetched at all)
    or ``image`` (one image URL refused on its own).
    """

    def __init__(self, stats: Any, record_file: Path | None) -> None:
        self.stats = stats
        self.record_file = record_file
        self._lock = threading.Lock()
        if record_file is not None:
            record_file.parent.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Refusals:
        path = crawler.settings.get("CONSENTRY_REFUSALS_FILE")
        return cls(crawler.stats, Path(path) if path else None)

    def refuse(self, reason: str, url: str, kind: str, detail: str = "") -> None:
        self.stats.inc_value(f"{STATS_PREFIX}{reason}")
        self.stats.inc_value(f"crawler/refused_{kind}s")
        log.info("refused %s %s: %s%s", kind, url, reason, f" ({detail})" if detail else "")
        if self.record_file is None:
            return
        line = json.dumps({"at": utcnow().isoformat(), "kind": kind, "url": url, "reason": reason,
                           "detail": detail}, sort_keys=True)
        with self._lock, self.record_file.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def refusal_counts(stats: dict[str, Any]) -> dict[str, int]:
    """``{reason: count}`` from a stats dict."""
    return {k[len(STATS_PREFIX):]: int(v) for k, v in stats.items() if k.startswith(STATS_PREFIX)}
