"""Erasure on Milvus 2.3 server: past the 16,384-row query window, an index miss caught by the exact
scan, and the physical purge (compaction) recorded in the receipt. Synthetic embeddings, real servers."""

from __future__ import annotations

import io
import time
import uuid

import numpy as np
import pytest

from consentry.catalog import ProvenanceStore
from consentry.clients.objectstore import S3Config, S3ObjectStore
from consentry.clients.vectors import MilvusVectorStore
from consentry.core.records import Basis, Decision, Face, FaceRef, Provenance, sha256_hex
from consentry.faceindex import FaceIndex, IndexConfig
from consentry.faces.types import DetectedFace
from consentry.indexer.audit import AuditLog
from consentry.indexer.erasure import Eraser

pytestmark = [pytest.mark.milvus_server, pytest.mark.slow]
MODEL = "synthetic-512"


def unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)


def make_faces(embeddings: np.ndarray, source: str, start: int, per_image: int) -> tuple[list[Face], list[Provenance]]:
    now = int(time.time())
    faces, provs = [], []
    for i0 in range(0, len(embeddings), per_image):
        url = f"https://archive.example/{source}/{start + i0}.jpg"
        sha = sha256_hex(url)
        rows = []
        for j, e in enumerate(embeddings[i0:i0 + per_image]):
            bbox = (float(j), 0.0, float(j) + 10.0, 10.0)
            rows.append(Face(face_id=Face.make_id(sha, bbox, MODEL), embedding=e.tolist(), image_sha256=sha,
                             url_key=sha256_hex(url), bbox=bbox, det_score=0.9, source_id=source, job_id="job-1",
                             model_id=MODEL, ingested_at=now, expires_at=now + 86400))
        faces += rows
        provs.append(Provenance(url=url, page_url=url, job_id="job-1", source_id=source, basis=Basis.CONSENT,
                                sha256=sha, decision=Decision.INDEX, reason="allowed", model_id=MODEL,
                                faces=[FaceRef(face_id=f.face_id, bbox=f.bbox, score=0.9) for f in rows]))
    return faces, provs


def world(settings, milvus_uri: str, **cfg):
    cfg_s3 = S3Config.from_settings(settings)
    store = S3ObjectStore(S3Config(cfg_s3.endpoint, cfg_s3.access_key, cfg_s3.secret_key,
                                   bucket=f"t-{uuid.uuid4().hex[:12]}"))
    store.ensure_bucket()
    tag = uuid.uuid4().hex[:8]
    index = FaceIndex(MilvusVectorStore(milvus_uri, timeout_s=120),
                      IndexConfig(collection=f"scale_{tag}", suppression_collection=f"scale_s_{tag}", **cfg))
    index.ensure()
    return index, ProvenanceStore(store), store


def write(index: FaceIndex, prov: ProvenanceStore, faces: list[Face], provs: list[Provenance]) -> None:
    index.upsert(faces)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(prov.put, provs))


def wait_indexed(index: FaceIndex, n: int, timeout_s: float = 300) -> None:
    """Flush and wait until every row is in the built index, then reload it (so searches use the built
    index, not Milvus's interim one, and compaction may rewrite the segments)."""
    client, name = index.store.client, index.spec.name
    client.flush(name)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        d = client.describe_index(name, "embedding")
        if d.get("pending_index_rows", 0) == 0 and d.get("indexed_rows", 0) >= n:
            break
        time.sleep(1)
    client.release_collection(name)
    client.load_collection(name)


