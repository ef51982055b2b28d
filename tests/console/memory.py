"""The console over in-memory fakes (object store, vector store, HashFaceModel): fast tests of its HTTP behaviour."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from consentry.catalog import ProvenanceStore
from consentry.core.settings import Settings, load_settings
from consentry.faceindex import FaceIndex, IndexConfig
from consentry.indexer.api import create_app
from consentry.indexer.audit import AuditLog
from consentry.indexer.auth import Role, TokenStore
from consentry.indexer.erasure import Eraser
from consentry.indexer.search import FaceSearch, SearchLimits
from consentry.indexer.services import Services
from tests.fakes import HashFaceModel, MemoryObjectStore, MemoryVectorStore

CSRF_RE = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@dataclass
class MemoryConsole:
    settings: Settings
    services: Services
    app: Any
    tokens: dict[str, str] = field(default_factory=dict)

    def browser(self, role: str | None = None, base_url: str = "http://testserver") -> TestClient:
        """A client that signed in on the console as ``role`` (cookies kept, redirects not followed)."""
        c = TestClient(self.app, base_url=base_url, follow_redirects=False)
        if role:
            r = c.post("/console/login", data={"token": self.tokens[role]})
            assert r.status_code == 303, r.text
        return c

    def api(self, role: str) -> TestClient:
        return TestClient(self.app, headers={"Authorization": f"Bearer {self.tokens[role]}"})


def csrf_of(client: TestClient, path: str = "/console") -> str:
    r = client.get(path, follow_redirects=True)
    m = CSRF_RE.search(r.text)
    assert m, r.text[:500]
    return m.group(1)


def memory_console(**overrides: Any) -> MemoryConsole:
    s = load_settings(api_rate_limit_per_minute=100_000, **overrides)
    store, vectors = MemoryObjectStore(), MemoryVectorStore()
    index, model = FaceIndex(vectors, IndexConfig()), HashFaceModel()
    prov, audit = ProvenanceStore(store), AuditLog(store)
    svc = Services(settings=s, objects=store, vectors=vectors, index=index, provenance=prov, audit=audit,
                   tokens=TokenStore(store, cache_ttl_s=0),
                   search=FaceSearch(index, prov, audit, lambda: model, SearchLimits.from_settings(s)),
                   eraser=Eraser(index, prov, store, audit, s.erasure_threshold, model_loader=lambda: model))
    index.ensure()
    mc = MemoryConsole(s, svc, create_app(s, svc))
    for role in Role:
        mc.tokens[role.value] = svc.tokens.create(f"{role.value}-user", role)[1]
    return mc


def noise_png(seed: int, side: int = 96) -> bytes:
    """A random image: HashFaceModel sees one face in it, different for every seed."""
    import io

    import numpy as np
    from PIL import Image

    rgb = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def index_image(mc: MemoryConsole, data: bytes, url: str, page_url: str, source: str = "family",
                job: str = "job-1") -> list[str]:
    """Index ``data`` the way ingest writes it (face rows, crop, provenance) under whatever URLs are given."""
    import time

    from consentry.core.records import Basis, Decision, Face, FaceRef, Provenance, sha256_hex, url_key
    from consentry.imaging import decode, face_crop_jpeg

    img = decode(data)
    sha, now = sha256_hex(data), int(time.time())
    model = mc.services.search.model_loader()
    faces = [Face(face_id=Face.make_id(sha, f.bbox, model.model_id), embedding=[float(v) for v in f.embedding],
                  image_sha256=sha, url_key=url_key(url), bbox=f.bbox, det_score=f.score, source_id=source, job_id=job,
                  model_id=model.model_id, ingested_at=now, expires_at=now + 86400)
             for f in model.analyze(img.bgr)]
    mc.services.index.upsert(faces)
    for f in faces:
        mc.services.objects.put(ProvenanceStore.crop_key(f.face_id), face_crop_jpeg(img.rgb, f.bbox), "image/jpeg")
    mc.services.provenance.put(Provenance(
        url=url, page_url=page_url, job_id=job, source_id=source, basis=Basis.CONSENT, sha256=sha,
        decision=Decision.INDEX, reason="allowed", model_id=model.model_id,
        faces=[FaceRef(face_id=f.face_id, bbox=f.bbox, score=f.det_score) for f in faces]))
    return [f.face_id for f in faces]
