"""Search: by photo (decode → detect → embed → search each face) and by face id.

:class:`FaceSearch` is the entry class; the CLI and the HTTP API both call it. It takes built
components (the :class:`FaceIndex`, the provenance store, the audit log, a face model loader) and
plain limits; it reads no settings itself.

- Only faces whose consent allows search are returned: the consent filter is part of the Milvus
  expression (:meth:`FaceIndex.search`), and every hit is then checked against the system of
  record: its image's provenance (read for the result anyway, in parallel) must list the face and
  not as erased. Erasures change the system of record (S3, read-after-write consistent) before they
  return, so an erasure is invisible to the very next search on every replica, while Milvus is
  searched at Bounded consistency (no wait for its next time tick; docs/erasure.md).
- Filters (source, job, ingestion time range) arrive as validated values (:class:`SearchOptions`)
  and reach Milvus as structured conditions, never as text.
- Every search is appended to the audit log before its results are released: who, when, purpose,
  case, sha256 of each query face embedding (never the photo), and the result face ids. If the
  audit append fails, the search fails.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from ..catalog import ProvenanceStore
from ..core.errors import ModelError, NoFaceFound, NotFound, RecordError
from ..core.records import ID_PATTERN, ConsentState, Provenance
from ..core.retry import NO_RETRY, RetryPolicy
from ..faceindex import FaceIndex, Match
from .audit import AuditLog

log = logging.getLogger("consentry.search")

#: a source or job id, as accepted in filters
FilterId = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=63)]
#: free text that is audit-logged: printable, one line
_TEXT = r"^[^\x00-\x1f\x7f]+$"
CASE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._:/#-]{0,127}$"
FACE_ID_PATTERN = r"^[0-9a-f]{64}$"
_FACE_ID_RE = re.compile(FACE_ID_PATTERN)
MAX_FILTER_VALUES = 32


def _not_a_number(v: Any) -> Any:
    if isinstance(v, (int, float)) or (isinstance(v, str) and re.fullmatch(r"\s*[-+]?\d+(\.\d*)?\s*", v)):
        raise ValueError("expected an ISO 8601 date or date-time, not a number")
    return v


#: a time given as ISO 8601 text (pydantic alone would also take numbers as Unix times)
IsoDatetime = Annotated[datetime, BeforeValidator(_not_a_number)]


@dataclass(frozen=True)
class SearchLimits:
    """Bounds on every search. ``threshold`` is both the default and the floor (settings.search_threshold)."""

    default_top_k: int = 10
    max_top_k: int = 100
    threshold: float = 0.35
    max_pixels: int = 40_000_000
    max_query_faces: int = 20

    @classmethod
    def from_settings(cls, s) -> SearchLimits:
        return cls(default_top_k=min(s.search_default_top_k, s.api_max_top_k), max_top_k=s.api_max_top_k,
                   threshold=s.search_threshold, max_pixels=s.image_max_pixels)


class SearchOptions(BaseModel):
    """What a searcher asks for, validated at construction (:meth:`build` raises RecordError naming the field)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    purpose: str = Field(min_length=3, max_length=500, pattern=_TEXT,
                         description="Why you are searching; audit-logged.")
    case: str | None = Field(default=None, pattern=CASE_PATTERN, description="Case reference; audit-logged.")
    top_k: int | None = Field(default=None, ge=1, description="Results per query face (at most the server's "
                              "api_max_top_k; default search_default_top_k).")
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0, description="Cosine similarity floor "
                                    "(default and minimum: the server's search_threshold).")
    source: list[FilterId] = Field(default_factory=list, max_length=MAX_FILTER_VALUES,
                                   description="Only faces from these source ids.")
    job: list[FilterId] = Field(default_factory=list, max_length=MAX_FILTER_VALUES,
                                description="Only faces from these crawl job ids.")
    ingested_since: IsoDatetime | None = Field(default=None, description="Only faces ingested at or after this time.")
    ingested_until: IsoDatetime | None = Field(default=None, description="Only faces ingested at or before this time.")

    @classmethod
    def build(cls, **fields: Any) -> SearchOptions:
        try:
            return cls.model_validate({k: v for k, v in fields.items() if v is not None})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err.get("loc", ())) or None
            raise RecordError(f"invalid search: {where}: {err.get('msg')}", field=where) from None

    @field_validator("purpose")
    @classmethod
    def _purpose(cls, v: str) -> str:
        if len(v.strip()) < 3:
            raise ValueError("purpose must say why you are searching (at least 3 characters)")
        return v.strip()

    @field_validator("ingested_since", "ingested_until")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v

    @model_validator(mode="after")
    def _range(self) -> SearchOptions:
        if self.ingested_since and self.ingested_until and self.ingested_since > self.ingested_until:
            raise ValueError("ingested_since is after ingested_until")
        return self


