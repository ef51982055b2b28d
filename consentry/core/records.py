"""Records: the versioned, validated schemas every stage speaks.

JSON on the wire (Kafka values, S3 objects). Every record carries ``schema_version``;
a reader rejects a version it does not know, and a record that fails validation raises
:class:`~consentry.core.errors.RecordError` naming the field.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from enum import Enum
from typing import Any, ClassVar, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import RecordError

SCHEMA_VERSION: Literal[1] = 1

#: identifiers we accept for sources, jobs and tokens: safe in object keys and Milvus filters
ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
_ID_RE = re.compile(ID_PATTERN)


def utcnow() -> datetime:
    return datetime.now(UTC)


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def url_key(url: str) -> str:
    """The Kafka key and provenance key of an image URL."""
    return sha256_hex(url)


def check_id(value: str, what: str = "id") -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise RecordError(
            f"{what} {value!r} is not a valid identifier (lowercase letters, digits, '.', '_', '-'; "
            "1-63 characters, starting with a letter or digit)",
            field=what,
        )
    return value


class Basis(str, Enum):
    """The lawful basis on which a source's faces may be processed."""

    CONSENT = "consent"
    LICENCE = "licence"
    OWN_ARCHIVE = "own-archive"
    NONE = "none"


class Decision(str, Enum):
    INDEX = "index"
    REFUSE = "refuse"


class ConsentState(str, Enum):
    """A face's consent state in Milvus. Only ``granted`` faces are ever returned by search."""

    GRANTED = "granted"
    WITHDRAWN = "withdrawn"
    HOLD = "hold"


class JobState(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPED = "stopped"
    FINISHED = "finished"
    FAILED = "failed"


_R = TypeVar("_R", bound="Record")


class Record(BaseModel):
    """Base of all records: frozen, strict about unknown fields, versioned."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    kind: ClassVar[str] = "record"
    schema_version: Literal[1] = SCHEMA_VERSION

    def to_json(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise _record_error(cls, exc) from None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise _record_error(cls, exc) from None

    @classmethod
    def build(cls, **fields: Any) -> Self:
        """Construct with validation errors translated into RecordError."""
        return cls.from_dict(fields)


def _record_error(cls: type[Record], exc: ValidationError) -> RecordError:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err.get("loc", ())) or None
    msg = err.get("msg", "invalid")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return RecordError(f"invalid {cls.kind}: field {field!r}: {msg}{more}", field=field)


class Signal(BaseModel):
    """One consent signal checked, and what it said."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str  # robots.txt | x-robots-tag | meta-robots | tdm-reservation | tdmrep.json | iptc-datamining | basis
    # | ai.txt | robots.txt-ai-crawlers | c2pa-manifest | c2pa-training-mining | do-not-train  (docs/consent.md)
    value: str  # what we saw ("noai", "1", "PROHIBITED", "allowed", "absent", ...)
    opt_out: bool  # does this signal forbid processing?
    scope: Literal["site", "page", "image", "source"] = "page"
    detail: str | None = None  # for people: who signed a C2PA manifest, which list an entry is on, ...
    policy: str | None = None  # a TDMRep tdm-policy URL that came with the reservation


class Source(Record):
    kind: ClassVar[str] = "source"

    id: str
    match: str  # a host[:port] or an URL prefix (https://host/path/)
    basis: Basis
    evidence: str | None = None  # a document id, not the document
    retention_days: int = Field(default=365, ge=1, le=36500)
    contact: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_id(v, "id")

    @field_validator("match")
    @classmethod
    def _match(cls, v: str) -> str:
        v = v.strip()
        if not v or any(c.isspace() for c in v):
            raise ValueError("match must be a host, host:port or URL prefix without spaces")
        if "://" in v and not v.startswith(("http://", "https://")):
            raise ValueError("match URL prefix must be http:// or https://")
        return v


class CrawlJob(Record):
    kind: ClassVar[str] = "crawl job"

    id: str
    source_id: str
    seeds: list[str] = Field(min_length=1)
    allowed: list[str] = Field(default_factory=list)  # hosts or URL prefixes the spider may follow
    max_pages: int = Field(default=1000, ge=1)
    depth: int = Field(default=3, ge=0)
    concurrency_per_domain: int = Field(default=2, ge=1, le=64)
    download_delay: float = Field(default=0.25, ge=0)
    schedule: str | None = None  # cron expression, for the Helm CronJob
    state: JobState = JobState.PENDING
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    stats: dict[str, int] = Field(default_factory=dict)
    refusals: dict[str, int] = Field(default_factory=dict)
    error: str | None = None

    @field_validator("id", "source_id")
    @classmethod
    def _ids(cls, v: str) -> str:
        return check_id(v, "id")

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[str]) -> list[str]:
        for s in v:
            if not s.startswith(("http://", "https://")):
                raise ValueError(f"seed {s!r} is not an http(s) URL")
        return v


