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
from datetime import datetime, timezone
from typing import Any

from ..catalog import ProvenanceStore
from ..catalog.crawllog import CrawlLog
from .audit import AuditLog
from .erasure import FaceRemover
from ..faceindex import FaceIndex

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RetentionSweeper:
    """``source_retention_days``: each source's current retention (capped already), by source id."""

    def __init__(self, index: FaceIndex, provenance: ProvenanceStore, audit: AuditLog,
                 source_retention_days: Mapping[str, int] | None = None, batch: int = 1000) -> None:
        self.index = index
        self.remover = FaceRemover(index, provenance)
        self.audit = audit
        self.source_retention_days = dict(source_retention_days or {})
        self.batch = batch

    def _selections(self, now: int) -> list[dict[str, int | str]]:
        """Disjoint face selections to delete: the expired, then per source the unexpired but too old."""
        out: list[dict[str, int | str]] = [{"expired_before": now}]
        for source_id, days in sorted(self.source_retention_days.items()):
            out.append({"source_id": source_id, "ingested_before": now - days * 86400, "unexpired_at": now})
        return out

    def sweep(self, now: float | None = None, actor: str = "retention-sweeper", dry_run: bool = False) -> SweepReport:
        now = time.time() if now is None else now
        rep = SweepReport(run_id=f"retention-{uuid.uuid4().hex[:12]}",
                          as_of=datetime.fromtimestamp(now, timezone.utc).isoformat(), dry_run=dry_run)
        selections = self._selections(int(now))
        if dry_run:
            counts = [self.index.count(**sel) for sel in selections]
            rep.expired_faces, rep.past_source_retention = sum(counts), sum(counts[1:])
            return rep
        for k, sel in enumerate(selections):
            for _ in range(100000):
                ids = self.index.face_ids(**sel)[: self.batch]
                if not ids:
                    break
                rows = self.index.get(ids)
                counts = self.remover.remove(ids, {r["url_key"] for r in rows}, rep.run_id)
                rep.expired_faces += len(ids)
                rep.past_source_retention += len(ids) if k else 0
                for name, v in counts.items():
                    rep.deleted[name] = rep.deleted.get(name, 0) + v
        rep.remaining_expired = sum(self.index.count(**sel) for sel in selections)
        # crawl-time records (refusals, pages read) past their source's retention
        rep.deleted["crawl_log_objects"] = CrawlLog(self.remover.provenance.store).expire(self.source_retention_days,
                                                                                         now=now)
        self.audit.append("retention-sweep", actor, run_id=rep.run_id, as_of=rep.as_of,
                          expired_faces=rep.expired_faces, past_source_retention=rep.past_source_retention,
                          deleted=rep.deleted)
        log.info("retention sweep %s: %d expired faces deleted (%d past a shortened source retention)",
                 rep.run_id, rep.expired_faces, rep.past_source_retention)
        return rep
