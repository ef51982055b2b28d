"""The query API over real HTTP (uvicorn on 127.0.0.1): auth, roles, search, bounds, errors, metrics."""

import io
import socket
from unittest.mock import ANY

import numpy as np
import pytest

from consentry.indexer.auth import Role

from .conftest import LiveServer, api_settings

PURPOSE = {"purpose": "identify the subject of complaint 7", "case": "CASE-7"}


def _error(r, status, code=None):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["message"]
    if code:
        assert err["code"] == code, err
    return err




def _ids(api, *names):
    return {f.face_id for n in names for f in api.faces[n]}


def test_health_readiness_docs_and_openapi(api):
    import jsonschema
    from schemathesis.specs.openapi.definitions import OPENAPI_31

    with api.client() as c:
        pack = api.settings.model_pack
        assert c.get("/healthz").json() == {"status": "ok", "model_pack": pack,
                                            "model_licence": "InsightFace pretrained weights: non-commercial "
                                                             "research use only" if pack == "buffalo_s" else ANY}
        r = c.get("/readyz")
        assert r.status_code == 200 and r.json()["ready"] is True
        assert set(r.json()["checks"]) == {"milvus", "s3"}
        spec = c.get("/openapi.json").json()
        jsonschema.Draft202012Validator(OPENAPI_31).validate(spec)  # a valid OpenAPI 3.1 document
        assert {"/v1/search/photo", "/v1/search/face", "/v1/faces/{face_id}", "/v1/images/{url_key}",
                "/v1/audit/entries", "/v1/audit/verify", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
        assert "HTTPBearer" in spec["components"]["securitySchemes"]
        top_k = spec["components"]["schemas"]["FaceSearchBody"]["properties"]["top_k"]["anyOf"][0]
        assert top_k["maximum"] == api.settings.api_max_top_k  # this server's bounds are in its schema
        docs = c.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_missing_bad_and_revoked_tokens_get_401_json(api):
    with api.client() as c:
        for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic YTpi"},
                        {"Authorization": "Bearer " + api.tokens["searcher"][:-4] + "AAAA"},
                        {"Authorization": f"Bearer {api.tokens['revoked']}"}):
            r = c.get("/v1/audit/verify", headers=headers)
            _error(r, 401, "unauthorized")
            assert r.headers["www-authenticate"] == "Bearer"
        r = c.post("/v1/search/photo", data=PURPOSE, files={"photo": ("x.jpg", b"not read")})
        _error(r, 401, "unauthorized")


def test_wrong_role_gets_403_json(api, photos):
    photo = photos["obama.jpg"].read_bytes()
    for role in ("auditor", "operator", "privacy"):
        with api.client(role) as c:
            err = _error(c.post("/v1/search/photo", data=PURPOSE, files={"photo": ("o.jpg", photo)}), 403,
                         "forbidden")
            assert "searcher" in err["message"]
    with api.client("searcher") as c:
        _error(c.get("/v1/audit/entries"), 403, "forbidden")
        _error(c.get("/v1/audit/verify"), 403, "forbidden")
    with api.client("auditor") as c:
        _error(c.get(f"/v1/faces/{next(iter(_ids(api, 'obama.jpg')))}"), 403, "forbidden")


