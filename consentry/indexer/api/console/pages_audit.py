"""The audit log (role ``auditor``): entries by time range and kind, the chain's verification, export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from ....core.errors import ConsentryError, RecordError
from ...auth import Role
from .outcome import problem
from .render import page
from .session import Session, viewer

router = APIRouter(prefix="/console/audit", include_in_schema=False)
Viewer = Annotated[Session, Depends(viewer(Role.AUDITOR))]
#: the kinds of entry the log holds today; kinds seen in the range are offered too
KINDS = ("search", "erasure", "retention-sweep", "consent-change", "token.create", "token.revoke")
Text = Annotated[str, Query(max_length=64)]


def _time(text: str, field: str) -> datetime | None:
    """A ``datetime-local`` value (or any ISO 8601 time), taken as UTC when it names no zone."""
    if not text.strip():
        return None
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise RecordError(f"{field}: not a date and time", field=field) from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _entries(request: Request, since: str, until: str, kind: str) -> Iterator[dict[str, Any]]:
    t0, t1 = _time(since, "since"), _time(until, "until")
    if t0 and t1 and t0 > t1:
        raise RecordError("since is after until", field="since")
    for e in request.app.state.services.audit.entries(t0, t1):
        if not kind or e.get("action") == kind:
            yield e


@router.get("")
def audit(request: Request, session: Viewer, since: Text = "", until: Text = "", kind: Text = "",
          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    values = {"since": since, "until": until, "kind": kind, "limit": limit}
    svc = request.app.state.services
    entries: list[dict[str, Any]] = []
    prob = None
    try:
        entries = list(_entries(request, since, until, kind))
        verify = svc.audit.verify().to_dict()
    except ConsentryError as exc:
        prob, verify = problem(exc), None
    kinds = sorted({*KINDS, *(e.get("action", "") for e in entries)} - {""})
    shown = list(reversed(entries))[:limit]  # newest first
    return page(request, "audit.html", session, status=prob.status if prob else 200, title="Audit log",
                values=values, entries=shown, total=len(entries), verify=verify, kinds=kinds, problem=prob)


@router.get("/export")
def export(request: Request, session: Viewer, since: Text = "", until: Text = "", kind: Text = "") -> Response:
    """Every entry in the range, oldest first, one JSON object a line: the objects as stored (hash and prev)."""
    try:
        first = list(_entries(request, since, until, kind))
    except ConsentryError as exc:
        p = problem(exc)
        return Response(p.message, status_code=p.status, media_type="text/plain")
    body = (json.dumps(e, sort_keys=True, ensure_ascii=False, default=str) + "\n" for e in first)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(body, media_type="application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.ndjson"'})
