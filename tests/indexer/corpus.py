"""The offline photos, detected and embedded once with the real face model, and indexed per test.

Fixtures here are imported by tests/indexer/conftest.py and tests/api/conftest.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pytest

from consentry.catalog import ProvenanceStore
from consentry.core.records import Basis, ConsentState, Decision, Face, FaceRef, Provenance, sha256_hex, url_key
from consentry.faceindex import FaceIndex

SOURCE = "press-archive"
JOB = "job-2026-01"
PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "t1.jpg", "astronaut.png")
FETCHED_AT = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Detected:
    name: str
    data: bytes
    bboxes: list[tuple[float, float, float, float]]
    scores: list[float]
    embeddings: list[np.ndarray]


def image_url(name: str) -> str:
    return f"http://photos.test/img/{name}"


def page_url(name: str) -> str:
    return f"http://photos.test/gallery/{name}.html"


@pytest.fixture(scope="session")
def face_model(stack):
    from consentry.faces import ModelConfig, load_model

    return load_model(ModelConfig.from_settings(stack))


@pytest.fixture(scope="session")
def detected(face_model, photos) -> dict[str, Detected]:
    from consentry.imaging import decode

    out = {}
    for name in PHOTOS:
        data = photos[name].read_bytes()
        faces = face_model.analyze(decode(data).bgr)
        out[name] = Detected(name, data, [f.bbox for f in faces], [f.score for f in faces],
                             [f.embedding for f in faces])
    assert len(out["t1.jpg"].embeddings) == 6 and all(len(d.embeddings) == 1 for n, d in out.items() if n != "t1.jpg")
    return out


def index_corpus(index: FaceIndex, provenance: ProvenanceStore, detected: dict[str, Detected], model_id: str,
                 states: dict[str, ConsentState] | None = None, source: str = SOURCE) -> dict[str, list[Face]]:
    """Upsert every detected face (consent state per photo name) and write each image's provenance."""
    states = states or {}
    now = int(time.time())
    out: dict[str, list[Face]] = {}
    for name, d in detected.items():
        sha = sha256_hex(d.data)
        ukey = url_key(image_url(name))
        faces = [Face(face_id=Face.make_id(sha, bbox, model_id), embedding=[float(x) for x in emb],
                      image_sha256=sha, url_key=ukey, bbox=bbox, det_score=score, source_id=source, job_id=JOB,
                      consent_state=states.get(name, ConsentState.GRANTED), model_id=model_id,
                      ingested_at=now, expires_at=now + 86400)
                 for bbox, score, emb in zip(d.bboxes, d.scores, d.embeddings)]
        provenance.put(Provenance(url=image_url(name), page_url=page_url(name), job_id=JOB, source_id=source,
                                  basis=Basis.CONSENT, fetched_at=FETCHED_AT, http_status=200,
                                  content_type="image/jpeg", bytes=len(d.data), sha256=sha,
                                  decision=Decision.INDEX, reason="consent basis, no opt-out", model_id=model_id,
                                  faces=[FaceRef(face_id=f.face_id, bbox=f.bbox, score=f.det_score) for f in faces]))
        out[name] = faces
    index.upsert([f for fs in out.values() for f in fs])
    visible(index, [f.face_id for fs in out.values() for f in fs])
    return out


def visible(index: FaceIndex, face_ids: list[str], timeout_s: float = 30.0) -> None:
    """Wait until Bounded-consistency reads (what searches use) see these rows: Milvus serves rows written
    a moment ago after its next time tick, as ingest's rows become searchable in production."""
    deadline = time.monotonic() + timeout_s
    while len(index.get(face_ids, strong=False)) < len(set(face_ids)):
        if time.monotonic() > deadline:
            raise AssertionError(f"rows not visible at Bounded consistency after {timeout_s:.0f}s")
        time.sleep(0.1)
