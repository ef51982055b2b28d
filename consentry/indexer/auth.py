"""API tokens and roles.

A token is ``cst_<token_id>_<secret>``: the id names the record, the secret is 32 random bytes
(``secrets.token_urlsafe``). Only the token's sha256 is kept, in ``tokens/{token_id}.json`` in the
object store; the token itself is shown once, when it is created. Revoked tokens keep their record
(with ``revoked_at``) so audit entries that name them stay explainable.

Roles (DESIGN.md, Access): ``searcher`` searches (with a purpose and a case reference),
``operator`` runs sources and jobs, ``auditor`` reads the audit log, ``privacy`` erases.

Missing or bad token → :class:`AccessDenied` with status 401; a valid token of another role → 403.
A process caches token records for ``cache_ttl_s`` (default 5 s): a revocation made elsewhere (the
CLI, another API replica) takes effect within that time; in the process that revokes, at once.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import ClassVar

from pydantic import field_validator

from ..clients.objectstore import ObjectStore
from ..core.errors import AccessDenied, ConsentryError, NotFound, ObjectNotFound
from ..core.records import Record, check_id, sha256_hex, utcnow

PREFIX = "tokens/"
TOKEN_PREFIX = "cst"


class Role(str, Enum):
    SEARCHER = "searcher"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    PRIVACY = "privacy"


class TokenRecord(Record):
    """What is stored for a token: never the token, only its sha256."""

    kind: ClassVar[str] = "api token"

    id: str
    name: str
    role: Role
    hash: str
    created_at: datetime
    revoked_at: datetime | None = None

    @field_validator("id", "name")
    @classmethod
    def _ids(cls, v: str) -> str:
        return check_id(v, "token name")

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, object]:
        """The record without its hash, for listings."""
        d = self.to_dict()
        d.pop("hash", None)
        d.pop("schema_version", None)
        return d


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's id, name and role."""

    token_id: str
    name: str
    role: Role

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"token:{self.name}/{self.token_id}"


def _parse(token: str) -> tuple[str, str] | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[2]:
        return None
    tid = parts[1]
    if len(tid) != 16 or any(c not in "0123456789abcdef" for c in tid):
        return None
    return tid, parts[2]


class TokenStore:
    """Create, list, revoke and check API tokens kept (hashed) in the object store."""

    def __init__(self, store: ObjectStore, cache_ttl_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.cache_ttl_s = cache_ttl_s
        self.clock = clock
        self._cache: dict[str, tuple[float, TokenRecord | None]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(token_id: str) -> str:
        return f"{PREFIX}{token_id}.json"

    # ------------------------------------------------------------------ management
    def create(self, name: str, role: Role | str) -> tuple[TokenRecord, str]:
        """A new token for ``name`` with ``role``; returns the record and the token (shown once)."""
        role = Role(role)
        tid = secrets.token_hex(8)
        token = f"{TOKEN_PREFIX}_{tid}_{secrets.token_urlsafe(32)}"
        rec = TokenRecord.build(id=tid, name=name, role=role, hash=sha256_hex(token), created_at=utcnow())
        if not self.store.put_if_absent(self.key(tid), rec.to_json()):  # 64 random bits: never in practice
            raise ConsentryError("token id collision; try again")
        return rec, token

    def list(self) -> list[TokenRecord]:
        recs = []
        for k in self.store.list(PREFIX):
            if k.endswith(".json"):
                try:
                    recs.append(TokenRecord.from_json(self.store.get(k)))
                except ObjectNotFound:
                    continue
        return sorted(recs, key=lambda r: r.created_at)

    def get(self, id_or_name: str) -> TokenRecord:
        """A token record by id, or by name when exactly one active token has it."""
        if len(id_or_name) == 16 and all(c in "0123456789abcdef" for c in id_or_name):
            try:
                return TokenRecord.from_json(self.store.get(self.key(id_or_name)))
            except ObjectNotFound:
                pass
        named = [r for r in self.list() if r.name == id_or_name and r.active]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise NotFound(f"{len(named)} active tokens are named {id_or_name!r}; revoke by id "
                           f"({', '.join(r.id for r in named)})")
        raise NotFound(f"no token {id_or_name!r} (see `consentry token list`)")

    def revoke(self, id_or_name: str) -> TokenRecord:
        rec = self.get(id_or_name)
        if rec.active:
            rec = rec.model_copy(update={"revoked_at": utcnow()})
            self.store.put(self.key(rec.id), rec.to_json(), content_type="application/json")
        with self._lock:
            self._cache.pop(rec.id, None)
        return rec

    # ------------------------------------------------------------------ checking
    def _record(self, tid: str) -> TokenRecord | None:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(tid)
            if hit and hit[0] > now:
                return hit[1]
        try:
            rec: TokenRecord | None = TokenRecord.from_json(self.store.get(self.key(tid)))
        except ObjectNotFound:
            rec = None
        if self.cache_ttl_s > 0:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[tid] = (now + self.cache_ttl_s, rec)
        return rec

    def authenticate(self, token: str | None) -> Principal:
        """The caller behind ``token``; AccessDenied(401) when it is missing, unknown or revoked."""
        if not token:
            raise AccessDenied("missing bearer token (Authorization: Bearer <token>)", status=401)
        parsed = _parse(token.strip())
        if parsed is None:
            raise AccessDenied("malformed token", status=401)
        rec = self._record(parsed[0])
        if rec is None or not hmac.compare_digest(rec.hash, sha256_hex(token.strip())):
            raise AccessDenied("unknown token", status=401)
        if not rec.active:
            raise AccessDenied("token revoked", status=401)
        return Principal(token_id=rec.id, name=rec.name, role=rec.role)

    @staticmethod
    def authorize(principal: Principal, roles: Iterable[Role]) -> Principal:
        """AccessDenied(403) unless the principal holds one of ``roles``."""
        allowed = tuple(roles)
        if principal.role not in allowed:
            raise AccessDenied(f"role {principal.role.value!r} may not do this (needs "
                               f"{' or '.join(r.value for r in allowed)})", status=403)
        return principal
