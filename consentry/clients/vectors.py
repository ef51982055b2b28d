"""The vector store boundary: Milvus (server or milvus-lite) via pymilvus, and an in-memory fake.

Filters are structured (:class:`Cond`), never strings: the Milvus adapter renders them into an
expression with every literal quoted here, in one place, so user text is never pasted into a
Milvus expression.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..core.errors import SchemaMismatch, VectorStoreError

log = logging.getLogger("consentry.vectors")

FieldType = Literal["varchar", "int64", "float", "vector"]
Op = Literal["==", "!=", ">", ">=", "<", "<=", "in"]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: FieldType
    max_length: int = 64  # varchar
    dim: int = 0  # vector
    primary: bool = False


@dataclass(frozen=True)
class IndexSpec:
    index_type: str = "HNSW"  # HNSW | IVF_FLAT | FLAT | AUTOINDEX
    metric: str = "COSINE"
    build_params: dict[str, Any] = field(default_factory=dict)
    search_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CollectionSpec:
    name: str
    fields: tuple[FieldSpec, ...]
    index: IndexSpec = IndexSpec()

    @property
    def primary(self) -> FieldSpec:
        return next(f for f in self.fields if f.primary)

    @property
    def vector(self) -> FieldSpec:
        return next(f for f in self.fields if f.type == "vector")

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise VectorStoreError(f"collection {self.name} has no field {name!r}", transient=False)


@dataclass(frozen=True)
class Cond:
    field: str
    op: Op
    value: Any


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    entity: dict[str, Any]


def literal(value: Any) -> str:
    """A Milvus expression literal for a Python value (strings escaped, no raw text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise VectorStoreError("non-finite number in filter", transient=False)
        return repr(float(value))
    if isinstance(value, str):
        if any(ord(c) < 32 for c in value):
            raise VectorStoreError("control character in filter value", transient=False)
        return json.dumps(value, ensure_ascii=False)  # double-quoted, \" and \\ escaped
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise VectorStoreError(f"unsupported filter value type {type(value).__name__}", transient=False)


def render(spec: CollectionSpec, conds: Sequence[Cond]) -> str:
    """Render structured conditions into a Milvus boolean expression."""
    parts = []
    for c in conds:
        spec.field(c.field)  # unknown fields are an error, not text
        if not _NAME.match(c.field):
            raise VectorStoreError(f"bad field name {c.field!r}", transient=False)
        if c.op not in ("==", "!=", ">", ">=", "<", "<=", "in"):
            raise VectorStoreError(f"bad operator {c.op!r}", transient=False)
        if c.op == "in" and not isinstance(c.value, (list, tuple, set, frozenset)):
            raise VectorStoreError("'in' needs a list", transient=False)
        parts.append(f"{c.field} {c.op} {literal(c.value)}")
    return " and ".join(parts)


class VectorStore(Protocol):
    def ensure_collection(self, spec: CollectionSpec) -> None: ...
    def upsert(self, spec: CollectionSpec, rows: list[dict[str, Any]]) -> int: ...
    def delete(self, spec: CollectionSpec, ids: Sequence[str]) -> int: ...
    def delete_where(self, spec: CollectionSpec, where: Sequence[Cond]) -> int: ...
    def search(self, spec: CollectionSpec, vectors: Sequence[Sequence[float]], top_k: int,
               where: Sequence[Cond] = (), output_fields: Sequence[str] = (),
               strong: bool = False) -> list[list[Hit]]: ...
    def query(self, spec: CollectionSpec, where: Sequence[Cond], output_fields: Sequence[str] = (),
              limit: int = 16384, strong: bool = False) -> list[dict[str, Any]]: ...
    def count(self, spec: CollectionSpec, where: Sequence[Cond] = (), strong: bool = True) -> int: ...
    def iterate(self, spec: CollectionSpec, output_fields: Sequence[str], batch: int = 1000,
                where: Sequence[Cond] = (), alphabet: str | None = None) -> Iterator[list[dict[str, Any]]]: ...
    def iterate_vectors(self, spec: CollectionSpec, where: Sequence[Cond] = (),
                        alphabet: str | None = None) -> Iterator[tuple[list[str], Any]]: ...
    def compact(self, spec: CollectionSpec) -> int | None: ...
    def compaction_done(self, job_id: int) -> bool: ...
    def stored_rows(self, spec: CollectionSpec) -> int | None: ...
    def server_kind(self) -> str: ...
    def drop(self, spec: CollectionSpec) -> None: ...
    def ping(self) -> bool: ...


# ------------------------------------------------------------------------------------------------ Milvus
_UNREACHABLE = ("fail connecting", "unavailable", "deadline", "connection", "connect", "released", "load()",
                "not ready", "timeout", "timed out")
_PERMANENT = ("schema", "not exist", "invalid", "illegal", "parse", "already exist")


def is_transient(message: str) -> bool:
    """May retrying help? A server that is down or restarting: yes; a bad request or schema: no."""
    m = message.lower()
    return any(s in m for s in _UNREACHABLE) or not any(s in m for s in _PERMANENT)


_MILVUS_TYPES = {"varchar": "VARCHAR", "int64": "INT64", "float": "FLOAT", "vector": "FLOAT_VECTOR"}


class MilvusVectorStore:
    """pymilvus MilvusClient; works against Milvus 2.3+ server and the milvus-lite gRPC server."""

    def __init__(self, uri: str, token: str | None = None, timeout_s: float = 30.0) -> None:
        self.uri = uri
        self._token = token
        self._timeout = timeout_s
        self._client: Any = None
        self._lock = threading.Lock()
        self._ready: set[str] = set()
        self._ensure_lock = threading.Lock()
        self._kind: str | None = None

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from pymilvus import MilvusClient

                try:
                    self._client = MilvusClient(uri=self.uri, token=self._token or "", timeout=self._timeout)
                except Exception as exc:
                    if "Fail connecting to server" in str(exc):
                        raise VectorStoreError.unreachable("Milvus", self.uri, "milvus_uri") from None
                    raise VectorStoreError(f"cannot connect to Milvus at {self.uri}: {exc}") from None
            return self._client

    #: quick in-place retries of a call that failed transiently (a GOAWAY, a restart blip); the callers'
    #: RetryPolicy handles longer outages
    CALL_ATTEMPTS = 3

    def _call(self, what: str, method: str, *a: Any, **kw: Any) -> Any:
        """Call ``client.<method>``; reconnect and retry a transient failure briefly; translate errors."""
        for attempt in range(1, self.CALL_ATTEMPTS + 1):
            try:
                return getattr(self.client, method)(*a, **kw)
            except VectorStoreError as exc:  # the client could not be created
                if not exc.transient or attempt == self.CALL_ATTEMPTS:
                    raise
            except Exception as exc:
                msg = str(exc)
                transient = is_transient(msg)
                if transient:
                    self.reset()
                    if ("released" in msg or "load()" in msg) and a and attempt < self.CALL_ATTEMPTS:
                        try:  # Milvus restarted: collections come back released
                            self.client.load_collection(a[0])
                        except Exception:
                            pass
                if not transient or attempt == self.CALL_ATTEMPTS:
                    raise VectorStoreError(f"Milvus {what}: {type(exc).__name__}: {msg[:300]}",
                                           transient=transient) from None
            time.sleep(0.2 * 2 ** attempt)
        raise AssertionError("unreachable")

    def reset(self) -> None:
        """Forget the client (after a failure) so the next call reconnects.

        The old client is not closed here: other threads may have calls in flight on it, and one
        failed call must not turn into failures for all of them. It is closed when collected.
        """
        with self._lock:
            self._client = None
            self._ready.clear()

    def ensure_collection(self, spec: CollectionSpec) -> None:
        if spec.name in self._ready:
            return
        with self._ensure_lock:  # threads of one process (API workers) must not race to create a collection
            if spec.name not in self._ready:
                self._ensure_collection(spec)

    def _ensure_collection(self, spec: CollectionSpec) -> None:
        from pymilvus import DataType, MilvusClient

        if self._call("has_collection", "has_collection", spec.name):
            self._check_schema(spec)
        else:
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            for f in spec.fields:
                kw: dict[str, Any] = {}
                if f.type == "varchar":
                    kw["max_length"] = f.max_length
                if f.type == "vector":
                    kw["dim"] = f.dim
                schema.add_field(f.name, getattr(DataType, _MILVUS_TYPES[f.type]), is_primary=f.primary, **kw)
            ip = MilvusClient.prepare_index_params()
            ip.add_index(spec.vector.name, index_type=spec.index.index_type, metric_type=spec.index.metric,
                         params=dict(spec.index.build_params))
            try:
                self._call("create_collection", "create_collection", spec.name, schema=schema, index_params=ip,
                           consistency_level="Bounded")
            except VectorStoreError:
                if not self._call("has_collection", "has_collection", spec.name):  # lost a creation race?
                    raise
                self._check_schema(spec)
        self._call("load_collection", "load_collection", spec.name)
        self._ready.add(spec.name)

    def _check_schema(self, spec: CollectionSpec) -> None:
        from pymilvus import DataType

        desc = self._call("describe_collection", "describe_collection", spec.name)
        have = {f["name"]: f for f in desc["fields"]}
        for f in spec.fields:
            got = have.get(f.name)
            want_type = getattr(DataType, _MILVUS_TYPES[f.type])
            if got is None:
                raise SchemaMismatch(f"collection {spec.name!r} exists without field {f.name!r}; "
                                     "migrate or use another collection name")
            if got["type"] != want_type:
                raise SchemaMismatch(f"collection {spec.name!r} field {f.name!r} is {got['type'].name}, "
                                     f"expected {want_type.name}")
            if f.type == "vector" and int(got.get("params", {}).get("dim", 0)) != f.dim:
                raise SchemaMismatch(f"collection {spec.name!r} vector dim is {got['params'].get('dim')}, "
                                     f"expected {f.dim} (another model?)")
        extra = set(have) - {f.name for f in spec.fields}
        if extra:
            raise SchemaMismatch(f"collection {spec.name!r} has unexpected fields {sorted(extra)}")

    def upsert(self, spec: CollectionSpec, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        self.ensure_collection(spec)
        res = self._call("upsert", "upsert", spec.name, rows)
        return int(res.get("upsert_count", len(rows))) if isinstance(res, dict) else len(rows)

    def delete(self, spec: CollectionSpec, ids: Sequence[str]) -> int:
        ids = list(ids)
        if not ids:
            return 0
        self.ensure_collection(spec)
        n = 0
        for i in range(0, len(ids), 1000):
            chunk = ids[i:i + 1000]
            self._call("delete", "delete", spec.name, filter=render(spec, [Cond(spec.primary.name, "in", chunk)]))
            n += len(chunk)
        return n

    def delete_where(self, spec: CollectionSpec, where: Sequence[Cond]) -> int:
        """Delete every row matching ``where`` (which must not be empty); returns how many matched."""
        if not where:
            raise VectorStoreError("refusing to delete without a filter", transient=False)
        n = self.count(spec, where)
        if n:
            self._call("delete", "delete", spec.name, filter=render(spec, where))
        return n

    def search(self, spec: CollectionSpec, vectors: Sequence[Sequence[float]], top_k: int,
               where: Sequence[Cond] = (), output_fields: Sequence[str] = (),
               strong: bool = False) -> list[list[Hit]]:
        self.ensure_collection(spec)
        vecs = [list(map(float, v)) for v in vectors]
        if not vecs:
            return []
        params = dict(spec.index.search_params)
        if "ef" in params:  # HNSW needs ef >= the number of results asked for
            params["ef"] = max(int(params["ef"]), top_k)
        kw: dict[str, Any] = {"limit": top_k, "output_fields": list(output_fields),
                              "search_params": {"metric_type": spec.index.metric, "params": params}}
        expr = render(spec, where)
        if expr:
            kw["filter"] = expr
        if strong:
            kw["consistency_level"] = "Strong"
        res = self._call("search", "search", spec.name, vecs, **kw)
        pk = spec.primary.name
        return [[Hit(id=str(h.get("id", h.get(pk))), score=float(h["distance"]),
                     entity={k: v for k, v in (h.get("entity") or {}).items()}) for h in hits] for hits in res]

    def query(self, spec: CollectionSpec, where: Sequence[Cond], output_fields: Sequence[str] = (),
              limit: int = 16384, strong: bool = False) -> list[dict[str, Any]]:
        self.ensure_collection(spec)
        expr = render(spec, where) or f'{spec.primary.name} != ""'
        kw: dict[str, Any] = {"filter": expr, "output_fields": list(output_fields) or [spec.primary.name],
                              "limit": limit}
        if strong:
            kw["consistency_level"] = "Strong"
        return list(self._call("query", "query", spec.name, **kw))

    def count(self, spec: CollectionSpec, where: Sequence[Cond] = (), strong: bool = True) -> int:
        self.ensure_collection(spec)
        expr = render(spec, where) or f'{spec.primary.name} != ""'
        kw: dict[str, Any] = {"filter": expr, "output_fields": ["count(*)"]}
        if strong:
            kw["consistency_level"] = "Strong"
        res = self._call("count", "query", spec.name, **kw)
        return int(res[0]["count(*)"]) if res else 0

    #: a single Milvus query returns at most this many rows (offset + limit)
    QUERY_WINDOW = 16384
    #: characters a primary key may use for iterate() (no "_" or "%": they are LIKE wildcards)
    _PK_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-."
    #: queries of one iteration in flight at once (each Strong query mostly waits for a time tick)
    ITERATE_THREADS = 8

    def iterate(self, spec: CollectionSpec, output_fields: Sequence[str], batch: int = 1000,
                where: Sequence[Cond] = (), alphabet: str | None = None) -> Iterator[list[dict[str, Any]]]:
        """Every matching row, in batches, past the 16384-row query window.

        Milvus 2.3's query_iterator is unreliable, so the primary-key space is split by prefix
        (``pk like "ab%"``) until each part fits in one query; keys must use ``alphabet`` (default
        ``_PK_ALPHABET``; our ids are hex). Parts are counted and read in parallel, with Strong
        consistency. Rows written meanwhile may be missed.
        """
        fields = list(dict.fromkeys([spec.primary.name, *output_fields]))
        for rows in self._windows(spec, fields, list(where), alphabet or self._PK_ALPHABET):
            for i in range(0, len(rows), batch):
                yield rows[i:i + batch]

    def iterate_vectors(self, spec: CollectionSpec, where: Sequence[Cond] = (),
                        alphabet: str | None = None) -> Iterator[tuple[list[str], Any]]:
        """Every matching row's primary key and vector, as (keys, float32 matrix) per query window."""
        import numpy as np

        pk, vec = spec.primary.name, spec.vector.name
        for rows in self._windows(spec, [pk, vec], list(where), alphabet or self._PK_ALPHABET, strict_float32=True):
            if rows:
                yield [r[pk] for r in rows], np.stack([np.asarray(r[vec], dtype=np.float32) for r in rows])

    def _prefix_expr(self, spec: CollectionSpec, where: list[Cond], prefix: str, exact: bool = False) -> str:
        pk, base = spec.primary.name, render(spec, where)
        if exact:
            like = f"{pk} == {literal(prefix)}"
        else:
            like = f"{pk} like {literal(prefix + '%')}" if prefix else f'{pk} != ""'
        return f"({base}) and {like}" if base else like

    def _windows(self, spec: CollectionSpec, fields: list[str], where: list[Cond], alphabet: str,
                 **query_kw: Any) -> Iterator[list[dict[str, Any]]]:
        """Query windows covering every matching row: prefixes are refined (counted in parallel) until
        each holds at most QUERY_WINDOW rows, then read in parallel."""
        from concurrent.futures import ThreadPoolExecutor

        self.ensure_collection(spec)

        def count(prefix: str) -> tuple[str, int]:
            return prefix, self._count_expr(spec, self._prefix_expr(spec, where, prefix))

        def read(part: tuple[str, bool]) -> list[dict[str, Any]]:
            prefix, exact = part
            return list(self._call("query", "query", spec.name, filter=self._prefix_expr(spec, where, prefix, exact),
                                   output_fields=fields, limit=1 if exact else self.QUERY_WINDOW,
                                   consistency_level="Strong", **query_kw))

        with ThreadPoolExecutor(self.ITERATE_THREADS, thread_name_prefix="milvus-iterate") as pool:
            parts: list[tuple[str, bool]] = []
            level = [count("")]
            while level:
                split = []
                for prefix, n in level:
                    if n == 0:
                        continue
                    if n <= self.QUERY_WINDOW or len(prefix) >= 64:
                        parts.append((prefix, False))
                    else:
                        if prefix:  # the key equal to the prefix itself
                            parts.append((prefix, True))
                        split += [prefix + ch for ch in alphabet]
                level = list(pool.map(count, split))
            yield from pool.map(read, parts)

    def _count_expr(self, spec: CollectionSpec, expr: str) -> int:
        res = self._call("count", "query", spec.name, filter=expr, output_fields=["count(*)"],
                         consistency_level="Strong")
        return int(res[0]["count(*)"]) if res else 0

    # ------------------------------------------------------------------ physical purge
    def compact(self, spec: CollectionSpec) -> int | None:
        """Seal buffered deletes (flush) and ask Milvus to compact the collection; returns the
        compaction job id, or None where the server has no compaction (milvus-lite)."""
        if self.server_kind() != "server":
            return None
        self._call("flush", "flush", spec.name)
        return int(self._call("compact", "compact", spec.name))

    def compaction_done(self, job_id: int) -> bool:
        return self._call("compaction state", "get_compaction_state", job_id) == "Completed"

    def stored_rows(self, spec: CollectionSpec) -> int | None:
        """Rows physically held in the collection's sealed segments, deleted ones included until a
        compaction rewrites their segment (None where the server does not say: milvus-lite)."""
        if self.server_kind() != "server":
            return None
        return sum(int(s.num_rows) for s in self._call("segments", "list_persistent_segments", spec.name))

    def server_kind(self) -> str:
        """``server`` (Milvus standalone or cluster) or ``lite`` (milvus-lite, embedded)."""
        if self._kind is None:
            version = str(self._call("server version", "get_server_version"))
            # milvus-lite answers with its own version (2.4+/3.x, no segments API); Milvus 2.3 standalone
            # from PyPI calls itself "v2.3.5-lite" but is the full server
            self._kind = "server" if version.startswith("v2.") else "lite"
        return self._kind

    def drop(self, spec: CollectionSpec) -> None:
        if self._call("has_collection", "has_collection", spec.name):
            self._call("drop_collection", "drop_collection", spec.name)
        self._ready.discard(spec.name)

    def ping(self) -> bool:
        try:
            self.client.list_collections()
            return True
        except Exception:
            self.reset()
            return False
