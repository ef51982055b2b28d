"""The face collection's schema, derived once from the :class:`~consentry.core.records.Face` record.

Every Face field is a Milvus column of the same name: ``str`` → varchar(64), ``int`` → int64,
``float`` → float, the embedding → a float vector, ``bbox`` → varchar (JSON), enums → varchar(16).
The output columns of searches and the row written per face come from the same list, so a field
added to Face is written, read and checked against the live collection without another edit.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..clients.vectors import CollectionSpec, FieldSpec, IndexSpec
from ..core.records import Face, Record

DIM = 512


@dataclass(frozen=True)
class IndexConfig:
    collection: str = "consentry_faces"
    suppression_collection: str = "consentry_suppressed"
    index_type: str = "HNSW"
    hnsw_m: int = 32
    hnsw_ef_construction: int = 100
    search_ef: int = 256
    ivf_nlist: int = 1024
    ivf_nprobe: int = 32
    write_batch: int = 256
    dim: int = DIM
    lite_max_faces: int = 200_000  # above this, embedded milvus-lite is too slow: warn (doctor, API start)

    @classmethod
    def from_settings(cls, s) -> IndexConfig:
        return cls(collection=s.milvus_collection, suppression_collection=s.milvus_suppression_collection,
                   index_type=s.milvus_index_type, hnsw_m=s.milvus_hnsw_m,
                   hnsw_ef_construction=s.milvus_hnsw_ef_construction, search_ef=s.milvus_search_ef,
                   ivf_nlist=s.milvus_ivf_nlist, ivf_nprobe=s.milvus_ivf_nprobe, write_batch=s.milvus_write_batch,
                   lite_max_faces=s.milvus_lite_max_faces)

    def index_spec(self) -> IndexSpec:
        if self.index_type == "HNSW":
            return IndexSpec("HNSW", "COSINE", {"M": self.hnsw_m, "efConstruction": self.hnsw_ef_construction},
                             {"ef": self.search_ef})
        if self.index_type == "IVF_FLAT":
            return IndexSpec("IVF_FLAT", "COSINE", {"nlist": self.ivf_nlist}, {"nprobe": self.ivf_nprobe})
        return IndexSpec(self.index_type, "COSINE", {}, {})


def _column(name: str, annotation: Any, cfg: IndexConfig) -> FieldSpec:
    if name == "face_id":
        return FieldSpec(name, "varchar", max_length=64, primary=True)
    if name == "embedding":
        return FieldSpec(name, "vector", dim=cfg.dim)
    if name == "bbox":
        return FieldSpec(name, "varchar", max_length=128)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return FieldSpec(name, "varchar", max_length=16)
    kind = {str: "varchar", int: "int64", float: "float"}.get(annotation)
    if kind is None:
        raise TypeError(f"Face.{name}: no Milvus column type for {annotation!r}")
    return FieldSpec(name, kind)  # type: ignore[arg-type]


_HINTS = typing.get_type_hints(Face)
FACE_COLUMNS: tuple[str, ...] = tuple(n for n in Face.model_fields if n not in Record.model_fields)
FACE_OUTPUT: tuple[str, ...] = tuple(c for c in FACE_COLUMNS if c not in ("face_id", "embedding"))


def face_row(face: Face, embedding: list[float]) -> dict[str, Any]:
    """The Milvus row of a face (``embedding`` already normalised by the caller)."""
    row: dict[str, Any] = {}
    for name in FACE_COLUMNS:
        value = getattr(face, name)
        if name == "embedding":
            value = embedding
        elif name == "bbox":
            value = json.dumps([round(v, 2) for v in value])
        elif isinstance(value, Enum):
            value = value.value
        row[name] = value
    return row


def face_spec(cfg: IndexConfig) -> CollectionSpec:
    return CollectionSpec(cfg.collection, tuple(_column(n, _HINTS[n], cfg) for n in FACE_COLUMNS),
                          cfg.index_spec())


def suppression_spec(cfg: IndexConfig) -> CollectionSpec:
    return CollectionSpec(cfg.suppression_collection, (
        FieldSpec("sid", "varchar", max_length=64, primary=True),
        FieldSpec("embedding", "vector", dim=cfg.dim),
        FieldSpec("model_id", "varchar", max_length=64),
        FieldSpec("request_id", "varchar", max_length=64),
        FieldSpec("created_at", "int64"),
    ), IndexSpec("FLAT", "COSINE", {}, {}))


