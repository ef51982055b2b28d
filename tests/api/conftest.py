"""A real uvicorn server on 127.0.0.1 serving the query API over the session stack (milvus-lite, SeaweedFS)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest

from consentry.core.records import ConsentState
from consentry.indexer.auth import Role

from ..indexer.corpus import detected, face_model, index_corpus  # noqa: F401  (fixtures)


class LiveServer:
    """uvicorn in a thread of the test process, on a port the OS picked."""

    def __init__(self, app) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def api_settings(stack, **overrides):
    """The session stack's settings with this module's own bucket and collections (created here)."""
    from consentry.clients.objectstore import S3Config, S3ObjectStore

    tag = uuid.uuid4().hex[:10]
    s = stack.model_copy(update={"s3_bucket": f"api-{tag}", "milvus_collection": f"api_faces_{tag}",
                                 "milvus_suppression_collection": f"api_supp_{tag}",
                                 "api_max_upload_bytes": 1024 * 1024, "api_rate_limit_per_minute": 100_000,
                                 **overrides})
    S3ObjectStore(S3Config.from_settings(s)).ensure_bucket()
    return s


@dataclass
class Api:
    url: str
    settings: object
    services: object
    faces: dict
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, role: str | None = None, **kw) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kw)


@pytest.fixture(scope="module")
def api(stack, face_model, detected):  # noqa: F811
    from consentry.indexer.api import create_app
    from consentry.wiring import indexer_services

    s = api_settings(stack)
    svc = indexer_services(s, model_loader=lambda: face_model, token_cache_s=0)
    faces = index_corpus(svc.index, svc.provenance, detected, face_model.model_id,
                         states={"biden.jpg": ConsentState.WITHDRAWN})
    tokens = {role.value: svc.tokens.create(f"{role.value}-1", role)[1] for role in Role}
    rec, tokens["revoked"] = svc.tokens.create("gone", Role.SEARCHER)
    svc.tokens.revoke(rec.id)
    with LiveServer(create_app(s, svc)) as server:
        yield Api(server.url, s, svc, faces, tokens)
