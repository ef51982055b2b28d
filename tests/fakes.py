"""In-memory fakes of the outside systems, for fast unit tests only.

Production code never imports this module (it is not part of the installed package). Each fake
implements the same small interface as its real adapter in ``consentry.clients`` or
``consentry.faces``; the integration tests still run the real servers.

- :class:`MemoryBroker` (Kafka), :class:`MemoryObjectStore` (S3), :class:`MemoryVectorStore` (Milvus)
- :class:`HashFaceModel`: a face model whose one "face" per image derives from the pixels' hash.
  Subprocesses select it with ``CONSENTRY_MODEL_PACK=tests.fakes:HashFaceModel`` (a model-pack
  plugin path, importable only where the tests are).
"""

from __future__ import annotations

import hashlib
import operator
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from consentry.clients.broker import Message
from consentry.clients.objectstore import ObjectInfo
from consentry.clients.vectors import CollectionSpec, Cond, Hit, render
from consentry.core.errors import BrokerError, ObjectNotFound, ObjectStoreError, SchemaMismatch, VectorStoreError
from consentry.faces.types import EMBEDDING_DIM, DetectedFace


class MemoryBroker:
    """In-process broker for unit tests: partitions by key hash, consumer groups with committed offsets.

    One member per group at a time (enough for unit tests; group balancing is tested on the real broker).
    """

    def __init__(self, partitions: int = 2) -> None:
        self.partitions = partitions
        self.topics: dict[str, list[list[Message]]] = {}
        self.committed: dict[str, dict[tuple[str, int], int]] = defaultdict(dict)
        self.down = False  # set True to simulate an unreachable broker
        self._lock = threading.Lock()

    def _topic(self, name: str) -> list[list[Message]]:
        return self.topics.setdefault(name, [[] for _ in range(self.partitions)])

    def append(self, topic: str, key: bytes | None, value: bytes) -> None:
        if self.down:
            raise BrokerError("broker down (simulated)")
        with self._lock:
            parts = self._topic(topic)
            p = (zlib.crc32(key) if key else 0) % len(parts)
            parts[p].append(Message(topic, p, len(parts[p]), key, value))

    def messages(self, topic: str) -> list[Message]:
        return sorted((m for part in self._topic(topic) for m in part), key=lambda m: (m.partition, m.offset))

    def producer(self) -> MemoryProducer:
        return MemoryProducer(self)

    def consumer(self, group: str, topics: Sequence[str]) -> MemoryConsumer:
        return MemoryConsumer(self, group, list(topics))

    def ensure_topics(self, topics: Iterable[str]) -> None:
        for t in topics:
            self._topic(t)

    def ping(self) -> bool:
        return not self.down


class MemoryProducer:
    def __init__(self, broker: MemoryBroker) -> None:
        self.b = broker
        self._buf: list[tuple[str, bytes | None, bytes]] = []

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        self._buf.append((topic, key, value))

    def flush(self, timeout_s: float = 30.0) -> None:
        while self._buf:
            self.b.append(*self._buf[0])
            self._buf.pop(0)

    def close(self) -> None:
        self.flush()


class MemoryConsumer:
    def __init__(self, broker: MemoryBroker, group: str, topics: list[str]) -> None:
        self.b, self.group, self.topics = broker, group, topics
        self._pos: dict[tuple[str, int], int] = {}

    def assignment(self) -> set[tuple[str, int]]:
        return {(t, p) for t in self.topics for p in range(len(self.b._topic(t)))}

    def settled(self) -> bool:
        return not self.b.down

    def poll(self, timeout_s: float, max_records: int | None = None) -> list[Message]:
        if self.b.down:
            raise BrokerError("broker down (simulated)")
        out: list[Message] = []
        limit = max_records or 500
        for tp in sorted(self.assignment()):
            pos = self._pos.get(tp, self.b.committed[self.group].get(tp, 0))
            part = self.b._topic(tp[0])[tp[1]]
            take = part[pos:pos + limit - len(out)]
            out.extend(take)
            self._pos[tp] = pos + len(take)
            if len(out) >= limit:
                break
        if not out and timeout_s:
            time.sleep(min(timeout_s, 0.01))
        return out

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        if self.b.down:
            raise BrokerError("broker down (simulated)")
        self.b.committed[self.group].update(offsets)

    def seek(self, topic: str, partition: int, offset: int) -> None:
        self._pos[(topic, partition)] = offset

    def close(self) -> None:
        self._pos.clear()


