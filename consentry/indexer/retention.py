"""Retention: every face carries ``expires_at``; the sweep deletes what has expired and logs it.

A face's ``expires_at`` is fixed when it is written, from its source's retention then. When an
operator later *shortens* a source's retention (``consentry source add`` again with a smaller
``--retention-days``), the sweep also deletes that source's faces ingested longer ago than the
new period: a shorter promise applies to what is already held. A longer retention never extends
faces already written.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..catalog import ProvenanceStore
from ..catalog.crawllog import CrawlLog
from ..core.retry import NO_RETRY, RetryPolicy
from ..faceindex import FaceIndex
from .audit import AuditLog
from .erasure import FaceRemover
from .purge import Purger, RecordingStore

log = logging.getLogger("consentry.retention")


def expires_at(ingested_at: float, retention_days: int, max_days: int) -> int:
    """Epoch seconds at which a face ingested at ``ingested_at`` expires (capped by ``max_days``)."""
    return int(ingested_at + min(retention_days, max_days) * 86400)


@dataclass
class SweepReport:
    run_id: str
    as_of: str
    expired_faces: int = 0  # all faces deleted: past their expires_at, or past their source's current retention
    past_source_retention: int = 0  # of which: not yet at expires_at, but past a shortened source retention
    deleted: dict[str, int] = field(default_factory=dict)
    remaining_expired: int = 0
    dry_run: bool = False
    purge: dict[str, Any] = field(default_factory=dict)  # physical purge: {"s3": ..., "milvus": ...}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RetentionSweeper:
    """``source_retention_days``: each source's current retention (capped already), by source id."""

    def __init__(self, index: FaceIndex, provenance: ProvenanceStore, audit: AuditLog,
                 source_retention_days: Mapping[str, int] | None = None, batch: int = 1000,
                 retry: RetryPolicy = NO_RETRY, purger: Purger | None = None) -> None:
        self.index = index
        self.provenance = provenance
        self.retry = retry
        self.purger = purger
        self.audit = audit
        self.source_retention_days = dict(source_retention_days or {})
        self.batch = batch

    def _selections(self, now: int) -> list[dict[str, Any]]:
        """Disjoint face selections to delete: the expired, then per source the unexpired but too old."""
        out: list[dict[str, Any]] = [{"expired_before": now}]
        for source_id, days in sorted(self.source_retention_days.items()):
            out.append({"source_id": source_id, "ingested_before": now - days * 86400, "unexpired_at": now})
        return out

    def _count(self, sel: dict[str, Any]) -> int:
        return self.retry.call(lambda: self.index.count(**sel), "count expired faces")

    def _face_ids(self, sel: dict[str, Any]) -> list[str]:
        return self.retry.call(lambda: self.index.face_ids(**sel), "list expired faces")

    def _rows(self, ids: list[str]) -> list[dict[str, Any]]:
        return self.retry.call(lambda: self.index.get(ids), "read expired faces")

    def sweep(self, now: float | None = None, actor: str = "retention-sweeper", dry_run: bool = False) -> SweepReport:
        now = time.time() if now is None else now
        rep = SweepReport(run_id=f"retention-{uuid.uuid4().hex[:12]}",
                          as_of=datetime.fromtimestamp(now, UTC).isoformat(), dry_run=dry_run)
        selections = self._selections(int(now))
        if dry_run:
            expired = [self._count(sel) for sel in selections]
            rep.expired_faces, rep.past_source_retention = sum(expired), sum(expired[1:])
            return rep
        rec = RecordingStore(self.provenance.store)
        remover = FaceRemover(self.index, ProvenanceStore(rec), self.retry)
        for k, sel in enumerate(selections):
            ids = self._face_ids(sel)
            for i in range(0, len(ids), self.batch):
                chunk = ids[i:i + self.batch]
                rows = self._rows(chunk)
                counts = remover.remove(chunk, {r["url_key"] for r in rows}, rep.run_id)
                rep.expired_faces += len(chunk)
                rep.past_source_retention += len(chunk) if k else 0
                for name, v in counts.items():
                    rep.deleted[name] = rep.deleted.get(name, 0) + v
        # crawl-time records (refusals, pages read) past their source's retention
        rep.deleted["crawl_log_objects"] = self.retry.call(
            lambda: CrawlLog(rec).expire(self.source_retention_days, now=now), "expire crawl-log records")
        rep.remaining_expired = sum(self._count(sel) for sel in selections)
        if self.purger is not None and rep.expired_faces:
            rep.purge = {"s3": self.purger.s3(rec), "milvus": self.purger.milvus()}
        self.audit.append("retention-sweep", actor, run_id=rep.run_id, as_of=rep.as_of,
                          expired_faces=rep.expired_faces, past_source_retention=rep.past_source_retention,
                          deleted=rep.deleted)
        log.info("retention sweep %s: %d expired faces deleted (%d past a shortened source retention)",
                 rep.run_id, rep.expired_faces, rep.past_source_retention)
        return rep
