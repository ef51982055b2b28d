"""Ingest metrics: Prometheus counters (``consentry_ingest_*``) and a plain stats dict for the CLI.

The counters live in the process's default registry (one set per worker process); each worker
also keeps its own :class:`IngestStats`, which the runner sums up for the throughput line.
"""

from __future__ import annotations

import threading
from collections import Counter as _Tally
from typing import Any

from prometheus_client import Counter

RECORDS = Counter("consentry_ingest_records", "Kafka records processed (committed or dead-lettered)")
FETCHED = Counter("consentry_ingest_fetched", "Images fetched and accepted as image bytes")
INDEXED = Counter("consentry_ingest_indexed", "Images indexed (decision index)")
REFUSED = Counter("consentry_ingest_refused", "Images refused, by reason", ["reason"])
FACES = Counter("consentry_ingest_faces", "Faces written to the index")
ERRORS = Counter("consentry_ingest_errors", "Permanent failures sent to the DLQ, by error class", ["error_class"])
RETRIES = Counter("consentry_ingest_redeliveries", "Records left uncommitted after a transient dependency failure")
#: the tallies every snapshot carries (also the names of the driver's /metrics counters)
COUNTERS = ("records", "fetched", "indexed", "faces", "refused", "dlq", "redelivered", "commit_failures")
COMMIT_FAILURES = Counter("consentry_ingest_commit_failures",
                          "Offset commits that failed after their retries (the records' writes were durable)")


class IngestStats:
    """Thread-safe tallies for one worker; ``snapshot()`` is JSON-friendly."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: _Tally[str] = _Tally()
        self.refused: _Tally[str] = _Tally()
        self.errors: _Tally[str] = _Tally()

    def record(self) -> None:
        self._add("records", RECORDS)

    def fetched(self) -> None:
        self._add("fetched", FETCHED)

    def indexed(self, faces: int) -> None:
        self._add("indexed", INDEXED)
        with self._lock:
            self.counts["faces"] += faces
        FACES.inc(faces)

    def refused_for(self, reason: str) -> None:
        with self._lock:
            self.counts["refused"] += 1
            self.refused[reason] += 1
        REFUSED.labels(reason=reason).inc()

    def dead_letter(self, error_class: str) -> None:
        with self._lock:
            self.counts["dlq"] += 1
            self.errors[error_class] += 1
        ERRORS.labels(error_class=error_class).inc()

    def redelivery(self, n: int = 1) -> None:
        with self._lock:
            self.counts["redelivered"] += n
        RETRIES.inc(n)

    def commit_failed(self) -> None:
        self._add("commit_failures", COMMIT_FAILURES)

    def _add(self, key: str, counter: Counter) -> None:
        with self._lock:
            self.counts[key] += 1
        counter.inc()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {k: self.counts.get(k, 0) for k in COUNTERS}
            out["refused_by_reason"] = dict(self.refused)
            out["errors_by_class"] = dict(self.errors)
        return out


def merge(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum several workers' snapshots."""
    total: dict[str, Any] = {"refused_by_reason": {}, "errors_by_class": {}}
    for snap in snapshots:
        for k, v in snap.items():
            if isinstance(v, dict):
                d = total.setdefault(k, {})
                for kk, vv in v.items():
                    d[kk] = d.get(kk, 0) + vv
            elif isinstance(v, (int, float)):
                total[k] = total.get(k, 0) + v
    return total
