"""Indexer: the Milvus face collection (schema, writer, search), erasure, retention, audit, query API.

Public interface used by other stages: :class:`FaceIndex` (ingest writes through it).
"""

from .faceindex import FaceIndex, IndexConfig, Match

__all__ = ["FaceIndex", "IndexConfig", "Match"]
