"""The indexer's components that the query API serves from, built by ``consentry.wiring.indexer_services``."""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog import ProvenanceStore
from ..clients.objectstore import ObjectStore
from ..clients.vectors import VectorStore
from ..core.settings import Settings
from ..faceindex import FaceIndex
from .audit import AuditLog
from .auth import TokenStore
from .erasure import Eraser
from .search import FaceSearch


@dataclass
class Services:
    settings: Settings
    objects: ObjectStore
    vectors: VectorStore
    index: FaceIndex
    provenance: ProvenanceStore
    audit: AuditLog
    tokens: TokenStore
    search: FaceSearch
    eraser: Eraser
