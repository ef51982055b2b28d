"""The face collection in Milvus: batched upserts, consent-filtered search, suppression list.

The face store shared by ingest (which writes through :class:`FaceIndex`) and the indexer (search,
erasure, retention). Its schema is :mod:`.schema`.
Search filters are built here from validated values (see ``clients.vectors.Cond``); the consent
filter (``consent_state == "granted"``, same ``model_id``, not expired) is always part of the
Milvus expression, never applied afterwards.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..clients.vectors import Cond, VectorStore
from ..core.errors import VectorStoreError
from ..core.records import ConsentState, Face, check_id
from .schema import FACE_OUTPUT, IndexConfig, face_row, face_spec, suppression_spec

log = logging.getLogger("consentry.faceindex")


@dataclass(frozen=True)
class Match:
    face_id: str
    score: float
    image_sha256: str
    url_key: str
    bbox: tuple[float, float, float, float]
    det_score: float
    source_id: str
    job_id: str
    model_id: str
    ingested_at: int
    expires_at: int

    @classmethod
    def from_hit(cls, face_id: str, score: float, e: dict[str, Any]) -> Match:
        """A search hit's entity (the FACE_OUTPUT columns) as a Match."""
        values: dict[str, Any] = {"face_id": face_id, "score": score}
        for f in fields(cls):
            if f.name in values:
                continue
            v = e[f.name]
            values[f.name] = tuple(json.loads(v)) if f.name == "bbox" else _CAST.get(f.type, str)(v)
        return cls(**values)


_CAST: dict[Any, Any] = {"int": int, "float": float, "str": str}
#: the characters of our ids (face ids are sha256 hex), for splitting the key space
HEX = "0123456789abcdef"
#: an embedding as given: a list of floats or a numpy vector
Vector = Sequence[float] | np.ndarray


def _vec(e: Sequence[float] | np.ndarray) -> list[float]:
    a = np.asarray(e, dtype=np.float32).reshape(-1)
    n = float(np.linalg.norm(a))
    if not np.isfinite(a).all() or n == 0:
        raise VectorStoreError("embedding is zero or not finite", transient=False)
    return (a / n).tolist()