# ---------------------------------------------------------------------------------------------- results
class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ImageInfo(_Out):
    url_key: str
    url: str | None = Field(description="The image URL (null if its provenance was erased).")
    page_url: str | None
    source_id: str | None
    fetched_at: datetime | None


class SearchHit(_Out):
    face_id: str
    score: float = Field(description="Cosine similarity to the query face.")
    bbox: tuple[float, float, float, float]
    det_score: float
    source_id: str
    job_id: str
    ingested_at: datetime
    image: ImageInfo


class QueryFace(_Out):
    index: int
    bbox: tuple[float, float, float, float] | None = Field(description="Where the face is in the query photo.")
    det_score: float | None
    embedding_sha256: str = Field(description="sha256 of the query embedding (float32), as in the audit log.")
    hits: list[SearchHit]


class SearchResult(_Out):
    search_id: str
    by: Literal["photo", "face_id"]
    query_face_id: str | None = None
    model_id: str
    top_k: int
    threshold: float
    purpose: str
    case: str | None
    audit_seq: int = Field(description="The audit log entry recording this search.")
    query_faces: list[QueryFace]

    def face_ids(self) -> list[str]:
        return _result_ids(self.query_faces)


def _result_ids(query_faces: Sequence[QueryFace]) -> list[str]:
    return list(dict.fromkeys(h.face_id for q in query_faces for h in q.hits))


def embedding_sha256(embedding: Sequence[float] | np.ndarray) -> str:
    return hashlib.sha256(np.asarray(embedding, dtype="<f4").reshape(-1).tobytes()).hexdigest()


def searchable(row: dict[str, Any], now: int) -> bool:
    """May this face row (from FaceIndex.get) be shown to a searcher? The same rule as the search filter."""
    return row["consent_state"] == ConsentState.GRANTED.value and int(row["expires_at"]) > now


def live(face_id: str, prov: Provenance | None) -> bool:
    """Does the system of record still hold this face? Its image's provenance lists it, not erased.

    Erasures redact or delete provenance before they return; ingest writes provenance after the face
    rows. So a face Milvus still returns (it applies deletes a moment later) but the system of record
    no longer holds is never shown, on any replica, and a face is shown only once fully written.
    """
    return prov is not None and any(f.face_id == face_id and not f.erased for f in prov.faces)


def _box(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in bbox)
    return x0, y0, x1, y1


def _epoch(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp())


@dataclass(frozen=True)
class _Query:
    embedding: np.ndarray
    bbox: tuple[float, float, float, float] | None
    det_score: float | None


