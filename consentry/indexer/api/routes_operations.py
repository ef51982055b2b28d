"""Operations (role ``operator``): sources, crawl jobs, ingest counters and the DLQ size, read-only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from ..auth import Principal, Role
from ..operations import OperationsView
from .deps import AUTH_RESPONSES, require

router = APIRouter(prefix="/v1", tags=["operations"], responses=AUTH_RESPONSES)
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]


def operations(request: Request) -> OperationsView:
    return request.app.state.operations


OperationsDep = Annotated[OperationsView, Depends(operations)]


@router.get("/sources", summary="Registered sources: match, basis, evidence reference, retention")
def sources(ops: OperationsDep, caller: Operator) -> list[dict[str, Any]]:
    return ops.source_list()


@router.get("/jobs", summary="Crawl jobs, newest first: state, counters and refusals by reason")
def jobs(ops: OperationsDep, caller: Operator,
         limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
    return ops.job_list(limit)


@router.get("/ingest", summary="Ingest counters per ingest driver (and their sum) and the DLQ size")
def ingest(ops: OperationsDep, caller: Operator) -> dict[str, Any]:
    """Counters from the `/metrics` of each `api_ingest_metrics_urls` entry; the DLQ size from reading the topic."""
    return ops.ingest()
