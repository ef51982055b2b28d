"""Face and image details with provenance (roles ``searcher``, ``operator``, ``privacy``).

A searcher sees only faces whose consent allows search (others are 404, or left out of an image's
faces, as in search); operators and privacy officers see any indexed face with its consent state.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from ...core.errors import NotFound
from ..auth import Principal, Role
from ..search import FACE_ID_PATTERN, image_info, live, searchable
from .deps import AUTH_RESPONSES, ServicesDep, require
from .errors import ErrorOut
from .models import FaceDetails, ImageDetails

router = APIRouter(prefix="/v1", tags=["faces"], responses={
    **AUTH_RESPONSES, 404: {"model": ErrorOut, "description": "No such face or image."}})
Reader = Annotated[Principal, Depends(require(Role.SEARCHER, Role.OPERATOR, Role.PRIVACY))]


def _ts(v: int) -> datetime:
    return datetime.fromtimestamp(int(v), UTC)


@router.get("/faces/{face_id}", response_model=FaceDetails, summary="A face and its image's provenance")
def face(svc: ServicesDep, caller: Reader,
         face_id: Annotated[str, Path(pattern=FACE_ID_PATTERN, description="64 hex")]) -> FaceDetails:
    rows = svc.index.get([face_id], strong=svc.search.strong)
    prov = svc.provenance.get(rows[0]["url_key"]) if rows else None
    if not rows or not live(face_id, prov):  # erased: gone from the system of record (Milvus may lag)
        raise NotFound(f"no face {face_id}")
    r = rows[0]
    if caller.role == Role.SEARCHER and not searchable(r, int(time.time())):
        raise NotFound(f"no face {face_id}")
    return FaceDetails(face_id=face_id, bbox=tuple(json.loads(r["bbox"])), det_score=float(r["det_score"]),
                       source_id=r["source_id"], job_id=r["job_id"], consent_state=r["consent_state"],
                       model_id=r["model_id"], image_sha256=r["image_sha256"], ingested_at=_ts(r["ingested_at"]),
                       expires_at=_ts(r["expires_at"]),
                       image=image_info(r["url_key"], prov))


@router.get("/images/{url_key}", response_model=ImageDetails, summary="An image's provenance by url key")
def image(svc: ServicesDep, caller: Reader,
          url_key: Annotated[str, Path(pattern=FACE_ID_PATTERN, description="sha256 of the image URL (64 hex)")]
          ) -> ImageDetails:
    prov = svc.provenance.get(url_key)
    if prov is None:
        raise NotFound(f"no provenance for url key {url_key}")
    faces = [f for f in prov.faces if not f.erased]
    if caller.role == Role.SEARCHER and faces:  # as in search: faces whose consent forbids it are not shown
        now = int(time.time())
        shown_ids = {r["face_id"] for r in svc.index.get([f.face_id for f in faces], strong=svc.search.strong)
                     if searchable(r, now)}
        faces = [f for f in faces if f.face_id in shown_ids]
    return ImageDetails(url_key=url_key, face_ids=[f.face_id for f in faces],
                        provenance=prov.model_copy(update={"faces": faces}))
