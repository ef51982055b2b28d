"""The erasure endpoints (role privacy) over real HTTP, on real Milvus and S3."""

import time

import pytest

from consentry.indexer.auth import Role

from ..indexer.corpus import SOURCE, detected, face_model, index_corpus  # noqa: F401  (fixtures)
from .conftest import Api, LiveServer, api_settings


@pytest.fixture(scope="module")
def erasure_api(stack, face_model, detected):  # noqa: F811
    from consentry.indexer.api import create_app
    from consentry.wiring import indexer_services

    s = api_settings(stack)
    svc = indexer_services(s, model_loader=lambda: face_model, token_cache_s=0)
    faces = index_corpus(svc.index, svc.provenance, detected, face_model.model_id)
    tokens = {role.value: svc.tokens.create(f"{role.value}-1", role)[1] for role in Role}
    with LiveServer(create_app(s, svc)) as server:
        yield Api(server.url, s, svc, faces, tokens)


def test_only_privacy_may_erase(erasure_api, photos):
    for role in ("searcher", "operator", "auditor"):
        r = erasure_api.client(role).post("/v1/erasures", json={"source": SOURCE})
        assert r.status_code == 403 and r.json()["error"]["code"]
    assert erasure_api.client().post("/v1/erasures", json={"source": SOURCE}).status_code == 401


def test_bad_erasure_requests_are_422(erasure_api):
    c = erasure_api.client("privacy")
    for body in ({}, {"source": SOURCE, "job": "j"}, {"source": 'a" or source_id != "'}, {"url": "file:///x"},
                 {"nope": 1}, {"source": SOURCE, "reference": "DSAR\nforged line"}):
        r = c.post("/v1/erasures", json=body)
        assert r.status_code == 422, body
    assert c.get("/v1/erasures/er-20260101-000000000000").status_code == 404
    assert c.get("/v1/erasures/not-a-receipt").status_code == 422


def test_forget_by_photo_over_http(erasure_api, photos):
    api = erasure_api
    obama = {f.face_id for n in ("obama.jpg", "obama2.jpg", "obama3.jpg") for f in api.faces[n]}
    before = api.services.index.count()
    with open(photos["obama2.jpg"], "rb") as fh:
        r = api.client("privacy").post("/v1/erasures/photo", files={"photo": ("ref.jpg", fh, "image/jpeg")},
                                       data={"reference": "DSAR-2026-77"})
    assert r.status_code == 200, r.text
    receipt = r.json()
    assert set(receipt["matched_face_ids"]) == obama and receipt["verification"]["ok"]  # small: exact before answering
    assert receipt["verification"]["compared"] == before - 3 and receipt["status"] in ("verified", "purged")
    assert receipt["deleted"]["milvus_faces"] == 3 and len(receipt["target"]) == 64
    assert receipt["reference"] == "DSAR-2026-77" and receipt["timings"]["erase_s"] > 0
    assert api.services.index.count() == before - 3
    # the purge runs after the answer; the stored receipt follows it
    deadline = time.monotonic() + 120
    while True:
        got = api.client("privacy").get(f"/v1/erasures/{receipt['request_id']}")
        assert got.status_code == 200
        done = got.json()
        if done["status"] == "purged" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert done["status"] == "purged" and done["verification"] == receipt["verification"]
    assert done["matched_face_ids"] == receipt["matched_face_ids"]
    assert done["purge"]["milvus"]["state"] == "unsupported" and done["purge"]["s3"]["versioning"] == "off"
    audit = [e for e in api.services.audit.entries() if e["details"].get("request_id") == receipt["request_id"]]
    assert [e["action"] for e in audit] == ["erasure", "erasure-finished"]
    assert all(e["details"]["reference"] == "DSAR-2026-77" for e in audit)
    with open(photos["obama3.jpg"], "rb") as fh:
        s = api.client("searcher").post("/v1/search/photo", data={"purpose": "check erasure", "case": "C-1"},
                                        files={"photo": ("q.jpg", fh, "image/jpeg")})
    assert s.status_code == 200 and all(not q["hits"] for q in s.json()["query_faces"])
    with open(photos["t1.jpg"], "rb") as fh:  # the erasure of one person leaves the others searchable
        s = api.client("searcher").post("/v1/search/photo", data={"purpose": "check others", "case": "C-1"},
                                        files={"photo": ("q.jpg", fh, "image/jpeg")})
    assert sum(1 for q in s.json()["query_faces"] if q["hits"]) == 6


def test_forget_source_over_http(erasure_api):
    api = erasure_api
    r = api.client("privacy").post("/v1/erasures", json={"source": SOURCE, "reference": "DSAR-2026-78"})
    assert r.status_code == 200, r.text
    assert r.json()["verification"]["ok"] and api.services.index.count(source_id=SOURCE) == 0
    assert r.json()["verification"]["method"].startswith("exact: count") and r.json()["reference"] == "DSAR-2026-78"
