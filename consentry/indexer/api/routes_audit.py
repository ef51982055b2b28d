"""The audit log, for role ``auditor``: entries in a time range, and chain verification."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ...core.errors import RecordError
from ..auth import Principal, Role
from ..search import IsoDatetime
from .deps import AUTH_RESPONSES, ServicesDep, require
from .models import AuditEntries, AuditVerify

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=AUTH_RESPONSES)
Auditor = Annotated[Principal, Depends(require(Role.AUDITOR))]


def _utc(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


@router.get("/entries", response_model=AuditEntries, summary="Audit entries in a time range (oldest first)")
def entries(svc: ServicesDep, caller: Auditor,
            since: Annotated[IsoDatetime | None, Query(description="Entries at or after this time.")] = None,
            until: Annotated[IsoDatetime | None, Query(description="Entries at or before this time.")] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> AuditEntries:
    since, until = _utc(since), _utc(until)
    if since and until and since > until:
        raise RecordError("since is after until", field="since")
    got = list(islice(svc.audit.entries(since, until), limit))
    return AuditEntries(count=len(got), entries=got)


@router.get("/verify", response_model=AuditVerify, summary="Verify the hash chain")
def verify(svc: ServicesDep, caller: Auditor) -> AuditVerify:
    """Recompute the chain; ``ok`` is false and ``entry`` names the first edited, removed or moved entry."""
    return AuditVerify(**svc.audit.verify().to_dict())