class FaceSearch:
    """Search indexed faces by photo or by face id; every search is audit-logged."""

    #: provenance reads in flight at once for one process (hits are read in parallel)
    READ_THREADS = 16

    def __init__(self, index: FaceIndex, provenance: ProvenanceStore, audit: AuditLog,
                 model_loader: Callable[[], Any] | None, limits: SearchLimits = SearchLimits(),
                 strong: bool = False, clock: Callable[[], float] = time.time,
                 retry: RetryPolicy = NO_RETRY) -> None:
        self.index = index
        self.provenance = provenance
        self.audit = audit
        self.model_loader = model_loader
        self.limits = limits
        self.strong = strong  # Strong consistency in Milvus too (not needed for erasures: see the post-filter)
        self.clock = clock
        self.retry = retry
        self._pool = ThreadPoolExecutor(self.READ_THREADS, thread_name_prefix="provenance")

    # ------------------------------------------------------------------ entry points
    def by_photo(self, photo: bytes, options: SearchOptions, actor: str) -> SearchResult:
        """Detect every face in ``photo`` (untrusted bytes) and search each one."""
        from ..imaging import decode

        top_k, threshold = self._bounds(options)
        bgr = decode(photo, max_pixels=self.limits.max_pixels).bgr  # ImageRejected for non-images and bombs
        if self.model_loader is None:
            raise ModelError("no face model is configured for search by photo")
        model = self.model_loader()
        faces = model.analyze(bgr)
        if not faces:
            raise NoFaceFound("no face found in the query photo")
        faces = sorted(faces, key=lambda f: -f.score)[: self.limits.max_query_faces]
        queries = [_Query(np.asarray(f.embedding, dtype=np.float32), _box(f.bbox), float(f.score)) for f in faces]
        return self._run("photo", queries, model.model_id, options, top_k, threshold, actor)

    def by_face_id(self, face_id: str, options: SearchOptions, actor: str) -> SearchResult:
        """Search with the stored embedding of an indexed (and itself searchable) face."""
        if not isinstance(face_id, str) or not _FACE_ID_RE.match(face_id):
            raise RecordError("face_id must be 64 lowercase hex characters", field="face_id")
        top_k, threshold = self._bounds(options)
        rows = self.retry.call(lambda: self.index.get([face_id], with_embedding=True, strong=self.strong),
                               "get query face")
        if not rows or not searchable(rows[0], int(self.clock())):
            raise NotFound(f"no searchable face {face_id}")
        row = rows[0]
        # the query face itself must still be live in the system of record (read beside the search)
        query_prov = self._pool.submit(self._read_provenance, row["url_key"])
        q = _Query(np.asarray(row["embedding"], dtype=np.float32), None, None)
        return self._run("face_id", [q], row["model_id"], options, top_k, threshold, actor, exclude=face_id,
                         exclude_check=query_prov)

    # ------------------------------------------------------------------ internals
    def _bounds(self, o: SearchOptions) -> tuple[int, float]:
        top_k = o.top_k if o.top_k is not None else self.limits.default_top_k
        if top_k > self.limits.max_top_k:
            raise RecordError(f"top_k {top_k} exceeds the maximum of {self.limits.max_top_k}", field="top_k")
        threshold = o.threshold if o.threshold is not None else self.limits.threshold
        if threshold < self.limits.threshold:
            raise RecordError(f"threshold {threshold} is below the minimum of {self.limits.threshold}",
                              field="threshold")
        return top_k, threshold

    def _run(self, by: Literal["photo", "face_id"], queries: list[_Query], model_id: str, o: SearchOptions,
             top_k: int, threshold: float, actor: str, exclude: str | None = None,
             exclude_check: Future[Provenance | None] | None = None) -> SearchResult:
        limit = top_k + (1 if exclude else 0)
        matches = self.retry.call(lambda: self.index.search(
            [q.embedding for q in queries], model_id, limit, threshold, source_ids=o.source or None,
            job_ids=o.job or None, ingested_since=_epoch(o.ingested_since), ingested_until=_epoch(o.ingested_until),
            now=int(self.clock()), strong=self.strong), "search faces")
        images = self._images({m.url_key for ms in matches for m in ms})
        if exclude is not None and exclude_check is not None and not live(exclude, exclude_check.result()):
            raise NotFound(f"no searchable face {exclude}")
        matches = [[m for m in ms if m.face_id != exclude and live(m.face_id, images[m.url_key][1])][:top_k]
                   for ms in matches]
        qfaces = [QueryFace(index=i, bbox=q.bbox, det_score=q.det_score,
                            embedding_sha256=embedding_sha256(q.embedding),
                            hits=[self._hit(m, images[m.url_key][0]) for m in ms])
                  for i, (q, ms) in enumerate(zip(queries, matches))]
        search_id = uuid.uuid4().hex
        result_ids = _result_ids(qfaces)
        entry = self.audit.append(
            "search", actor, search_id=search_id, by=by, purpose=o.purpose, case=o.case, model_id=model_id,
            query_face_id=exclude, query_embedding_sha256=[q.embedding_sha256 for q in qfaces],
            top_k=top_k, threshold=threshold,
            filters={"source": o.source, "job": o.job, "ingested_since": o.ingested_since,
                     "ingested_until": o.ingested_until},
            result_face_ids=result_ids)
        log.info("search %s by=%s actor=%s faces=%d results=%d audit=%d", search_id, by, actor, len(qfaces),
                 len(result_ids), entry["seq"])
        return SearchResult(search_id=search_id, by=by, query_face_id=exclude, model_id=model_id, top_k=top_k,
                            threshold=threshold, purpose=o.purpose, case=o.case, audit_seq=entry["seq"],
                            query_faces=qfaces)

    def _read_provenance(self, ukey: str) -> Provenance | None:
        return self.retry.call(lambda: self.provenance.get(ukey), "read provenance")

    def _images(self, keys: set[str]) -> dict[str, tuple[ImageInfo, Provenance | None]]:
        """The provenance of each hit's image, read in parallel."""
        keys_l = sorted(keys)
        provs = list(self._pool.map(self._read_provenance, keys_l))
        return {k: (image_info(k, p), p) for k, p in zip(keys_l, provs)}

    @staticmethod
    def _hit(m: Match, image: ImageInfo) -> SearchHit:
        return SearchHit(face_id=m.face_id, score=round(m.score, 6), bbox=m.bbox, det_score=m.det_score,
                         source_id=m.source_id, job_id=m.job_id,
                         ingested_at=datetime.fromtimestamp(m.ingested_at, UTC), image=image)


def image_info(ukey: str, prov: Provenance | None) -> ImageInfo:
    if prov is None:
        return ImageInfo(url_key=ukey, url=None, page_url=None, source_id=None, fetched_at=None)
    return ImageInfo(url_key=ukey, url=prov.url, page_url=prov.page_url, source_id=prov.source_id,
                     fetched_at=prov.fetched_at)
