"""Two `consentry api serve` processes on the same S3 and Milvus 2.3 server, over real HTTP: an erasure
answered by replica A is invisible to replica B's very next search (searches run at Bounded consistency;
hits are checked against provenance, which the erasure changed before answering)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from consentry.indexer.auth import Role

from ..indexer.corpus import detected, face_model, index_corpus  # noqa: F401  (fixtures)
from .conftest import api_settings

pytestmark = [pytest.mark.milvus_server, pytest.mark.slow]
FORM = {"purpose": "check the erasure reached every replica", "case": "DSAR-2026-5"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    def __init__(self, settings, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "CONSENTRY_HOME": str(settings.home), "CONSENTRY_S3_ENDPOINT": settings.s3_endpoint,
               "CONSENTRY_S3_BUCKET": settings.s3_bucket, "CONSENTRY_MILVUS_URI": settings.milvus_uri,
               "CONSENTRY_MILVUS_COLLECTION": settings.milvus_collection,
               "CONSENTRY_MILVUS_SUPPRESSION_COLLECTION": settings.milvus_suppression_collection,
               "CONSENTRY_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "CONSENTRY_TOPIC_PREFIX": settings.topic_prefix,
               "CONSENTRY_API_RATE_LIMIT_PER_MINUTE": "100000", "CONSENTRY_LOG_LEVEL": "WARNING"}
        self.proc = subprocess.Popen([sys.executable, "-m", "consentry.cli.main", "api", "serve", "--port", str(port)],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"api serve exited: {self.proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("api serve did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def replicas(stack, milvus_server, face_model, detected):  # noqa: F811
    from consentry.wiring import indexer_services

    s = api_settings(stack, milvus_uri=milvus_server)
    svc = indexer_services(s, model_loader=lambda: face_model, token_cache_s=0)
    faces = index_corpus(svc.index, svc.provenance, detected, face_model.model_id)
    tokens = {role: svc.tokens.create(f"{role.value}-r", role)[1] for role in (Role.SEARCHER, Role.PRIVACY)}
    a, b = Replica(s, _free_port()), Replica(s, _free_port())
    try:
        a.wait_ready()
        b.wait_ready()
        yield a, b, faces, tokens
    finally:
        a.stop()
        b.stop()


def test_an_erasure_on_replica_a_is_invisible_to_replica_bs_very_next_search(replicas, photos):
    a, b, faces, tokens = replicas
    obama = {f.face_id for n in ("obama.jpg", "obama2.jpg", "obama3.jpg") for f in faces[n]}
    searcher = {"Authorization": f"Bearer {tokens[Role.SEARCHER]}"}
    query = faces["obama.jpg"][0].face_id
    with httpx.Client(base_url=b.url, headers=searcher, timeout=120) as cb:
        # B is warm: its model is loaded and Milvus has served it the person's faces
        with open(photos["obama3.jpg"], "rb") as fh:
            r = cb.post("/v1/search/photo", data=FORM, files={"photo": ("q.jpg", fh, "image/jpeg")})
        assert r.status_code == 200, r.text
        assert {h["face_id"] for h in r.json()["query_faces"][0]["hits"]} == obama
        assert cb.get(f"/v1/search/face/{query}", params=FORM).status_code == 200

        with open(photos["obama2.jpg"], "rb") as fh:
            erased = httpx.post(f"{a.url}/v1/erasures/photo", files={"photo": ("ref.jpg", fh, "image/jpeg")},
                                data={"reference": "DSAR-2026-5"},
                                headers={"Authorization": f"Bearer {tokens[Role.PRIVACY]}"}, timeout=120)
        assert erased.status_code == 200, erased.text
        assert set(erased.json()["matched_face_ids"]) == obama

        # B's very next searches: by photo, nobody; by the erased face's id, not found
        with open(photos["obama3.jpg"], "rb") as fh:
            r = cb.post("/v1/search/photo", data=FORM, files={"photo": ("q.jpg", fh, "image/jpeg")})
        assert r.status_code == 200 and r.json()["query_faces"][0]["hits"] == []
        assert cb.get(f"/v1/search/face/{query}", params=FORM).status_code == 404
        assert cb.get(f"/v1/faces/{query}").status_code == 404
        # someone else is still found
        other = faces["t1.jpg"][0].face_id
        assert cb.get(f"/v1/faces/{other}").status_code == 200
