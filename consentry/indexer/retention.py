"""Retention: every face carries ``expires_at``; the sweep deletes what has expired and logs it."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..catalog import ProvenanceStore
from .audit import AuditLog
from .erasure import FaceRemover
from .faceindex import FaceIndex

log = logging.getLogger("consentry.retention")


def expires_at(ingested_at: float, retention_days: int, max_days: int) -> int:
    """Epoch seconds at which a face ingested at ``ingested_at`` expires (capped by ``max_days``)."""
    return int(ingested_at + min(retention_days, max_days) * 86400)


@dataclass
class SweepReport:
    run_id: str
    as_of: str
    expired_faces: int = 0
    deleted: dict[str, int] = field(default_factory=dict)
    remaining_expired: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RetentionSweeper:
    def __init__(self, index: FaceIndex, provenance: ProvenanceStore, audit: AuditLog, batch: int = 1000) -> None:
        self.index = index
        self.remover = FaceRemover(index, provenance)
        self.audit = audit
        self.batch = batch

    def sweep(self, now: float | None = None, actor: str = "retention-sweeper", dry_run: bool = False) -> SweepReport:
        now = time.time() if now is None else now
        rep = SweepReport(run_id=f"retention-{uuid.uuid4().hex[:12]}",
                          as_of=datetime.fromtimestamp(now, timezone.utc).isoformat(), dry_run=dry_run)
        if dry_run:
            rep.expired_faces = self.index.count(expired_before=int(now))
            return rep
        for _ in range(100000):
            ids = self.index.face_ids(expired_before=int(now))[: self.batch]
            if not ids:
                break
            rows = self.index.get(ids)
            counts = self.remover.remove(ids, {r["url_key"] for r in rows}, rep.run_id)
            rep.expired_faces += len(ids)
            for k, v in counts.items():
                rep.deleted[k] = rep.deleted.get(k, 0) + v
        rep.remaining_expired = self.index.count(expired_before=int(now))
        self.audit.append("retention-sweep", actor, run_id=rep.run_id, as_of=rep.as_of,
                          expired_faces=rep.expired_faces, deleted=rep.deleted)
        log.info("retention sweep %s: %d expired faces deleted", rep.run_id, rep.expired_faces)
        return rep
