"""The object store boundary: S3 (MinIO in production, SeaweedFS locally) and an in-memory fake.

The object store is the system of record: sources, jobs, provenance, receipts, audit log.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse

from ..core.errors import ObjectNotFound, ObjectStoreError

log = logging.getLogger("consentry.objectstore")


@dataclass(frozen=True)
class S3Config:
    endpoint: str
    access_key: str | None
    secret_key: str | None = field(repr=False)
    bucket: str
    region: str = "us-east-1"
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, s) -> S3Config:
        return cls(endpoint=s.s3_endpoint, access_key=s.s3_access_key,
                   secret_key=s.s3_secret_key.get_secret_value() if s.s3_secret_key else None,
                   bucket=s.s3_bucket, region=s.s3_region)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None
    metadata: dict[str, str]
    content_type: str | None = None


class ObjectStore(Protocol):
    bucket: str

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream",
            metadata: dict[str, str] | None = None, tags: dict[str, str] | None = None) -> None: ...
    def put_if_absent(self, key: str, data: bytes, content_type: str = "application/json") -> bool: ...
    def get(self, key: str) -> bytes: ...
    def stat(self, key: str) -> ObjectInfo: ...
    def tags(self, key: str) -> dict[str, str]: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def delete_many(self, keys: Iterable[str]) -> int: ...
    def list(self, prefix: str = "") -> Iterator[str]: ...
    def ensure_bucket(self) -> None: ...
    def ping(self) -> bool: ...
    def versioning(self) -> str: ...
    def purge_versions(self, keys: Iterable[str], keep_latest: bool = False) -> int: ...


def put_json(store: ObjectStore, key: str, obj: Any, **kw: Any) -> None:
    data = obj if isinstance(obj, bytes) else json.dumps(obj, sort_keys=True, default=str).encode()
    store.put(key, data, content_type="application/json", **kw)


def get_json(store: ObjectStore, key: str) -> Any:
    return json.loads(store.get(key))


# -------------------------------------------------------------------------------------------------- S3
def _refused(exc: Exception) -> bool:
    """Did the request fail because nothing answered at the endpoint (refused, unresolvable, timed out)?"""
    import urllib3.exceptions as u3

    cause = exc.reason if isinstance(exc, u3.MaxRetryError) else exc
    return isinstance(cause, (u3.NewConnectionError, u3.ConnectTimeoutError, ConnectionRefusedError))


class S3ObjectStore:
    """S3 through the minio client. Errors become ObjectStoreError (transient unless S3 said no)."""

    def __init__(self, cfg: S3Config) -> None:
        import urllib3
        from minio import Minio

        u = urlparse(cfg.endpoint)
        self.bucket = cfg.bucket
        self.endpoint = cfg.endpoint
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=cfg.timeout_s, read=cfg.timeout_s * 3),
                                   retries=urllib3.Retry(total=1, backoff_factor=0.2,
                                                         status_forcelist=[500, 502, 503, 504]),
                                   maxsize=16)
        self._c = Minio(u.netloc, access_key=cfg.access_key, secret_key=cfg.secret_key,
                        secure=u.scheme == "https", region=cfg.region, http_client=http)

    def _err(self, exc: Exception, what: str) -> ObjectStoreError:
        from minio.error import S3Error

        if isinstance(exc, S3Error):
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                return ObjectNotFound(f"{what}: no such object")
            transient = exc.code in ("SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout")
            return ObjectStoreError(f"{what}: S3 {exc.code}: {exc.message}", transient=transient)
        if _refused(exc):
            return ObjectStoreError.unreachable("S3", self.endpoint, "s3_endpoint")
        return ObjectStoreError(f"{what}: {type(exc).__name__}: {exc}", transient=True)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream",
            metadata: dict[str, str] | None = None, tags: dict[str, str] | None = None) -> None:
        from minio.commonconfig import Tags

        t = None
        if tags:
            t = Tags.new_object_tags()
            t.update(tags)
        try:
            self._c.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type=content_type,
                               metadata=dict(metadata) if metadata else None, tags=t)
        except Exception as exc:
            raise self._err(exc, f"put {key}") from None

    def put_if_absent(self, key: str, data: bytes, content_type: str = "application/json") -> bool:
        """Conditional create (If-None-Match: *): False if the key already exists."""
        from minio.error import S3Error

        try:
            self._c._execute("PUT", self.bucket, key, body=data,
                             headers={"If-None-Match": "*", "Content-Type": content_type})
            return True
        except S3Error as exc:
            if exc.code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise self._err(exc, f"put {key}") from None
        except Exception as exc:
            raise self._err(exc, f"put {key}") from None

    def get(self, key: str) -> bytes:
        resp = None
        try:
            resp = self._c.get_object(self.bucket, key)
            return resp.read()
        except Exception as exc:
            raise self._err(exc, f"get {key}") from None
        finally:
            if resp is not None:
                resp.close()
                resp.release_conn()

    def stat(self, key: str) -> ObjectInfo:
        try:
            st = self._c.stat_object(self.bucket, key)
        except Exception as exc:
            raise self._err(exc, f"stat {key}") from None
        meta = {k.lower().removeprefix("x-amz-meta-"): v for k, v in (st.metadata or {}).items()
                if k.lower().startswith("x-amz-meta-")}
        return ObjectInfo(key=key, size=st.size or 0, etag=st.etag, metadata=meta, content_type=st.content_type)

    def tags(self, key: str) -> dict[str, str]:
        try:
            t = self._c.get_object_tags(self.bucket, key)
        except Exception as exc:
            raise self._err(exc, f"tags {key}") from None
        return dict(t or {})

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
            return True
        except ObjectNotFound:
            return False

    def delete(self, key: str) -> None:
        try:
            self._c.remove_object(self.bucket, key)
        except Exception as exc:
            raise self._err(exc, f"delete {key}") from None

    def delete_many(self, keys: Iterable[str]) -> int:
        from minio.deleteobjects import DeleteObject

        keys = list(keys)
        if not keys:
            return 0
        try:
            errors = list(self._c.remove_objects(self.bucket, [DeleteObject(k) for k in keys]))
        except Exception as exc:
            raise self._err(exc, "delete objects") from None
        if errors:
            raise ObjectStoreError(f"{len(errors)} deletes failed: {errors[0]}")
        return len(keys)

    def list(self, prefix: str = "") -> Iterator[str]:
        try:
            for obj in self._c.list_objects(self.bucket, prefix=prefix, recursive=True):
                if not obj.is_dir:
                    yield obj.object_name
        except Exception as exc:
            raise self._err(exc, f"list {prefix}") from None

    def ensure_bucket(self) -> None:
        try:
            if not self._c.bucket_exists(self.bucket):
                self._c.make_bucket(self.bucket)
        except Exception as exc:
            raise self._err(exc, f"bucket {self.bucket}") from None

    def ping(self) -> bool:
        try:
            self._c.bucket_exists(self.bucket)
            return True
        except Exception:
            return False

    def versioning(self) -> str:
        """The bucket's versioning: ``off`` (never enabled: a delete removes the object), ``enabled`` or
        ``suspended`` (older versions are kept until deleted by version id)."""
        try:
            status = self._c.get_bucket_versioning(self.bucket).status
        except Exception as exc:
            raise self._err(exc, f"versioning of {self.bucket}") from None
        return {"Enabled": "enabled", "Suspended": "suspended"}.get(status or "", "off")

    def purge_versions(self, keys: Iterable[str], keep_latest: bool = False) -> int:
        """Delete every stored version and delete marker of ``keys`` (all but the current version with
        ``keep_latest``); returns how many were deleted. Versions under Object Lock are refused by S3."""
        from minio.deleteobjects import DeleteObject

        doomed = []
        try:
            for key in keys:
                versions = [o for o in self._c.list_objects(self.bucket, prefix=key, include_version=True)
                            if o.object_name == key]
                doomed += [DeleteObject(key, o.version_id) for o in versions
                           if o.version_id and not (keep_latest and str(o.is_latest).lower() == "true")]
            errors = list(self._c.remove_objects(self.bucket, doomed)) if doomed else []
        except Exception as exc:
            raise self._err(exc, "purge object versions") from None
        if errors:
            raise ObjectStoreError(f"{len(errors)} version deletes failed: {errors[0]}", transient=False)
        return len(doomed)
