"""The face store: the Milvus face collection and the suppression list.

Shared by ingest (which writes faces) and the indexer (search, erasure, retention, doctor); it
depends only on ``core`` and ``clients``. The schema is derived once from the Face record
(:mod:`.schema`).
"""

from .index import FaceIndex, Match
from .schema import FACE_OUTPUT, IndexConfig, face_spec, suppression_spec

__all__ = ["FACE_OUTPUT", "FaceIndex", "IndexConfig", "Match", "face_spec", "suppression_spec"]