def test_erasing_a_source_past_the_query_window_leaves_nothing_and_a_full_receipt(settings, milvus_server):
    index, prov, store = world(settings, milvus_server)
    rng = np.random.default_rng(11)
    n = 16_384 + 616  # more than one Milvus query window
    big, big_provs = make_faces(unit(rng.normal(size=(n, 512))), "big", 0, per_image=50)
    kept, kept_provs = make_faces(unit(rng.normal(size=(120, 512))), "kept", 0, per_image=40)
    write(index, prov, big + kept, big_provs + kept_provs)
    crops = [f.face_id for f in big[::100]]
    for fid in crops:
        store.put(ProvenanceStore.crop_key(fid), b"\xff\xd8 crop", content_type="image/jpeg")
    assert index.count(source_id="big") == n and len(index.face_ids(source_id="big")) == n

    er = Eraser(index, prov, store, AuditLog(store), erasure_threshold=0.45)
    r = er.forget_source("big", actor="privacy:test", reference="DSAR-2026-900")
    assert len(r.matched_face_ids) == n and set(r.matched_face_ids) == {f.face_id for f in big}
    assert r.deleted["milvus_faces"] == n and r.deleted["provenance_deleted"] == len(big_provs)
    assert r.deleted["crops_deleted"] == len(crops)
    assert not any(store.exists(ProvenanceStore.crop_key(f)) for f in crops)
    assert r.verification["ok"] and r.verification["remaining"] == 0 and r.verification["state"] == "done"
    assert index.count(source_id="big") == 0 and index.count(source_id="kept") == len(kept)
    assert prov.keys_for_source("big") == [] and len(prov.keys_for_source("kept")) == len(kept_provs)
    stored = er.receipt(r.request_id)
    assert len(stored["matched_face_ids"]) == n and stored["reference"] == "DSAR-2026-900"
    e = [x for x in er.audit.entries() if x["action"] == "erasure"][-1]
    assert e["details"]["matched"] == n and len(e["details"]["matched_face_ids_sha256"]) == 64


class OneFace:
    """A face model whose one face is a given embedding (the reference "photo" is any image)."""

    model_id = MODEL

    def __init__(self, embedding: np.ndarray) -> None:
        self.embedding = embedding

    def analyze(self, _bgr) -> list[DetectedFace]:
        return [DetectedFace(bbox=(0, 0, 10, 10), score=0.99, embedding=self.embedding)]


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_the_exact_scan_erases_a_face_the_index_cannot_find_and_compaction_purges_it(settings, milvus_server):
    """IVF_FLAT with two cells searched one cell at a time (nprobe=1). Two tight clusters A and B set the
    cells; the reference r lies nearest A's centre, but the person's other face f (cosine 0.59 with r,
    above the 0.45 erasure threshold) lies nearest B's: the index never looks in B's cell for r."""
    index, prov, store = world(settings, milvus_server, index_type="IVF_FLAT", ivf_nlist=2, ivf_nprobe=1)
    rng = np.random.default_rng(5)
    basis, _ = np.linalg.qr(rng.normal(size=(512, 4)))
    c_a, c_b, u, w = basis.T
    noise = unit(rng.normal(size=(4000, 512)))
    cluster = unit(np.concatenate([0.85 * c_a + 0.5 * noise[:2000], 0.85 * c_b + 0.5 * noise[2000:]]))
    r = unit(0.4 * c_a + 0.917 * u)
    f = unit(0.1 * c_a + 0.45 * c_b + 0.6 * u + 0.654 * w)
    assert float(f @ r) > 0.55 and float((cluster @ r).max()) < 0.45  # f matches; nobody in the clusters does
    others, others_prov = make_faces(cluster, "crowd", 0, per_image=100)
    person, person_prov = make_faces(f[None, :], "family", 0, per_image=1)
    write(index, prov, others + person, others_prov + person_prov)
    wait_indexed(index, len(others) + 1)
    missed = person[0].face_id

    er = Eraser(index, prov, store, AuditLog(store), erasure_threshold=0.45, model_loader=lambda: OneFace(r),
                verify_inline_max_faces=0)  # the two stages apart, as on a large collection
    receipt = er.forget_photo(_png(), actor="privacy:test")
    assert missed not in receipt.matched_face_ids, "the index found f: the construction no longer bites"
    assert index.get([missed]) and prov.get(person[0].url_key).face_ids == [missed]

    done = er.finish(receipt.request_id)
    v = done.verification
    assert v["ok"] and v["caught"] == 1 and v["remaining"] == 0 and v["compared"] == len(others) + 1
    assert missed in done.matched_face_ids and not index.get([missed])
    assert prov.get(person[0].url_key).face_ids == []
    m = done.purge["milvus"]
    assert m["state"] == "compacted", m
    assert m["deleted_rows_in_segments"] == 0 and m["segment_rows"] == m["live_rows"] == len(others)
    assert m["files_removed_by"] > m["compacted_at"] and done.status == "purged"
