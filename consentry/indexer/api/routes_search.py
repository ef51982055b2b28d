"""Search routes (role ``searcher``): by photo (multipart upload) and by face id. Purpose and case are required."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile

from ..auth import Principal, Role
from ..search import FACE_ID_PATTERN, SearchResult
from .deps import AUTH_RESPONSES, ServicesDep, require
from .errors import ErrorOut, PayloadTooLarge
from .models import ApiSearchOptions, FaceSearchBody, PhotoSearchForm

router = APIRouter(prefix="/v1/search", tags=["search"], responses=AUTH_RESPONSES)
Searcher = Annotated[Principal, Depends(require(Role.SEARCHER))]
FaceId = Annotated[str, Path(pattern=FACE_ID_PATTERN, description="An indexed face's id (64 hex).")]

PHOTO_RESPONSES: dict[int | str, dict] = {
    413: {"model": ErrorOut, "description": "Upload over api_max_upload_bytes, or a decompression bomb."},
    415: {"model": ErrorOut, "description": "The upload is not an image."},
}
FACE_RESPONSES: dict[int | str, dict] = {
    404: {"model": ErrorOut, "description": "No searchable face with this id."},
}


def _read_upload(photo: UploadFile, limit: int) -> bytes:
    if photo.size is not None and photo.size > limit:
        raise PayloadTooLarge(f"photo is {photo.size} bytes; the limit is {limit}")
    data = photo.file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"photo exceeds the limit of {limit} bytes")
    return data


def _counted(request: Request, result: SearchResult) -> SearchResult:
    m = request.app.state.metrics
    m.searches.labels(result.by).inc()
    m.search_hits.inc(sum(len(q.hits) for q in result.query_faces))
    return result


@router.post("/photo", response_model=SearchResult, responses=PHOTO_RESPONSES,
             summary="Search by photo (every face in it)")
def search_photo(request: Request, svc: ServicesDep, caller: Searcher,
                 form: Annotated[PhotoSearchForm, Form()],
                 photo: Annotated[UploadFile, File(description="JPEG, PNG, GIF, WEBP or BMP.")]) -> SearchResult:
    """Detect every face in the photo and return, for each, the indexed faces at or above the threshold.

    The photo is not stored; the audit log records the sha256 of each query face's embedding.
    """
    data = _read_upload(photo, svc.settings.api_max_upload_bytes)
    return _counted(request, svc.search.by_photo(data, form, caller.actor))


@router.post("/face", response_model=SearchResult, responses=FACE_RESPONSES, summary="Search by face id")
def search_face(request: Request, svc: ServicesDep, caller: Searcher, body: FaceSearchBody) -> SearchResult:
    """Search with the embedding of an indexed face (the face itself is left out of the results)."""
    return _counted(request, svc.search.by_face_id(body.face_id, body, caller.actor))


@router.get("/face/{face_id}", response_model=SearchResult, responses=FACE_RESPONSES,
            summary="Search by face id (query parameters)")
def search_face_get(request: Request, svc: ServicesDep, caller: Searcher, face_id: FaceId,
                    options: Annotated[ApiSearchOptions, Query()]) -> SearchResult:
    """The same as POST /v1/search/face, with the options as query parameters."""
    return _counted(request, svc.search.by_face_id(face_id, options, caller.actor))
