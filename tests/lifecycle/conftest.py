"""Indexing helpers for lifecycle tests: photos become faces + provenance the way ingest writes them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import pytest

from consentry.catalog import ProvenanceStore
from consentry.clients.objectstore import S3Config, S3ObjectStore
from consentry.clients.vectors import MilvusVectorStore
from consentry.core.records import Basis, Decision, Face, FaceRef, Provenance, sha256_hex, url_key
from consentry.faceindex import FaceIndex, IndexConfig
from consentry.faces import ModelConfig, load_model
from consentry.imaging import decode
from consentry.indexer.audit import AuditLog
from tests.fakes import MemoryObjectStore, MemoryVectorStore


@dataclass
class World:
    index: FaceIndex
    provenance: ProvenanceStore
    store: object
    audit: AuditLog
    model: object

    def add(self, url: str, data: bytes, source: str = "src-a", job: str = "job-1", expires_in: float = 3600,
            now: float | None = None) -> Provenance:
        """Detect, embed and write one image like the ingest writer does."""
        now = time.time() if now is None else now
        sha = sha256_hex(data)
        faces = self.model.analyze(decode(data).bgr)
        rows, refs = [], []
        for f in faces:
            fid = Face.make_id(sha, f.bbox, self.model.model_id)
            rows.append(Face(face_id=fid, embedding=f.embedding.tolist(), image_sha256=sha, url_key=url_key(url),
                             bbox=f.bbox, det_score=f.score, source_id=source, job_id=job,
                             model_id=self.model.model_id, ingested_at=int(now), expires_at=int(now + expires_in)))
            refs.append(FaceRef(face_id=fid, bbox=f.bbox, score=f.score))
        self.index.upsert(rows)
        prov = Provenance(url=url, page_url=url.rsplit("/", 1)[0] + "/", job_id=job, source_id=source,
                          basis=Basis.CONSENT, sha256=sha, decision=Decision.INDEX, reason="allowed",
                          model_id=self.model.model_id, faces=refs)
        self.provenance.put(prov)
        self.provenance.add_image_url(sha, prov.key)
        return prov


def make_world(kind: str, request: pytest.FixtureRequest) -> World:
    model = load_model(ModelConfig())
    if kind == "memory":
        store = MemoryObjectStore()
        vs = MemoryVectorStore()
        cfg = IndexConfig()
    else:
        s = request.getfixturevalue("settings")
        cfg_s3 = S3Config.from_settings(s)
        store = S3ObjectStore(S3Config(cfg_s3.endpoint, cfg_s3.access_key, cfg_s3.secret_key,
                                       bucket=f"t-{uuid.uuid4().hex[:12]}"))  # a bucket of its own
        store.ensure_bucket()
        vs = MilvusVectorStore(s.milvus_uri)
        cfg = IndexConfig.from_settings(s)
    return World(FaceIndex(vs, cfg), ProvenanceStore(store), store, AuditLog(store), model)


@pytest.fixture(params=["real", "memory"])
def world(request: pytest.FixtureRequest) -> World:
    """The same tests on the real servers and on the in-memory fakes."""
    return make_world(request.param, request)


@pytest.fixture
def real_world(request: pytest.FixtureRequest) -> World:
    return make_world("real", request)


def cli(world: World, settings, *args: str) -> subprocess.CompletedProcess:
    """Run `consentry ARGS` in a subprocess against the same bucket, collections and topics as ``world``."""
    env = {**os.environ, "CONSENTRY_S3_BUCKET": world.store.bucket,
           "CONSENTRY_MILVUS_COLLECTION": settings.milvus_collection,
           "CONSENTRY_MILVUS_SUPPRESSION_COLLECTION": settings.milvus_suppression_collection,
           "CONSENTRY_TOPIC_PREFIX": settings.topic_prefix}
    return subprocess.run([sys.executable, "-m", "consentry.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=300)
