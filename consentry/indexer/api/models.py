"""Request and response models of the HTTP API (the search result models live in indexer.search)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ...core.records import Provenance
from ..search import CASE_PATTERN, FACE_ID_PATTERN, ImageInfo, SearchOptions


class ApiSearchOptions(SearchOptions):
    """Search options over the API: a case reference is required there."""

    case: str = Field(pattern=CASE_PATTERN, description="Case reference (required); audit-logged.")


class PhotoSearchForm(ApiSearchOptions):
    """The form fields beside the uploaded photo."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # the photo part is a separate parameter


class FaceSearchBody(ApiSearchOptions):
    face_id: str = Field(pattern=FACE_ID_PATTERN, description="An indexed face's id.")


class FaceDetails(BaseModel):
    face_id: str
    bbox: tuple[float, float, float, float]
    det_score: float
    source_id: str
    job_id: str
    consent_state: str
    model_id: str
    image_sha256: str
    ingested_at: datetime
    expires_at: datetime
    image: ImageInfo


class ImageDetails(BaseModel):
    url_key: str
    face_ids: list[str] = Field(description="Faces indexed from this image (erased ones left out).")
    provenance: Provenance


class AuditEntries(BaseModel):
    count: int
    entries: list[dict[str, Any]]


class AuditVerify(BaseModel):
    ok: bool
    entries: int
    problem: str | None = None
    entry: int | None = Field(default=None, description="The first bad entry's sequence number.")
    checkpoint_seq: int | None = Field(default=None, description="The newest signed checkpoint checked against.")
    checkpoint_at: str | None = None
    checkpoints: str | None = Field(default=None, description="Where the signed checkpoints are kept (outside "
                                    "the bucket); null: not configured.")


class Health(BaseModel):
    status: str
    model_pack: str = Field(description="The face model pack searches by photo use (model_pack setting).")
    model_licence: str = Field(description="The licence of that pack's weights.")


class Check(BaseModel):
    ok: bool
    error: str | None = None


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, Check]
