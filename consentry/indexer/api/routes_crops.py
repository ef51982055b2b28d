"""Face crops (roles ``searcher``, ``operator``, ``privacy``): the stored 112x112 JPEG of an indexed face.

A crop is served only while its face is indexed (erased or expired faces have none), and a searcher
gets only crops of faces that search may show them (the same rule as ``GET /v1/faces/{face_id}``).
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from ...core.errors import NotFound, ObjectNotFound
from ..auth import Principal, Role
from ..search import FACE_ID_PATTERN, searchable
from ..services import Services
from .deps import AUTH_RESPONSES, ServicesDep, require
from .errors import ErrorOut

router = APIRouter(prefix="/v1", tags=["faces"], responses=AUTH_RESPONSES)
CROP_ROLES = (Role.SEARCHER, Role.OPERATOR, Role.PRIVACY)
Reader = Annotated[Principal, Depends(require(*CROP_ROLES))]
#: crops are biometric data: never kept in a browser or proxy cache
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def stored_crops(svc: Services, face_ids: list[str], caller: Principal) -> dict[str, bytes]:
    """The stored crops of those ``face_ids`` that are indexed (and, for a searcher, searchable)."""
    if not face_ids:
        return {}
    now = int(time.time())
    rows = svc.index.get(face_ids)
    shown = [r["face_id"] for r in rows if caller.role != Role.SEARCHER or searchable(r, now)]
    out = {}
    for fid in shown:
        try:
            out[fid] = svc.objects.get(svc.provenance.crop_key(fid))
        except ObjectNotFound:
            continue
    return out


@router.get("/faces/{face_id}/crop", response_class=Response, summary="A face's stored crop (JPEG)",
            responses={200: {"content": {"image/jpeg": {}}, "description": "A 112x112 JPEG."},
                       404: {"model": ErrorOut, "description": "No such face, or no crop stored for it."}})
def crop(svc: ServicesDep, caller: Reader,
         face_id: Annotated[str, Path(pattern=FACE_ID_PATTERN, description="64 hex")]) -> Response:
    data = stored_crops(svc, [face_id], caller).get(face_id)
    if data is None:
        raise NotFound(f"no crop for face {face_id}")
    return Response(data, media_type="image/jpeg", headers=NO_STORE)