class MemoryObjectStore:
    """In-process object store for unit tests."""

    def __init__(self, bucket: str = "consentry") -> None:
        self.bucket = bucket
        self.objects: dict[str, tuple[bytes, str, dict[str, str], dict[str, str]]] = {}
        self.down = False
        self._lock = threading.Lock()

    def _check(self) -> None:
        if self.down:
            raise ObjectStoreError("object store down (simulated)", transient=True)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream",
            metadata: dict[str, str] | None = None, tags: dict[str, str] | None = None) -> None:
        self._check()
        with self._lock:
            self.objects[key] = (bytes(data), content_type, dict(metadata or {}), dict(tags or {}))

    def put_if_absent(self, key: str, data: bytes, content_type: str = "application/json") -> bool:
        self._check()
        with self._lock:
            if key in self.objects:
                return False
            self.objects[key] = (bytes(data), content_type, {}, {})
            return True

    def get(self, key: str) -> bytes:
        self._check()
        try:
            return self.objects[key][0]
        except KeyError:
            raise ObjectNotFound(f"get {key}: no such object") from None

    def stat(self, key: str) -> ObjectInfo:
        self._check()
        try:
            data, ct, meta, _ = self.objects[key]
        except KeyError:
            raise ObjectNotFound(f"stat {key}: no such object") from None
        return ObjectInfo(key=key, size=len(data), etag=None, metadata=dict(meta), content_type=ct)

    def tags(self, key: str) -> dict[str, str]:
        self._check()
        if key not in self.objects:
            raise ObjectNotFound(f"tags {key}: no such object")
        return dict(self.objects[key][3])

    def exists(self, key: str) -> bool:
        self._check()
        return key in self.objects

    def delete(self, key: str) -> None:
        self._check()
        self.objects.pop(key, None)

    def delete_many(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        for k in keys:
            self.delete(k)
        return len(keys)

    def list(self, prefix: str = "") -> Iterator[str]:
        self._check()
        return iter(sorted(k for k in list(self.objects) if k.startswith(prefix)))

    def ensure_bucket(self) -> None:
        self._check()

    def ping(self) -> bool:
        return not self.down

    def versioning(self) -> str:
        return "off"  # a delete removes the object

    def purge_versions(self, keys: Iterable[str], keep_latest: bool = False) -> int:
        return 0


_OPS = {"==": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _match(row: dict[str, Any], conds: Sequence[Cond]) -> bool:
    for c in conds:
        v = row.get(c.field)
        if not (v in c.value if c.op == "in" else _OPS[c.op](v, c.value)):
            return False
    return True


class MemoryVectorStore:
    """Exact cosine search over rows in memory, for unit tests."""

    def __init__(self) -> None:
        self.collections: dict[str, dict[str, dict[str, Any]]] = {}
        self.specs: dict[str, CollectionSpec] = {}
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise VectorStoreError("vector store down (simulated)", transient=True)

    def ensure_collection(self, spec: CollectionSpec) -> None:
        self._check()
        if spec.name in self.specs and self.specs[spec.name].fields != spec.fields:
            raise SchemaMismatch(f"collection {spec.name!r} exists with another schema")
        self.specs[spec.name] = spec
        self.collections.setdefault(spec.name, {})

    def upsert(self, spec: CollectionSpec, rows: list[dict[str, Any]]) -> int:
        self.ensure_collection(spec)
        for r in rows:
            self.collections[spec.name][str(r[spec.primary.name])] = dict(r)
        return len(rows)

    def delete(self, spec: CollectionSpec, ids: Sequence[str]) -> int:
        self.ensure_collection(spec)
        col = self.collections[spec.name]
        for i in ids:
            col.pop(i, None)
        return len(ids)

    def delete_where(self, spec: CollectionSpec, where: Sequence[Cond]) -> int:
        if not where:
            raise VectorStoreError("refusing to delete without a filter", transient=False)
        ids = [r[spec.primary.name] for r in self.query(spec, where, limit=10**9)]
        return self.delete(spec, ids)

    def search(self, spec: CollectionSpec, vectors: Sequence[Sequence[float]], top_k: int,
               where: Sequence[Cond] = (), output_fields: Sequence[str] = (),
               strong: bool = False) -> list[list[Hit]]:
        self.ensure_collection(spec)
        render(spec, where)  # same validation as the real adapter
        rows = [r for r in self.collections[spec.name].values() if _match(r, where)]
        out = []
        for v in vectors:
            q = np.asarray(v, dtype=np.float32)
            q = q / (np.linalg.norm(q) or 1.0)
            scored = []
            for r in rows:
                e = np.asarray(r[spec.vector.name], dtype=np.float32)
                scored.append((float(q @ (e / (np.linalg.norm(e) or 1.0))), r))
            scored.sort(key=lambda t: -t[0])
            out.append([Hit(id=str(r[spec.primary.name]), score=s, entity={k: r[k] for k in output_fields})
                        for s, r in scored[:top_k]])
        return out

    def query(self, spec: CollectionSpec, where: Sequence[Cond], output_fields: Sequence[str] = (),
              limit: int = 16384, strong: bool = False) -> list[dict[str, Any]]:
        self.ensure_collection(spec)
        render(spec, where)
        fields = list(output_fields) or [spec.primary.name]
        rows = [r for r in self.collections[spec.name].values() if _match(r, where)]
        return [{k: r[k] for k in fields} for r in rows[:limit]]

    def count(self, spec: CollectionSpec, where: Sequence[Cond] = (), strong: bool = True) -> int:
        return len(self.query(spec, where, limit=10**9))

    def iterate(self, spec: CollectionSpec, output_fields: Sequence[str], batch: int = 1000,
                where: Sequence[Cond] = (), alphabet: str | None = None) -> Iterator[list[dict[str, Any]]]:
        rows = self.query(spec, where, list(dict.fromkeys([spec.primary.name, *output_fields])), limit=10**9)
        for i in range(0, len(rows), batch):
            yield rows[i:i + batch]

    def iterate_vectors(self, spec: CollectionSpec, where: Sequence[Cond] = (),
                        alphabet: str | None = None) -> Iterator[tuple[list[str], np.ndarray]]:
        for rows in self.iterate(spec, [spec.vector.name], 1000, where):
            yield [r[spec.primary.name] for r in rows], np.asarray([r[spec.vector.name] for r in rows], np.float32)

    def compact(self, spec: CollectionSpec) -> int | None:
        return None  # deletes are physical here

    def compaction_done(self, job_id: int) -> bool:
        return True

    def stored_rows(self, spec: CollectionSpec) -> int | None:
        return None

    def server_kind(self) -> str:
        return "memory"

    def drop(self, spec: CollectionSpec) -> None:
        self.collections.pop(spec.name, None)
        self.specs.pop(spec.name, None)

    def ping(self) -> bool:
        return not self.down


class HashFaceModel:
    """Fake for unit tests: one 'face' per image whose embedding derives from the pixels' hash.

    Images that are a flat single colour have no face. Same pixels → same embedding.
    """

    model_id = "hashface-test"
    dim = EMBEDDING_DIM

    def analyze(self, bgr: np.ndarray) -> list[DetectedFace]:
        if bgr.size == 0 or int(bgr.max()) == int(bgr.min()):
            return []
        seed = int.from_bytes(hashlib.sha256(bgr.tobytes()).digest()[:8], "little")
        e = np.random.default_rng(seed).normal(size=self.dim).astype(np.float32)
        h, w = bgr.shape[:2]
        box = (w * 0.25, h * 0.25, w * 0.75, h * 0.75)
        return [DetectedFace(bbox=box, score=0.99, embedding=e / np.linalg.norm(e))]

    def analyze_batch(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        return [self.analyze(i) for i in images]
