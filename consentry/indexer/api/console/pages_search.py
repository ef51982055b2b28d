"""Search by photo (role ``searcher``): every face in the photo, each beside its matches, for human review.

The query photo's face crops are cut here, per request, from the uploaded bytes and sent inline in the
page: they are never stored. Matched faces show their stored crops (the same check as
``GET /v1/faces/{face_id}/crop``). The search itself is the API's (:meth:`FaceSearch.by_photo`):
purpose and case are audit-logged before the results are released.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response

from ....core.errors import ConsentryError, RecordError
from ....imaging import decode, face_crop_jpeg
from ...auth import Role
from ..models import ApiSearchOptions
from ..routes_crops import stored_crops
from ..routes_search import _counted, _read_upload
from .outcome import problem
from .render import jpeg_data_uri, page
from .session import Session, actor, viewer

router = APIRouter(prefix="/console", include_in_schema=False)
Viewer = Annotated[Session, Depends(viewer(Role.SEARCHER))]
Actor = Annotated[Session, Depends(actor(Role.SEARCHER))]
REVIEW_STATEMENT = ("Scores are leads for human review, not identification. A high score means two faces look "
                    "alike to the model, not that they are the same person: a trained reviewer compares each "
                    "pair and records the decision before anything is done with it.")


def _bounds(request: Request) -> dict[str, Any]:
    s = request.app.state.settings
    return {"threshold_min": s.search_threshold, "top_k_max": s.api_max_top_k,
            "top_k_default": min(s.search_default_top_k, s.api_max_top_k), "max_mb": s.api_max_upload_bytes // 2**20}


def _form(request: Request, session: Session, status: int = 200, **ctx: Any) -> Response:
    values = ctx.pop("values", {})
    return page(request, "search.html", session, status=status, title="Search by photo", bounds=_bounds(request),
                values=values, statement=REVIEW_STATEMENT, **{"result": None, "problem": None, **ctx})


@router.get("/search")
def search_form(request: Request, session: Viewer) -> Response:
    return _form(request, session)


def _number(text: str, kind: type, field: str) -> Any:
    if not text.strip():
        return None
    try:
        return kind(text)
    except ValueError:
        raise RecordError(f"{field} must be a number", field=field) from None


@router.post("/search")
def search(request: Request, session: Actor, photo: Annotated[UploadFile, File()],
           purpose: Annotated[str, Form(max_length=500)] = "", case: Annotated[str, Form(max_length=128)] = "",
           threshold: Annotated[str, Form(max_length=20)] = "",
           top_k: Annotated[str, Form(max_length=10)] = "") -> Response:
    svc = request.app.state.services
    values = {"purpose": purpose, "case": case, "threshold": threshold, "top_k": top_k}
    try:
        if not purpose.strip() or not case.strip():
            raise RecordError("a purpose and a case reference are required before a search runs",
                              field="purpose" if not purpose.strip() else "case")
        options = ApiSearchOptions.build(purpose=purpose, case=case.strip(), top_k=_number(top_k, int, "top_k"),
                                         threshold=_number(threshold, float, "threshold"))
        data = _read_upload(photo, svc.settings.api_max_upload_bytes)
        result = _counted(request, svc.search.by_photo(data, options, session.principal.actor))
    except ConsentryError as exc:
        p = problem(exc)
        return _form(request, session, status=p.status, values=values, problem=p)
    rgb = decode(data, max_pixels=svc.settings.image_max_pixels).rgb
    query_crops = [jpeg_data_uri(face_crop_jpeg(rgb, q.bbox)) if q.bbox else None for q in result.query_faces]
    crops = stored_crops(svc, result.face_ids(), session.principal)
    ops = request.app.state.operations
    bases = {s["id"]: s["basis"] for s in ops.source_list()}
    return _form(request, session, values=values, result=result.model_dump(mode="json"), query_crops=query_crops,
                 crops={k: jpeg_data_uri(v) for k, v in crops.items()}, bases=bases)
