"""Signed audit checkpoints, kept outside the audit log's bucket.

A checkpoint is ``{seq, hash, at, key_id, signature}``: the audit chain's entry ``seq`` had
``hash`` at time ``at``, signed with Ed25519. The chain fixes every entry up to ``seq`` (each entry
carries the hash of the one before), so one checkpoint protects the whole prefix: deleting the
newest entries (and ``audit/head.json``) leaves a log shorter than a signed checkpoint, and
rewriting entries changes the hash at ``seq``. ``consentry audit verify`` checks both.

Where checkpoints go (``audit_checkpoint_target``): ``file:///path`` (a directory; in Kubernetes a
volume the API replicas share) or ``s3://bucket/prefix`` (another bucket, ideally with Object Lock
and credentials the API cannot delete with). Each checkpoint is its own object, named after its
sequence number (writers never overwrite one another); a writer deletes its own previous routine
checkpoint once the next is written, and keeps those of erasures, consent changes and every
``ARCHIVE_EVERY``-th entry. Verification uses all of them (the newest bounds truncation).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from ..clients.objectstore import ObjectStore
from ..core.errors import ConfigError, ObjectNotFound

PREFIX = "checkpoints/"
ARCHIVE_EVERY = 1000


class Sink(Protocol):
    """Where checkpoints are written: ``put``, ``get`` (None if absent), ``keys``; and its address."""

    where: str

    def put(self, name: str, data: bytes) -> None: ...
    def get(self, name: str) -> bytes | None: ...
    def delete(self, name: str) -> None: ...
    def keys(self) -> Iterator[str]: ...


class DirectorySink:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.where = f"file://{self.path}"

    def put(self, name: str, data: bytes) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{name}.{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.path / name)  # atomic: a reader never sees half a checkpoint

    def delete(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)

    def get(self, name: str) -> bytes | None:
        try:
            return (self.path / name).read_bytes()
        except FileNotFoundError:
            return None

    def keys(self) -> Iterator[str]:
        if self.path.is_dir():
            yield from sorted(p.name for p in self.path.iterdir() if p.suffix == ".json" and not p.name[0] == ".")


class ObjectStoreSink:
    def __init__(self, store: ObjectStore, prefix: str = PREFIX) -> None:
        self.store = store
        self.prefix = prefix.rstrip("/") + "/"
        self.where = f"s3://{store.bucket}/{self.prefix}"

    def put(self, name: str, data: bytes) -> None:
        self.store.put(self.prefix + name, data, content_type="application/json")

    def get(self, name: str) -> bytes | None:
        try:
            return self.store.get(self.prefix + name)
        except ObjectNotFound:
            return None

    def delete(self, name: str) -> None:
        self.store.delete(self.prefix + name)

    def keys(self) -> Iterator[str]:
        for k in self.store.list(self.prefix):
            yield k[len(self.prefix):]


class Signer:
    """Ed25519 signing (the private key is a secret setting) or verification only (the public key)."""

    def __init__(self, private: bytes | None = None, public: bytes | None = None) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

        self._private = Ed25519PrivateKey.from_private_bytes(private) if private else None
        if self._private is not None:
            from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

            public = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        if public is None:
            raise ConfigError("an audit checkpoint key is needed (audit_signing_key or audit_verify_key)")
        self.public = public
        self._verifier = Ed25519PublicKey.from_public_bytes(public)
        self.key_id = hashlib.sha256(public).hexdigest()[:16]

    @staticmethod
    def generate() -> bytes:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

        return Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def can_sign(self) -> bool:
        return self._private is not None

    def sign(self, message: bytes) -> str:
        if self._private is None:
            raise ConfigError("audit checkpoints cannot be written without audit_signing_key")
        return base64.b64encode(self._private.sign(message)).decode()

    def valid(self, message: bytes, signature: str) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            self._verifier.verify(base64.b64decode(signature), message)
            return True
        except (InvalidSignature, ValueError):
            return False


def load_or_create_key(path: Path) -> bytes:
    """The signing key in ``path`` (base64), created (mode 0600) if missing: for a local install."""
    try:
        return decode_key(path.read_text(), str(path))
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64encode(Signer.generate()) + b"\n")
    try:
        os.link(tmp, path)  # atomic, and never replaces a key another process made first
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return decode_key(path.read_text(), str(path))


def decode_key(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{what} must be 32 bytes, base64-encoded (e.g. `consentry audit keygen`)")
    return raw


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str
    key_id: str
    signature: str = ""

    def message(self) -> bytes:
        return json.dumps({"seq": self.seq, "hash": self.hash, "at": self.at, "key_id": self.key_id},
                          sort_keys=True, separators=(",", ":")).encode()

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Checkpoint:
        d = json.loads(data)
        return cls(seq=int(d["seq"]), hash=str(d["hash"]), at=str(d["at"]), key_id=str(d["key_id"]),
                   signature=str(d.get("signature", "")))


class Checkpoints:
    """Write and read signed checkpoints in a sink."""

    def __init__(self, sink: Sink, signer: Signer) -> None:
        self.sink = sink
        self.signer = signer
        self._routine: str | None = None  # this writer's newest routine checkpoint (replaced by the next)
        self._kept: set[str] = set()  # checkpoints this writer keeps (erasures, every ARCHIVE_EVERY-th)
        self._lock = threading.Lock()

    def write(self, seq: int, entry_hash: str, at: str, archive: bool = False) -> Checkpoint:
        cp = Checkpoint(seq=seq, hash=entry_hash, at=at, key_id=self.signer.key_id)
        cp = Checkpoint(**{**asdict(cp), "signature": self.signer.sign(cp.message())})
        name = f"{seq:012d}.json"
        self.sink.put(name, cp.to_json())
        with self._lock:
            if archive or seq % ARCHIVE_EVERY == 0:
                self._kept.add(name)
                return cp
            previous, self._routine = self._routine, name
        if previous is not None and previous < name and previous not in self._kept:
            self.sink.delete(previous)
        return cp

    def all(self) -> list[tuple[str, Checkpoint | None]]:
        """Every checkpoint in the sink by name (None: unreadable)."""
        out = []
        for name in self.sink.keys():
            data = self.sink.get(name)
            try:
                out.append((name, Checkpoint.from_json(data) if data is not None else None))
            except (ValueError, KeyError, TypeError):
                out.append((name, None))
        return out

    def authentic(self, cp: Checkpoint) -> bool:
        return cp.key_id == self.signer.key_id and self.signer.valid(cp.message(), cp.signature)


def sink_for(target: str, store_for_bucket) -> Sink:
    """A sink from ``file:///path`` or ``s3://bucket/prefix``."""
    u = urlparse(target)
    if u.scheme == "file":
        return DirectorySink(Path(u.path))
    if u.scheme == "s3" and u.netloc:
        return ObjectStoreSink(store_for_bucket(u.netloc), u.path.lstrip("/") or PREFIX)
    raise ConfigError(f"audit_checkpoint_target must be file:///path or s3://bucket/prefix, not {target!r}")
