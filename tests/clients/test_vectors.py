import uuid

import numpy as np
import pytest

from consentry.clients.vectors import CollectionSpec, Cond, FieldSpec, IndexSpec, MilvusVectorStore, literal, render
from consentry.core.errors import SchemaMismatch, VectorStoreError
from tests.fakes import MemoryVectorStore


def spec(name, dim=16):
    return CollectionSpec(name, (FieldSpec("id", "varchar", primary=True), FieldSpec("v", "vector", dim=dim),
                                 FieldSpec("src", "varchar"), FieldSpec("n", "int64")),
                          IndexSpec("HNSW", build_params={"M": 8, "efConstruction": 64}, search_params={"ef": 64}))


@pytest.fixture(params=["embedded", "server", "memory"])
def store_and_uri(request):
    if request.param == "memory":
        return MemoryVectorStore()
    if request.param == "server":
        return MilvusVectorStore(request.getfixturevalue("milvus_server"))
    return MilvusVectorStore(request.getfixturevalue("stack").milvus_uri)


def test_insert_search_filter_delete(store_and_uri):
    vs = store_and_uri
    sp = spec(f"c_{uuid.uuid4().hex[:8]}")
    rng = np.random.default_rng(1)
    v = rng.normal(size=(50, 16)).astype("float32")
    rows = [{"id": f"f{i}", "v": v[i].tolist(), "src": "a" if i % 2 else "b", "n": i} for i in range(50)]
    assert vs.upsert(sp, rows) == 50
    assert vs.upsert(sp, rows[:5]) == 5  # upsert by primary key: no duplicates
    assert vs.count(sp) == 50
    hits = vs.search(sp, [v[7].tolist()], top_k=3, output_fields=["src"], strong=True)[0]
    assert hits[0].id == "f7" and hits[0].score > 0.99 and hits[0].entity["src"] == "a"
    only_b = vs.search(sp, [v[7].tolist()], top_k=5, where=[Cond("src", "==", "b")], strong=True)[0]
    assert only_b and all(int(h.id[1:]) % 2 == 0 for h in only_b)
    assert vs.count(sp, [Cond("n", ">=", 40)]) == 10
    assert vs.delete(sp, ["f7", "f8"]) == 2
    assert vs.count(sp) == 48
    assert vs.search(sp, [v[7].tolist()], top_k=1, strong=True)[0][0].id != "f7"
    vs.drop(sp)


def test_schema_mismatch_is_a_clear_error(store_and_uri):
    vs = store_and_uri
    name = f"c_{uuid.uuid4().hex[:8]}"
    vs.upsert(spec(name, 16), [{"id": "x", "v": [0.1] * 16, "src": "a", "n": 1}])
    if isinstance(vs, MilvusVectorStore):
        vs = MilvusVectorStore(vs.uri)  # a later start, with a different model's dimension
    with pytest.raises(SchemaMismatch) as ei:
        vs.ensure_collection(spec(name, 32))
    assert "dim" in str(ei.value) or "schema" in str(ei.value)
    vs.drop(spec(name, 16))


def test_filter_values_are_quoted_never_pasted():
    sp = spec("x")
    expr = render(sp, [Cond("src", "==", 'a" or id != "')])
    assert expr == 'src == "a\\" or id != \\""'
    assert literal(["a", 1, 2.5]) == '["a", 1, 2.5]'
    with pytest.raises(VectorStoreError):
        render(sp, [Cond("src or 1==1", "==", "a")])
    with pytest.raises(VectorStoreError):
        render(sp, [Cond("src", "==", "a\nb")])


def test_injection_is_a_literal_on_real_milvus(stack):
    vs = MilvusVectorStore(stack.milvus_uri)
    sp = spec(f"c_{uuid.uuid4().hex[:8]}")
    vs.upsert(sp, [{"id": "x", "v": [0.1] * 16, "src": "a", "n": 1}])
    assert vs.count(sp, [Cond("src", "==", 'a" or src != "')]) == 0
    assert vs.count(sp, [Cond("src", "==", "a")]) == 1
    vs.drop(sp)


def test_iterate_pages_past_the_query_window(store_and_uri):
    vs = store_and_uri
    sp = spec(f"c_{uuid.uuid4().hex[:8]}", dim=4)
    rows = [{"id": f"f{i}", "v": [1.0, float(i), 0.5, 0.25], "src": "a", "n": i} for i in range(2500)]
    vs.upsert(sp, rows)
    seen = [r["id"] for batch in vs.iterate(sp, ["id", "n"], batch=1000) for r in batch]
    assert sorted(seen) == sorted(r["id"] for r in rows)
    vs.drop(sp)


def test_iterate_splits_key_space_past_the_window(stack, monkeypatch):
    vs = MilvusVectorStore(stack.milvus_uri)
    monkeypatch.setattr(MilvusVectorStore, "QUERY_WINDOW", 40)  # force the prefix split on a small collection
    sp = spec(f"c_{uuid.uuid4().hex[:8]}", dim=4)
    rows = [{"id": f"{i:x}", "v": [1.0, float(i), 0.5, 0.25], "src": "a", "n": i} for i in range(300)]
    vs.upsert(sp, rows)
    seen = [r["id"] for batch in vs.iterate(sp, ["n"], batch=50, where=[Cond("n", ">=", 10)]) for r in batch]
    assert sorted(seen) == sorted(r["id"] for r in rows if r["n"] >= 10)
    vs.drop(sp)


def test_unreachable_milvus_is_transient_bad_requests_are_not():
    from consentry.clients.vectors import is_transient

    assert is_transient("<MilvusException: (code=2, message=Fail connecting to server on 127.0.0.1:1, "
                        "illegal connection params or server unavailable)>")
    assert is_transient("Collection 'x' is in state 'released'; call load() before search/get/query")
    assert not is_transient("collection not found[collection=x]: collection does not exist")
    assert not is_transient("cannot parse expression: src ==")
    assert not is_transient("the dim (32) of field data(v) is not equal to schema dim (16)")