class ImageCandidate(Record):
    """An image URL found by the crawler, with its page context. Kafka key = sha256(url)."""

    kind: ClassVar[str] = "image candidate"

    url: str
    page_url: str
    job_id: str
    source_id: str
    discovered_at: datetime = Field(default_factory=utcnow)
    alt: str | None = None
    page_title: str | None = None
    licence_url: str | None = None
    signals: list[Signal] = Field(default_factory=list)

    @field_validator("url", "page_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        if len(v) > 4096:
            raise ValueError("URL longer than 4096 characters")
        return v

    @field_validator("job_id", "source_id")
    @classmethod
    def _ids(cls, v: str) -> str:
        return check_id(v, "id")

    @property
    def key(self) -> str:
        return url_key(self.url)


class FaceRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    face_id: str
    bbox: tuple[float, float, float, float]
    score: float
    erased: bool = False


class Provenance(Record):
    """One per image URL, in the object store: what we fetched, checked and decided."""

    kind: ClassVar[str] = "provenance"

    url: str
    page_url: str
    job_id: str
    source_id: str
    basis: Basis
    fetched_at: datetime | None = None
    http_status: int | None = None
    content_type: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    phash: str | None = None
    width: int | None = None
    height: int | None = None
    signals: list[Signal] = Field(default_factory=list)
    decision: Decision
    reason: str
    model_id: str | None = None
    faces: list[FaceRef] = Field(default_factory=list)
    duplicate_of: str | None = None  # url of the first sighting of the same bytes
    expires_at: datetime | None = None
    erased_by: list[str] = Field(default_factory=list)  # erasure request ids / "retention" that redacted faces
    recorded_at: datetime = Field(default_factory=utcnow)

    @property
    def key(self) -> str:
        return url_key(self.url)

    @property
    def face_ids(self) -> list[str]:
        return [f.face_id for f in self.faces if not f.erased]


class Face(Record):
    """One per face, in Milvus."""

    kind: ClassVar[str] = "face"

    face_id: str
    embedding: list[float] = Field(min_length=1)
    image_sha256: str
    url_key: str
    bbox: tuple[float, float, float, float]
    det_score: float
    source_id: str
    job_id: str
    consent_state: ConsentState = ConsentState.GRANTED
    model_id: str
    ingested_at: int  # epoch seconds (Milvus INT64)
    expires_at: int  # epoch seconds

    @staticmethod
    def make_id(image_sha256: str, bbox: tuple[float, float, float, float] | list[float], model_id: str) -> str:
        """Deterministic face id: replaying a record upserts the same rows."""
        rounded = ",".join(str(int(round(v))) for v in bbox)
        return sha256_hex(f"{image_sha256}|{rounded}|{model_id}")


class DeadLetter(Record):
    """A record that failed permanently, on the ``dlq`` topic."""

    kind: ClassVar[str] = "dead letter"

    stage: str  # crawler | ingest.fetch | ingest.decode | ingest.faces | ingest.write | ...
    error_class: str
    reason: str
    message: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    payload: str  # the original record, as text (truncated to 64 KiB)
    failed_at: datetime = Field(default_factory=utcnow)


class ErasureEvent(Record):
    """Published on the ``erasures`` topic so running stages drop matching work."""

    kind: ClassVar[str] = "erasure event"

    request_id: str
    by: Literal["photo", "source", "job", "url"]
    source_id: str | None = None
    job_id: str | None = None
    url_key: str | None = None
    face_ids: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)


RECORD_TYPES: dict[str, type[Record]] = {
    "source": Source,
    "crawl-job": CrawlJob,
    "image-candidate": ImageCandidate,
    "provenance": Provenance,
    "face": Face,
    "dead-letter": DeadLetter,
    "erasure-event": ErasureEvent,
}