class FaceIndex:
    """The Milvus face collection and the suppression list."""

    #: face ids per Milvus ``in`` filter or delete
    ID_BATCH = 1000

    def __init__(self, store: VectorStore, cfg: IndexConfig) -> None:
        self.store = store
        self.cfg = cfg
        self.spec = face_spec(cfg)
        self.suppression = suppression_spec(cfg)

    def ensure(self) -> None:
        """Create the collections on first use; check their schema on later starts; warn when embedded
        Milvus holds more faces than it can search quickly."""
        self.store.ensure_collection(self.spec)
        self.store.ensure_collection(self.suppression)
        warning = self.scale_warning()
        if warning:
            log.warning(warning)

    def scale_warning(self) -> str | None:
        """A warning when milvus-lite (embedded) holds more than ``lite_max_faces`` faces, else None."""
        if self.store.server_kind() != "lite":
            return None
        n = self.store.count(self.spec, strong=False)
        if n <= self.cfg.lite_max_faces:
            return None
        return (f"embedded Milvus (milvus-lite) holds {n:,} faces, above {self.cfg.lite_max_faces:,} "
                "(milvus_lite_max_faces): it searches by brute force (about 90 ms a search at 100k faces, 1.2 s at "
                "1M, slower than numpy over the same vectors). Run Milvus server (`consentry stack up --milvus "
                "server`, or CONSENTRY_MILVUS_URI of your cluster) for collections of this size.")

    # ------------------------------------------------------------------ writes
    @staticmethod
    def row(face: Face) -> dict[str, Any]:
        return face_row(face, _vec(face.embedding))

    def upsert(self, faces: Sequence[Face]) -> int:
        """Upsert by primary key in batches: replaying the same faces changes nothing."""
        rows = [self.row(f) for f in faces]
        n = 0
        for i in range(0, len(rows), self.cfg.write_batch):
            n += self.store.upsert(self.spec, rows[i:i + self.cfg.write_batch])
        return n

    def delete(self, face_ids: Sequence[str]) -> int:
        return self.store.delete(self.spec, list(face_ids))

    def delete_where(self, **selection: Any) -> int:
        """Delete the faces of a selection (keywords of :meth:`_where`)."""
        return self.store.delete_where(self.spec, self._where(**selection))

    # ------------------------------------------------------------------ reads
    @staticmethod
    def _where(*, source_id: str | None = None, job_id: str | None = None, url_key: str | None = None,
               expired_before: int | None = None, unexpired_at: int | None = None,
               ingested_before: int | None = None) -> list[Cond]:
        """A face selection: every given filter applies (``expires_at <= expired_before``,
        ``expires_at > unexpired_at``, ``ingested_at <= ingested_before``)."""
        where: list[Cond] = []
        if source_id is not None:
            where.append(Cond("source_id", "==", check_id(source_id, "source")))
        if job_id is not None:
            where.append(Cond("job_id", "==", check_id(job_id, "job")))
        if url_key is not None:
            where.append(Cond("url_key", "==", _hex64(url_key)))
        if expired_before is not None:
            where.append(Cond("expires_at", "<=", int(expired_before)))
        if unexpired_at is not None:
            where.append(Cond("expires_at", ">", int(unexpired_at)))
        if ingested_before is not None:
            where.append(Cond("ingested_at", "<=", int(ingested_before)))
        if not where:
            raise VectorStoreError("a face selection needs at least one filter", transient=False)
        return where

    def face_ids(self, **selection: Any) -> list[str]:
        """Every face id in a selection (keywords of :meth:`_where`), however many (Strong consistency)."""
        return [r["face_id"] for rows in self.store.iterate(self.spec, ["face_id"], batch=self.ID_BATCH,
                                                            where=self._where(**selection), alphabet=HEX)
                for r in rows]

    def get(self, face_ids: Sequence[str], with_embedding: bool = False, strong: bool = True) -> list[dict[str, Any]]:
        """The rows of these faces (those that exist); ``strong=False`` reads at Bounded consistency."""
        ids = [_hex64(i) for i in dict.fromkeys(face_ids)]
        fields = ["face_id", *FACE_OUTPUT] + (["embedding"] if with_embedding else [])
        out: list[dict[str, Any]] = []
        for i in range(0, len(ids), self.ID_BATCH):
            out += self.store.query(self.spec, [Cond("face_id", "in", ids[i:i + self.ID_BATCH])], fields,
                                    strong=strong)
        return out

    def scan(self, model_id: str) -> Iterator[tuple[list[str], np.ndarray]]:
        """Every face of a model with its embedding, as (face ids, unit-length float32 matrix) batches:
        a full scan (no index involved), for exact checks."""
        yield from self.store.iterate_vectors(self.spec, [Cond("model_id", "==", str(model_id))], alphabet=HEX)

    def compact(self) -> int | None:
        """Ask Milvus to rewrite segments holding deleted faces (None: this Milvus has no compaction)."""
        return self.store.compact(self.spec)

    def compaction_done(self, job_id: int) -> bool:
        return self.store.compaction_done(job_id)

    def stored_rows(self) -> int | None:
        """Rows physically in the collection's segments, deleted ones until compacted (None: unknown)."""
        return self.store.stored_rows(self.spec)

    def count(self, *, strong: bool = True, **selection: Any) -> int:
        """Faces in a selection (keywords of :meth:`_where`); all faces without one."""
        if all(v is None for v in selection.values()):
            return self.store.count(self.spec, strong=strong)
        return self.store.count(self.spec, self._where(**selection), strong=strong)

    def search(self, embeddings: Sequence[Vector], model_id: str, top_k: int, threshold: float,
               source_ids: Sequence[str] | None = None, job_ids: Sequence[str] | None = None,
               ingested_since: int | None = None, ingested_until: int | None = None,
               now: int | None = None, strong: bool = False, include_all_states: bool = False) -> list[list[Match]]:
        """Nearest faces per query embedding, at or above ``threshold`` cosine similarity.

        Only ``granted``, unexpired faces of the same model are searched, unless ``include_all_states``
        (erasure uses that to find withdrawn faces too).
        """
        now = int(time.time()) if now is None else int(now)
        where = [Cond("model_id", "==", str(model_id))]
        if not include_all_states:
            where += [Cond("consent_state", "==", ConsentState.GRANTED.value), Cond("expires_at", ">", now)]
        if source_ids:
            where.append(Cond("source_id", "in", [check_id(s, "source") for s in source_ids]))
        if job_ids:
            where.append(Cond("job_id", "in", [check_id(j, "job") for j in job_ids]))
        if ingested_since is not None:
            where.append(Cond("ingested_at", ">=", int(ingested_since)))
        if ingested_until is not None:
            where.append(Cond("ingested_at", "<=", int(ingested_until)))
        vecs = [_vec(e) for e in embeddings]
        hits = self.store.search(self.spec, vecs, top_k, where, FACE_OUTPUT, strong=strong)
        return [[Match.from_hit(h.id, h.score, h.entity) for h in hs if h.score >= threshold] for hs in hits]

    # ------------------------------------------------------------------ suppression list
    def suppress(self, embeddings: Sequence[Vector], model_id: str, request_id: str) -> int:
        rows = [{"sid": uuid.uuid4().hex, "embedding": _vec(e), "model_id": str(model_id),
                 "request_id": str(request_id)[:64], "created_at": int(time.time())} for e in embeddings]
        return self.store.upsert(self.suppression, rows)

    def suppressed_embeddings(self, request_id: str) -> tuple[str | None, list[np.ndarray]]:
        """The model id and reference embeddings an erasure request put on the suppression list."""
        rows = self.store.query(self.suppression, [Cond("request_id", "==", str(request_id)[:64])],
                                ["model_id", "embedding"], strong=True)
        model = rows[0]["model_id"] if rows else None
        return model, [np.asarray(r["embedding"], dtype=np.float32) for r in rows]

    def suppressed_score(self, embeddings: Sequence[Vector], model_id: str,
                         strong: bool = False) -> list[float]:
        """For each embedding, the best similarity to a suppressed person of the same model (-1 if none)."""
        if not embeddings:
            return []
        hits = self.store.search(self.suppression, [_vec(e) for e in embeddings], 1,
                                 [Cond("model_id", "==", str(model_id))], strong=strong)
        return [hs[0].score if hs else -1.0 for hs in hits]


def _hex64(value: str) -> str:
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise VectorStoreError(f"not a 64-hex id: {str(value)[:80]!r}", transient=False)
    return value
