"""Consentry's exception hierarchy.

Library errors (kafka-python, minio, pymilvus, onnxruntime, Pillow) are translated
into these at the edge, in the adapter that called the library.

    ConsentryError
    ├── ConfigError              bad or missing settings (raised by core.settings, cli)
    ├── RecordError              a record failed validation (core.records); names the field
    ├── StackError               local servers: port taken, binary missing, not healthy (infra)
    ├── DependencyError          an outside system failed (clients.*)
    │   ├── BrokerError          Kafka
    │   ├── ObjectStoreError     S3
    │   │   └── ObjectNotFound   a key that does not exist
    │   └── VectorStoreError     Milvus
    │       └── SchemaMismatch   an existing collection has another schema
    ├── FetchRefused             a URL we must not fetch (scheme, private address) (ingest.fetch)
    ├── FetchError               HTTP fetch failed: timeout, status, size, redirects (ingest.fetch)
    ├── ImageRejected            bytes are not a safe, decodable image (ingest.decode)
    ├── ModelError               face model missing or failed (faces)
    ├── NoFaceFound              a query photo has no face (indexer.search)
    ├── AccessDenied             missing token or wrong role (indexer.auth)
    ├── NotFound                 a source, job, face or record that does not exist
    └── AuditTampered            the audit chain does not verify (indexer.audit)
"""

from __future__ import annotations

from typing import Self


class ConsentryError(Exception):
    """Base of every error Consentry raises on purpose."""

    #: short machine-readable reason, used in DLQ records, metrics and provenance
    reason: str = "error"

    def __init__(self, message: str = "", *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class ConfigError(ConsentryError):
    reason = "config"


class RecordError(ConsentryError):
    """A record failed validation. ``field`` names the offending field."""

    reason = "invalid-record"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class StackError(ConsentryError):
    reason = "stack"


class DependencyError(ConsentryError):
    """An outside system failed. ``transient`` says whether a retry may help; ``setting`` names the
    setting holding its address when it did not answer at all (the CLI turns that into a hint)."""

    reason = "dependency"

    def __init__(self, message: str = "", *, reason: str | None = None, transient: bool = True,
                 setting: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.transient = transient
        self.setting = setting

    @classmethod
    def unreachable(cls, service: str, address: str, setting: str) -> Self:
        """``service`` at ``address`` does not accept connections (``setting`` holds that address)."""
        return cls(f"{service} at {address} is not answering", reason="unreachable", setting=setting)


class BrokerError(DependencyError):
    reason = "broker"


class ObjectStoreError(DependencyError):
    reason = "object-store"


class ObjectNotFound(ObjectStoreError):
    reason = "not-found"

    def __init__(self, message: str = "") -> None:
        super().__init__(message, transient=False)


class VectorStoreError(DependencyError):
    reason = "vector-store"


class SchemaMismatch(VectorStoreError):
    reason = "schema-mismatch"

    def __init__(self, message: str = "") -> None:
        super().__init__(message, transient=False)


class FetchRefused(ConsentryError):
    """We must not fetch this URL (bad scheme, private address, ...)."""

    reason = "fetch-refused"


class FetchError(ConsentryError):
    reason = "fetch-failed"

    def __init__(self, message: str = "", *, reason: str | None = None, transient: bool = False,
                 status: int | None = None) -> None:
        super().__init__(message, reason=reason)
        self.transient = transient
        self.status = status


class ImageRejected(ConsentryError):
    reason = "bad-image"


class ModelError(ConsentryError):
    reason = "model"


class NoFaceFound(ConsentryError):
    reason = "no-face"


class AccessDenied(ConsentryError):
    reason = "access-denied"

    def __init__(self, message: str = "", *, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


class NotFound(ConsentryError):
    reason = "not-found"


class AuditTampered(ConsentryError):
    reason = "audit-tampered"

    def __init__(self, message: str, *, entry: int | None = None) -> None:
        super().__init__(message)
        self.entry = entry
