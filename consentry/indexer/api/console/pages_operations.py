"""Operations (role ``operator``): sources, crawl jobs with refusals by reason, ingest counters, DLQ size.

The page's live part (jobs, ingest, DLQ) is re-fetched as server-rendered HTML every few seconds by
console.js; without JavaScript the page still shows everything, as of its load.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ....core.errors import ConsentryError
from ...auth import Role
from .outcome import problem
from .render import page
from .session import Session, viewer

router = APIRouter(prefix="/console/operations", include_in_schema=False)
Viewer = Annotated[Session, Depends(viewer(Role.OPERATOR))]
REFRESH_SECONDS = 5


def _live(request: Request) -> dict[str, Any]:
    ops = request.app.state.operations
    try:
        live = {"jobs": ops.job_list(), "ingest": ops.ingest(), "problem": None}
    except ConsentryError as exc:
        live = {"jobs": [], "ingest": None, "problem": problem(exc)}
    return {**live, "now": datetime.now(UTC)}


@router.get("")
def operations(request: Request, session: Viewer) -> Response:
    try:
        sources, prob = request.app.state.operations.source_list(), None
    except ConsentryError as exc:
        sources, prob = [], problem(exc)
    return page(request, "operations.html", session, title="Operations", sources=sources, source_problem=prob,
                refresh_seconds=REFRESH_SECONDS, **_live(request))


@router.get("/live")
def live(request: Request, session: Viewer) -> Response:
    """The jobs, ingest and DLQ sections alone (what the page refreshes)."""
    return page(request, "_operations_live.html", session, **_live(request))
