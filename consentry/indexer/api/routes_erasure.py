"""Erasure routes (role ``privacy``): forget a person by photo, or everything from a source, job or URL."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Path, UploadFile
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...core.records import ID_PATTERN
from ..auth import Principal, Role
from .deps import AUTH_RESPONSES, ServicesDep, require
from .errors import ErrorOut
from .routes_search import PHOTO_RESPONSES, _read_upload

router = APIRouter(prefix="/v1/erasures", tags=["erasure"], responses=AUTH_RESPONSES)
Privacy = Annotated[Principal, Depends(require(Role.PRIVACY))]


class ReceiptOut(BaseModel):
    """What was erased, how much per store, and the verification that nothing is left."""

    request_id: str
    by: str
    target: str = Field(description="Source id, job id, URL, or the sha256 of the reference photo (never the photo).")
    actor: str
    requested_at: str
    completed_at: str
    threshold: float | None = None
    reference_faces: int = 0
    matched_face_ids: list[str]
    deleted: dict[str, int]
    verification: dict[str, Any]


class ScopeErasure(BaseModel):
    """Exactly one of source, job or url."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(default=None, pattern=ID_PATTERN)
    job: str | None = Field(default=None, pattern=ID_PATTERN)
    url: str | None = Field(default=None, pattern=r"^https?://", max_length=4096)

    @model_validator(mode="after")
    def _one(self) -> "ScopeErasure":
        if sum(v is not None for v in (self.source, self.job, self.url)) != 1:
            raise ValueError("give exactly one of source, job or url")
        return self


@router.post("/photo", response_model=ReceiptOut, responses=PHOTO_RESPONSES,
             summary="Forget a person by photo")
def forget_photo(svc: ServicesDep, caller: Privacy,
                 photo: Annotated[UploadFile, File(description="A photo of the person (JPEG, PNG, ...).")]) -> ReceiptOut:
    """Delete every indexed face at or above the erasure threshold, redact it in provenance, add the
    person to the suppression list and verify with a fresh search. The photo is never stored."""
    data = _read_upload(photo, svc.settings.api_max_upload_bytes)
    return ReceiptOut(**asdict(svc.eraser.forget_photo(data, caller.actor)))


@router.post("", response_model=ReceiptOut, summary="Forget a source, a crawl job or an image URL")
def forget_scope(svc: ServicesDep, caller: Privacy, body: ScopeErasure) -> ReceiptOut:
    """Delete every face and stored object that came from the source, job or URL."""
    if body.source:
        r = svc.eraser.forget_source(body.source, caller.actor)
    elif body.job:
        r = svc.eraser.forget_job(body.job, caller.actor)
    else:
        r = svc.eraser.forget_url(body.url or "", caller.actor)
    return ReceiptOut(**asdict(r))


@router.get("/{request_id}", response_model=ReceiptOut, summary="An erasure receipt",
            responses={404: {"model": ErrorOut, "description": "No such receipt."}})
def receipt(svc: ServicesDep, caller: Privacy,
            request_id: Annotated[str, Path(pattern=r"^er-[0-9]{8}-[0-9a-f]{12}$")]) -> ReceiptOut:
    return ReceiptOut(**svc.eraser.receipt(request_id))
