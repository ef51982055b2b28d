"""Erasure (role ``privacy``): by photo, with the requester's reference, or by source, job or URL.

Each form needs an explicit confirmation; the result is the eraser's receipt (faces matched, deleted
per store, verification), shown field by field whatever fields it carries, and downloadable as JSON.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError

from ....core.errors import ConsentryError, RecordError
from ...auth import Role
from ...search import CASE_PATTERN
from ..routes_erasure import ScopeErasure
from ..routes_search import _read_upload
from .outcome import problem
from .render import page
from .session import Session, actor, viewer

router = APIRouter(prefix="/console/erase", include_in_schema=False)
Viewer = Annotated[Session, Depends(viewer(Role.PRIVACY))]
Actor = Annotated[Session, Depends(actor(Role.PRIVACY))]
RECEIPT_ID = r"^er-[0-9]{8}-[0-9a-f]{12}$"
REFERENCE = re.compile(CASE_PATTERN)  # a requester's reference is a case reference
SCOPES = ("source", "job", "url")


def _form(request: Request, session: Session, status: int = 200, **ctx: Any) -> Response:
    return page(request, "erase.html", session, status=status, title="Erase",
                **{"problem": None, "values": {}, "scopes": SCOPES, **ctx})


def _checked(confirm: str, reference: str) -> str:
    if confirm != "yes":
        raise RecordError("tick the confirmation: an erasure cannot be undone", field="confirm")
    if not REFERENCE.match(reference.strip()):
        raise RecordError("the requester's reference is required (letters, digits and . _ : / # - only)",
                          field="reference")
    return reference.strip()


def _with_reference(erase: Callable[..., Any], *args: Any, reference: str) -> Any:
    """Call an eraser method, passing the requester's reference where the eraser records one."""
    if "reference" in inspect.signature(erase).parameters:
        return erase(*args, reference=reference)
    return erase(*args)


def _receipt_page(request: Request, session: Session, receipt: dict[str, Any], reference: str | None = None
                  ) -> Response:
    return page(request, "receipt.html", session, title=f"Erasure receipt {receipt.get('request_id', '')}",
                receipt=receipt, reference=reference)


@router.get("")
def erase_form(request: Request, session: Viewer) -> Response:
    return _form(request, session)


@router.post("/photo")
def erase_photo(request: Request, session: Actor, photo: Annotated[UploadFile, File()],
                reference: Annotated[str, Form(max_length=128)] = "",
                confirm: Annotated[str, Form(max_length=8)] = "") -> Response:
    svc = request.app.state.services
    try:
        ref = _checked(confirm, reference)
        data = _read_upload(photo, svc.settings.api_max_upload_bytes)
        r = _with_reference(svc.eraser.forget_photo, data, session.principal.actor, reference=ref)
    except ConsentryError as exc:
        return _form(request, session, status=problem(exc).status, problem=problem(exc),
                     values={"reference": reference, "form": "photo"})
    return _receipt_page(request, session, r.to_dict(), ref)


@router.post("/scope")
def erase_scope(request: Request, session: Actor, kind: Annotated[str, Form(max_length=8)] = "",
                target: Annotated[str, Form(max_length=4096)] = "",
                reference: Annotated[str, Form(max_length=128)] = "",
                confirm: Annotated[str, Form(max_length=8)] = "") -> Response:
    svc = request.app.state.services
    values = {"kind": kind, "target": target, "reference": reference, "form": "scope"}
    try:
        ref = _checked(confirm, reference)
        if kind not in SCOPES:
            raise RecordError("choose what to erase: a source, a crawl job or an image URL", field="kind")
        try:
            ScopeErasure(**{kind: target.strip()})
        except ValidationError as exc:
            raise RecordError(f"{kind}: {exc.errors()[0]['msg']}", field=kind) from None
        erase = {"source": svc.eraser.forget_source, "job": svc.eraser.forget_job, "url": svc.eraser.forget_url}[kind]
        r = _with_reference(erase, target.strip(), session.principal.actor, reference=ref)
    except ConsentryError as exc:
        return _form(request, session, status=problem(exc).status, problem=problem(exc), values=values)
    return _receipt_page(request, session, r.to_dict(), ref)


ReceiptId = Annotated[str, Path(pattern=RECEIPT_ID)]


def _stored(request: Request, session: Session, request_id: str,
            show: Callable[[dict[str, Any]], Response]) -> Response:
    """``show`` the stored receipt, or the erase page saying why there is none."""
    try:
        r = request.app.state.services.eraser.receipt(request_id)
    except ConsentryError as exc:
        return _form(request, session, status=problem(exc).status, problem=problem(exc))
    return show(r)


@router.get("/receipts/{request_id}")
def receipt(request: Request, session: Viewer, request_id: ReceiptId) -> Response:
    return _stored(request, session, request_id, lambda r: _receipt_page(request, session, r))


@router.get("/receipts/{request_id}/download")
def download(request: Request, session: Viewer, request_id: ReceiptId) -> Response:
    return _stored(request, session, request_id, lambda r: Response(
        json.dumps(r, indent=2, sort_keys=True, ensure_ascii=False), media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{request_id}.json"'}))
