"""What the operations page shows: sources, crawl jobs, ingest counters and the DLQ size.

Everything is read from where it already lives: sources and jobs from the catalog in S3, ingest
counters from the ingest drivers' ``/metrics`` endpoints (``api_ingest_metrics_urls``), the DLQ size
by reading the DLQ topic (:class:`~consentry.clients.topiccount.TopicCounter`). Nothing here writes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..catalog import JobStore, SourceRegistry
from ..clients.topiccount import TopicCounter
from ..core.records import DeadLetter

log = logging.getLogger("consentry.operations")

#: the ingest counters shown, in this order (names of ``consentry_ingest_<name>_total``)
INGEST_COUNTERS = ("records", "fetched", "indexed", "faces", "refused", "dlq", "redelivered", "commit_failures")
INGEST_GAUGES = ("workers", "workers_reachable", "circuits_open", "ready")


def dead_letter_kind(value: bytes) -> str:
    """How the DLQ tally names a record: ``stage/reason`` (``unreadable`` for a record we cannot parse)."""
    try:
        d = DeadLetter.from_json(value)
    except Exception:
        return "unreadable"
    return f"{d.stage}/{d.reason}"


def parse_ingest_metrics(text: str) -> dict[str, Any]:
    """The ingest driver's Prometheus text as counters, gauges and the two labelled tallies."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, Any] = {"refused_by_reason": {}, "errors_by_class": {}}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name.removeprefix("consentry_ingest_")
            if name == "refused_by_reason_total":
                out["refused_by_reason"][sample.labels.get("reason", "?")] = int(sample.value)
            elif name == "errors_total":
                out["errors_by_class"][sample.labels.get("error_class", "?")] = int(sample.value)
            elif name.removesuffix("_total") in INGEST_COUNTERS and name.endswith("_total"):
                out[name.removesuffix("_total")] = int(sample.value)
            elif name in INGEST_GAUGES:
                out[name] = int(sample.value)
    return out


class OperationsView:
    """Read-only views for operators. ``dlq`` is None where the API has no broker to read."""

    def __init__(self, sources: SourceRegistry, jobs: JobStore, ingest_metrics_urls: Sequence[str] = (),
                 dlq: TopicCounter | None = None, timeout_s: float = 2.0) -> None:
        self.sources = sources
        self.jobs = jobs
        self.ingest_metrics_urls = list(ingest_metrics_urls)
        self.dlq = dlq
        self.timeout_s = timeout_s

    def source_list(self) -> list[dict[str, Any]]:
        return [s.model_dump(mode="json", exclude={"schema_version"}) for s in
                sorted(self.sources.list(), key=lambda s: s.id)]

    def job_list(self, limit: int = 200) -> list[dict[str, Any]]:
        jobs = sorted(self.jobs.list(), key=lambda j: j.created_at, reverse=True)[:limit]
        return [j.model_dump(mode="json", exclude={"schema_version"}) for j in jobs]

    def ingest(self) -> dict[str, Any]:
        """Each ingest endpoint's counters (or why it could not be read), their sum, and the DLQ size."""
        import httpx

        endpoints: list[dict[str, Any]] = []
        totals: dict[str, Any] = {"refused_by_reason": {}, "errors_by_class": {}}
        for url in self.ingest_metrics_urls:
            try:
                r = httpx.get(url, timeout=self.timeout_s, follow_redirects=False)
                r.raise_for_status()
                m = parse_ingest_metrics(r.text)
            except Exception as exc:
                endpoints.append({"url": url, "ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
                continue
            endpoints.append({"url": url, "ok": True, **m})
            for k, v in m.items():
                if isinstance(v, dict):
                    for kk, vv in v.items():
                        totals[k][kk] = totals[k].get(kk, 0) + vv
                elif k in INGEST_COUNTERS:
                    totals[k] = totals.get(k, 0) + v
        return {"endpoints": endpoints, "totals": totals,
                "dlq": self.dlq.refresh().to_dict() if self.dlq is not None else None}
