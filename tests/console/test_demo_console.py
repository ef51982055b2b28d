"""`consentry demo --keep` leaves the console running on the demo data: its URL and a token per role."""

from __future__ import annotations

import os
import re
import uuid

import httpx

from consentry.demo.runner import CONSOLE_ROLES, Demo, console_process
from tests.conftest import PORT_BASE

LANDING = {"searcher": "/console/search", "privacy": "/console/erase", "auditor": "/console/explain",
           "operator": "/console/explain"}


def test_demo_keep_serves_the_console_with_a_token_per_role(stack):
    from consentry.wiring import object_store

    bucket = f"demo-console-{uuid.uuid4().hex[:8]}"
    object_store(stack.model_copy(update={"s3_bucket": bucket})).ensure_bucket()
    lines: list[str] = []
    demo = Demo(stack.model_copy(update={"api_port": PORT_BASE + 3100}), keep=True, echo=lines.append)
    demo.env = {**os.environ, "CONSENTRY_S3_BUCKET": bucket}
    console = demo.serve_console()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/console", console["url"])
        assert sorted(console["tokens"]) == sorted(CONSOLE_ROLES)
        assert httpx.get(console["url"] + "/login").status_code == 200
        for role, token in console["tokens"].items():
            r = httpx.post(console["url"] + "/login", data={"token": token})
            assert r.status_code == 303 and r.headers["location"] == LANDING[role], role
        assert any("api serve" in line for line in lines)
    finally:
        assert console_process(demo.s).stop()
