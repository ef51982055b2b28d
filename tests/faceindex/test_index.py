import time
import uuid

import numpy as np
import pytest

from consentry.clients.vectors import MilvusVectorStore
from consentry.core.errors import RecordError, SchemaMismatch, VectorStoreError
from consentry.core.records import ConsentState, Face, sha256_hex
from consentry.faceindex import FaceIndex, IndexConfig
from tests.fakes import MemoryVectorStore


def make_face(emb, source="src-a", state=ConsentState.GRANTED, expires=None, model="m1", n=0):
    sha = sha256_hex(f"img{n}")
    bbox = (10.0 + n, 10.0, 60.0, 60.0)
    return Face(face_id=Face.make_id(sha, bbox, model), embedding=list(map(float, emb)), image_sha256=sha,
                url_key=sha256_hex(f"url{n}"), bbox=bbox, det_score=0.9, source_id=source, job_id="job-1",
                consent_state=state, model_id=model, ingested_at=int(time.time()),
                expires_at=expires or int(time.time()) + 3600)


@pytest.fixture(params=["memory", "embedded"])
def index(request):
    cfg = IndexConfig(collection=f"f_{uuid.uuid4().hex[:8]}", suppression_collection=f"s_{uuid.uuid4().hex[:8]}")
    if request.param == "memory":
        return FaceIndex(MemoryVectorStore(), cfg)
    return FaceIndex(MilvusVectorStore(request.getfixturevalue("stack").milvus_uri), cfg)


def test_consent_filter_is_enforced_even_for_the_best_match(index):
    rng = np.random.default_rng(3)
    base = rng.normal(size=512)
    near = base + rng.normal(scale=0.05, size=512)
    faces = [make_face(base, state=ConsentState.WITHDRAWN, n=1),       # the exact best match: withdrawn
             make_face(near, n=2),                                     # granted, close
             make_face(base, expires=int(time.time()) - 10, n=3),      # expired
             make_face(base, model="other-model", n=4),                # another model's space
             make_face(rng.normal(size=512), n=5)]                     # someone else
    assert index.upsert(faces) == 5
    assert index.upsert(faces) == 5 and index.count() == 5  # replay: same rows
    res = index.search([base], "m1", top_k=10, threshold=0.5, strong=True)[0]
    assert [m.face_id for m in res] == [faces[1].face_id]
    assert res[0].score > 0.9 and res[0].bbox == (12.0, 10.0, 60.0, 60.0)
    everything = index.search([base], "m1", top_k=10, threshold=0.5, strong=True, include_all_states=True)[0]
    assert {m.face_id for m in everything} == {faces[0].face_id, faces[1].face_id, faces[2].face_id}


def test_filters_delete_and_suppression(index):
    rng = np.random.default_rng(4)
    a = [make_face(rng.normal(size=512), source="src-a", n=i) for i in range(3)]
    b = [make_face(rng.normal(size=512), source="src-b", n=10 + i) for i in range(2)]
    index.upsert(a + b)
    assert index.count(source_id="src-a") == 3
    assert sorted(index.face_ids(source_id="src-b")) == sorted(f.face_id for f in b)
    only_b = index.search([a[0].embedding], "m1", 10, -1.0, source_ids=["src-b"], strong=True)[0]
    assert {m.source_id for m in only_b} == {"src-b"}
    assert index.delete_where(source_id="src-a") == 3
    assert index.count() == 2
    with pytest.raises(RecordError, match="not a valid identifier"):  # an injection is refused, not quoted
        index.search([a[0].embedding], "m1", 10, 0.0, source_ids=['src-b" or source_id != "x'])
    person = rng.normal(size=512)
    index.suppress([person], "m1", "req-1")
    assert index.suppressed_score([person + rng.normal(scale=0.05, size=512)], "m1", strong=True)[0] > 0.9
    assert index.suppressed_score([person], "other", strong=True)[0] == -1.0


def test_zero_embedding_and_bad_ids_rejected(index):
    with pytest.raises(VectorStoreError):
        index.search([[0.0] * 512], "m1", 5, 0.0)
    with pytest.raises(VectorStoreError):
        index.get(["not-hex"])


def test_schema_checked_on_later_start(stack):
    name = f"f_{uuid.uuid4().hex[:8]}"
    FaceIndex(MilvusVectorStore(stack.milvus_uri), IndexConfig(collection=name)).ensure()
    with pytest.raises(SchemaMismatch):
        FaceIndex(MilvusVectorStore(stack.milvus_uri), IndexConfig(collection=name, dim=128)).ensure()


def _names():
    return {"collection": f"f_{uuid.uuid4().hex[:8]}", "suppression_collection": f"s_{uuid.uuid4().hex[:8]}"}


def test_index_settings_come_from_settings():
    from consentry.core.settings import load_settings

    hnsw = IndexConfig.from_settings(load_settings(milvus_hnsw_m=24, milvus_search_ef=96)).index_spec()
    assert (hnsw.index_type, hnsw.metric) == ("HNSW", "COSINE")
    assert hnsw.build_params == {"M": 24, "efConstruction": 100} and hnsw.search_params == {"ef": 96}
    ivf = IndexConfig.from_settings(load_settings(milvus_index_type="IVF_FLAT", milvus_ivf_nlist=64,
                                                  milvus_ivf_nprobe=8)).index_spec()
    assert ivf.index_type == "IVF_FLAT" and ivf.build_params == {"nlist": 64} and ivf.search_params == {"nprobe": 8}


@pytest.mark.parametrize("index_type", ["HNSW", "IVF_FLAT"])
def test_schema_and_index_on_both_milvus_flavours(milvus_uri, index_type):
    import dataclasses
    import threading

    cfg = dataclasses.replace(IndexConfig(index_type=index_type, ivf_nlist=16, ivf_nprobe=16), **_names())
    index = FaceIndex(MilvusVectorStore(milvus_uri), cfg)
    errors = []

    def ensure():  # the API's threads ensure the collections at once on first use
        try:
            index.ensure()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ensure) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    client = index.store.client
    desc = client.describe_index(cfg.collection, client.list_indexes(cfg.collection)[0])
    assert desc["index_type"] == index_type and desc["metric_type"] == "COSINE"
    rng = np.random.default_rng(5)
    person = rng.normal(size=512)
    faces = [make_face(person + rng.normal(scale=0.3, size=512), n=i) for i in range(3)]
    faces += [make_face(rng.normal(size=512), n=10 + i) for i in range(20)]
    assert index.upsert(faces) == 23
    hits = index.search([person], "m1", top_k=5, threshold=0.5, strong=True)[0]
    assert {m.face_id for m in hits} == {f.face_id for f in faces[:3]}
    # a later start checks the schema: same config is fine, another dimension is a clear error
    FaceIndex(MilvusVectorStore(milvus_uri), cfg).ensure()
    with pytest.raises(SchemaMismatch, match="dim"):
        FaceIndex(MilvusVectorStore(milvus_uri), dataclasses.replace(cfg, dim=128)).ensure()
