"""Explain (roles ``operator``, ``auditor``, ``privacy``): why an image URL was or was not indexed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from ..auth import Principal, Role
from ..explain import Explainer
from ..services import Services
from .deps import AUTH_RESPONSES, ServicesDep, require
from .errors import ErrorOut

router = APIRouter(prefix="/v1", tags=["explain"], responses={
    **AUTH_RESPONSES, 404: {"model": ErrorOut, "description": "The URL was never ingested, or was erased."}})
EXPLAIN_ROLES = (Role.OPERATOR, Role.AUDITOR, Role.PRIVACY)
Explaining = Annotated[Principal, Depends(require(*EXPLAIN_ROLES))]


def explain_url(svc: Services, url: str) -> dict[str, Any]:
    return Explainer(svc.provenance, svc.audit).explain(url).to_dict()


@router.get("/explain", summary="Why an image was or was not indexed: the decision and every signal checked")
def explain(svc: ServicesDep, caller: Explaining,
            url: Annotated[str, Query(min_length=8, max_length=4096, pattern=r"^https?://",
                                      description="The image URL.")]) -> dict[str, Any]:
    """The same answer as `consentry explain URL --json`."""
    return explain_url(svc, url)
