"""Explain (roles ``operator``, ``auditor``, ``privacy``): an image URL → the decision and every signal checked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from ....core.errors import ConsentryError, RecordError
from ..routes_explain import EXPLAIN_ROLES, explain_url
from .outcome import problem
from .render import page
from .session import Session, viewer

router = APIRouter(prefix="/console", include_in_schema=False)
Viewer = Annotated[Session, Depends(viewer(*EXPLAIN_ROLES))]


@router.get("/explain")
def explain(request: Request, session: Viewer, url: Annotated[str, Query(max_length=4096)] = "") -> Response:
    explanation, prob = None, None
    if url.strip():
        try:
            if not url.strip().startswith(("http://", "https://")):
                raise RecordError("give the image's http(s) URL", field="url")
            explanation = explain_url(request.app.state.services, url.strip())
        except ConsentryError as exc:
            prob = problem(exc)
    columns = list(dict.fromkeys(k for s in (explanation or {}).get("signals") or [] for k in s))
    return page(request, "explain.html", session, status=prob.status if prob else 200, title="Explain",
                url=url, explanation=explanation, columns=columns, problem=prob)