def test_search_by_photo_over_http(api, photos):
    with api.client("searcher") as c:
        r = c.post("/v1/search/photo", data={**PURPOSE, "top_k": "5"},
                   files={"photo": ("obama2.jpg", photos["obama2.jpg"].read_bytes(), "image/jpeg")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["by"] == "photo" and body["case"] == "CASE-7" and body["top_k"] == 5
        hits = body["query_faces"][0]["hits"]
        assert {h["face_id"] for h in hits} == _ids(api, "obama.jpg", "obama2.jpg", "obama3.jpg")
        h = next(h for h in hits if h["face_id"] in _ids(api, "obama3.jpg"))
        assert h["image"]["url"] == "http://photos.test/img/obama3.jpg"
        assert h["image"]["page_url"] == "http://photos.test/gallery/obama3.jpg.html"
        assert h["image"]["source_id"] == "press-archive" and h["image"]["fetched_at"].startswith("2026-01-15")
        assert 0.35 <= h["score"] < 0.95
        # purpose and case are required over the API
        for missing in ("purpose", "case"):
            form = {k: v for k, v in PURPOSE.items() if k != missing}
            err = _error(c.post("/v1/search/photo", data=form, files={"photo": ("o.jpg", b"x")}), 422,
                         "invalid-request")
            assert missing in err["message"]
        _error(c.post("/v1/search/photo", data={**PURPOSE, "top_k": "101"},
                      files={"photo": ("o.jpg", photos["obama.jpg"].read_bytes())}), 422, "invalid-request")
        _error(c.post("/v1/search/photo", data={**PURPOSE, "threshold": "0.1"},
                      files={"photo": ("o.jpg", photos["obama.jpg"].read_bytes())}), 422, "invalid-request")
    entry = next(e for e in api.services.audit.entries() if e["seq"] == body["audit_seq"])
    assert entry["actor"].startswith("token:searcher-1/") and entry["details"]["case"] == "CASE-7"


def test_search_by_face_id_get_and_post(api):
    fid = api.faces["obama2.jpg"][0].face_id
    with api.client("searcher") as c:
        r = c.get(f"/v1/search/face/{fid}", params=PURPOSE)
        assert r.status_code == 200, r.text
        assert {h["face_id"] for h in r.json()["query_faces"][0]["hits"]} == _ids(api, "obama.jpg", "obama3.jpg")
        r2 = c.post("/v1/search/face", json={"face_id": fid, **PURPOSE})
        assert r2.status_code == 200 and r2.json()["query_faces"][0]["hits"] == r.json()["query_faces"][0]["hits"]
        _error(c.get(f"/v1/search/face/{'0' * 64}", params=PURPOSE), 404, "not-found")
        # biden's face is withdrawn: not usable as a query, not visible
        _error(c.get(f"/v1/search/face/{api.faces['biden.jpg'][0].face_id}", params=PURPOSE), 404, "not-found")
        _error(c.get("/v1/search/face/not-a-face-id", params=PURPOSE), 422, "invalid-request")
        _error(c.post("/v1/search/face", json={"face_id": fid, **PURPOSE, "extra": 1}), 422, "invalid-request")
        _error(c.post("/v1/search/face", content=b"{not json", headers={"content-type": "application/json"}), 422)


def test_bad_uploads_get_clear_4xx(api):
    from PIL import Image

    limit = api.settings.api_max_upload_bytes
    with api.client("searcher") as c:
        def post(content, **kw):
            return c.post("/v1/search/photo", data=PURPOSE, files={"photo": ("p.jpg", content)}, **kw)

        assert "HTML" in _error(post(b"<html><body>hello</body></html>"), 415)["message"]
        _error(post(b"GIF8 or something else entirely"), 415)
        _error(post(b""), 415, "empty")
        _error(post(b"\xff\xd8\xff\xe0" + b"\x00" * 200), 422)  # a truncated JPEG
        grey = io.BytesIO()
        Image.fromarray(np.full((240, 240, 3), 128, np.uint8)).save(grey, "PNG")
        err = _error(post(grey.getvalue()), 422, "no-face")
        assert "no face" in err["message"]
        # just over the photo limit, within the multipart allowance: refused by the route
        _error(post(b"\xff\xd8\xff" + b"\x00" * (limit + 10)), 413, "too-large")
        # twice the limit, with a Content-Length: refused without parsing it
        _error(post(b"\x00" * (limit * 2)), 413, "too-large")

    # streamed without a Content-Length: cut off once it passes the bound
    def chunks():
        yield b"--b\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.jpg\"\r\n\r\n"
        for _ in range(limit * 3 // 2 // 65536):
            yield b"\x00" * 65536

    with api.client("searcher") as c:
        r = c.post("/v1/search/photo", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
        _error(r, 413, "too-large")


def test_huge_declared_body_is_refused_without_reading_it(api):
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v1/search/photo HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                     b"Authorization: Bearer " + api.tokens["searcher"].encode() + b"\r\n"
                     b"Content-Length: 10000000000\r\n\r\n")  # 10 GB announced, nothing sent
        reply = b""
        while b"}}" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413 ") and b'"too-large"' in reply


def test_injection_in_filters_is_rejected(api, photos):
    evil = 'a" or source_id != "'
    photo = photos["obama.jpg"].read_bytes()
    fid = api.faces["obama2.jpg"][0].face_id
    with api.client("searcher") as c:
        r = c.post("/v1/search/photo", data={**PURPOSE, "source": evil}, files={"photo": ("o.jpg", photo)})
        assert "source" in _error(r, 422, "invalid-request")["message"]
        _error(c.get(f"/v1/search/face/{fid}", params={**PURPOSE, "source": evil}), 422, "invalid-request")
        _error(c.get(f"/v1/search/face/{fid}", params={**PURPOSE, "job": "x) or (1 == 1"}), 422)
        _error(c.post("/v1/search/face", json={"face_id": fid, **PURPOSE, "source": [evil]}), 422)
        _error(c.get(f"/v1/search/face/{fid}", params={**PURPOSE, "case": "C-1\nforged"}), 422)
        # a well-formed id that matches nothing is a literal: no results, not everything
        r = c.post("/v1/search/photo", data={**PURPOSE, "source": "a"}, files={"photo": ("o.jpg", photo)})
        assert r.status_code == 200 and r.json()["query_faces"][0]["hits"] == []
        r = c.post("/v1/search/photo", data={**PURPOSE, "source": ["nobody", "press-archive"]},
                   files={"photo": ("o.jpg", photo)})
        assert len(r.json()["query_faces"][0]["hits"]) == 3


def test_face_and_image_details_with_provenance(api):
    face = api.faces["obama.jpg"][0]
    withdrawn = api.faces["biden.jpg"][0]
    with api.client("searcher") as c:
        d = c.get(f"/v1/faces/{face.face_id}").json()
        assert d["consent_state"] == "granted" and d["image"]["url"] == "http://photos.test/img/obama.jpg"
        assert d["source_id"] == "press-archive" and len(d["bbox"]) == 4
        _error(c.get(f"/v1/faces/{withdrawn.face_id}"), 404, "not-found")
        img = c.get(f"/v1/images/{face.url_key}").json()
        assert img["face_ids"] == [face.face_id] and img["provenance"]["page_url"].endswith("obama.jpg.html")
        _error(c.get(f"/v1/images/{'1' * 64}"), 404, "not-found")
        _error(c.get("/v1/images/..%2f..%2fetc"), 404)
        img = c.get(f"/v1/images/{withdrawn.url_key}").json()  # the image is known, its withdrawn face is not shown
        assert img["face_ids"] == [] and img["provenance"]["faces"] == []
    with api.client("privacy") as c:  # privacy officers see faces whatever their consent state
        assert c.get(f"/v1/faces/{withdrawn.face_id}").json()["consent_state"] == "withdrawn"
        assert c.get(f"/v1/images/{withdrawn.url_key}").json()["face_ids"] == [withdrawn.face_id]


def test_audit_endpoints_for_auditors(api):
    with api.client("searcher") as c:
        assert c.get(f"/v1/search/face/{api.faces['obama.jpg'][0].face_id}", params=PURPOSE).status_code == 200
    with api.client("auditor") as c:
        r = c.get("/v1/audit/entries", params={"limit": 1000})
        assert r.status_code == 200
        searches = [e for e in r.json()["entries"] if e["action"] == "search"]
        assert searches and all(e["details"]["purpose"] and e["details"]["case"] for e in searches)
        assert c.get("/v1/audit/entries", params={"since": "2100-01-01T00:00:00Z"}).json()["count"] == 0
        _error(c.get("/v1/audit/entries", params={"since": "2026-02-01", "until": "2026-01-01"}), 422)
        _error(c.get("/v1/audit/entries", params={"limit": 0}), 422, "invalid-request")
        v = c.get("/v1/audit/verify").json()
        assert {k: v[k] for k in ("ok", "entries", "problem", "entry")} == {
            "ok": True, "entries": r.json()["count"], "problem": None, "entry": None}
        assert v["checkpoints"].startswith("file://") and 1 <= v["checkpoint_seq"] <= v["entries"]


def test_unknown_routes_and_methods_are_json(api):
    with api.client("searcher") as c:
        _error(c.get("/v1/nothing-here"), 404, "not-found")
        _error(c.delete("/v1/search/face"), 405, "method-not-allowed")


def test_metrics_count_requests_by_route(api):
    with api.client("searcher") as c:
        c.get(f"/v1/faces/{api.faces['obama.jpg'][0].face_id}")
        c.get("/v1/audit/verify")
    with api.client() as c:
        text = c.get("/metrics").text
    assert 'consentry_api_requests_total{method="GET",route="/v1/faces/{face_id}",status="200"}' in text
    assert 'consentry_api_requests_total{method="GET",route="/v1/audit/verify",status="403"}' in text
    assert "consentry_api_request_duration_seconds_bucket" in text
    assert 'consentry_api_searches_total{by="photo"}' in text
    assert 'consentry_api_auth_failures_total{status="401"}' in text


def test_rate_limit_per_token(stack, face_model):
    from consentry.indexer.api import create_app
    from consentry.wiring import indexer_services

    s = api_settings(stack, api_rate_limit_per_minute=3)
    svc = indexer_services(s, model_loader=lambda: face_model, token_cache_s=0)
    a, b = (svc.tokens.create(n, Role.AUDITOR)[1] for n in ("a", "b"))
    with LiveServer(create_app(s, svc)) as server:
        import httpx

        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {a}"}) as c:
            assert [c.get("/v1/audit/verify").status_code for _ in range(3)] == [200, 200, 200]
            r = c.get("/v1/audit/verify")
            _error(r, 429, "rate-limited")
            assert int(r.headers["retry-after"]) >= 1
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {b}"}) as c:
            assert c.get("/v1/audit/verify").status_code == 200  # another token has its own budget


@pytest.mark.slow
def test_readiness_is_503_when_milvus_is_unreachable(stack, face_model):
    from consentry.indexer.api import create_app
    from consentry.wiring import indexer_services

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    s = api_settings(stack, milvus_uri=f"http://127.0.0.1:{dead}")
    svc = indexer_services(s, model_loader=lambda: face_model, token_cache_s=0)
    token = svc.tokens.create("s", Role.SEARCHER)[1]
    with LiveServer(create_app(s, svc)) as server:
        import httpx

        with httpx.Client(base_url=server.url, timeout=30) as c:
            assert c.get("/healthz").status_code == 200  # alive, but not ready
            r = c.get("/readyz")
            assert r.status_code == 503
            body = r.json()
            assert body["ready"] is False and body["checks"]["milvus"]["ok"] is False
            assert body["checks"]["s3"]["ok"] is True and body["error"]["code"] == "not-ready"
            r = c.get(f"/v1/search/face/{'a' * 64}", params=PURPOSE, headers={"Authorization": f"Bearer {token}"})
            _error(r, 503, "unavailable")


def test_readiness_is_503_when_s3_is_unreachable(stack, face_model):
    """S3 down (issue 16): /readyz names it and stays up; Milvus is still ready; requests get 503, not 500."""
    from consentry.indexer.api import create_app
    from consentry.wiring import indexer_services

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    s = api_settings(stack).model_copy(update={"s3_endpoint": f"http://127.0.0.1:{dead}", "retry_max_attempts": 2,
                                               "retry_base_delay_s": 0.05})
    svc = indexer_services(s, model_loader=lambda: face_model, token_cache_s=0)
    with LiveServer(create_app(s, svc)) as server:
        import httpx

        with httpx.Client(base_url=server.url, timeout=60) as c:
            assert c.get("/healthz").status_code == 200
            r = c.get("/readyz")
            assert r.status_code == 503
            body = r.json()
            assert body["ready"] is False and body["checks"]["s3"]["ok"] is False
            assert f"127.0.0.1:{dead}" in body["checks"]["s3"]["error"] and body["checks"]["milvus"]["ok"] is True
            assert "s3" in body["error"]["message"]
            token = f"cst_{'0' * 16}_{'x' * 43}"  # well formed: its record is in S3, which is down
            r = c.get(f"/v1/search/face/{'a' * 64}", params=PURPOSE, headers={"Authorization": f"Bearer {token}"})
            _error(r, 503, "unavailable")
