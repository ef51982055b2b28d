"""The console's end-to-end world: a local photo site crawled and ingested with the real CLI on the session
stack, tokens for every role, and the API (with the console) served by uvicorn on 127.0.0.1.

The site is the demo site (consentry.demo.site) plus an ``/xss/`` area whose page title, alt text and
image URL carry script injections aimed at a recording server (``Recorder``): if any of them ran, or
loaded anything, the recorder would see a request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

from consentry.core.settings import Settings
from consentry.demo.site import DemoSite, Resource

from .browser import Recorder


def xss_page(target: str) -> bytes:
    """A gallery page whose title, alt text and image URL each try to run script against ``target``.

    The attributes are single-quoted, so their payloads use backticks where a script needs quotes.
    """
    title = f"\"><script>fetch('{target}/title')</script><img src=x onerror=\"fetch('{target}/title-img')\">"
    alt = f"\"><img src={target}/alt onerror=fetch(`{target}/alt-onerror`)><script>fetch(`{target}/alt`)</script>"
    src = (f"img/face.jpg?q=\"><script>fetch(`{target}/url`)</script>"
           f"&next=javascript:fetch(`{target}/js`)&d=data:text/html,<script>fetch(`{target}/data`)</script>")
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
            f"<h1>Gallery</h1><img src='{src}' alt='{alt}'></body></html>")
    return html.encode()


@dataclass
class World:
    settings: Settings
    env: dict[str, str]
    site: DemoSite
    recorder: Recorder
    url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    crawl: list[dict[str, Any]] = field(default_factory=list)
    ingest: dict[str, Any] = field(default_factory=dict)

    def cli(self, *args: str, expect: int = 0) -> Any:
        proc = subprocess.run([sys.executable, "-m", "consentry.cli.main", *args], env=self.env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == expect, f"consentry {' '.join(args)}: {proc.stderr[-2000:]}"
        return json.loads(proc.stdout) if "--json" in args else proc.stdout


def build_world(stack: Settings, photos: dict) -> World:
    tag = uuid.uuid4().hex[:10]
    s = stack.model_copy(update={
        "s3_bucket": f"console-{tag}", "milvus_collection": f"console_faces_{tag}",
        "milvus_suppression_collection": f"console_supp_{tag}", "topic_prefix": f"c{tag}.",
        "kafka_consumer_group": f"console-{tag}", "api_rate_limit_per_minute": 100_000})
    env = {**os.environ, "CONSENTRY_S3_BUCKET": s.s3_bucket, "CONSENTRY_MILVUS_COLLECTION": s.milvus_collection,
           "CONSENTRY_MILVUS_SUPPRESSION_COLLECTION": s.milvus_suppression_collection,
           "CONSENTRY_TOPIC_PREFIX": s.topic_prefix, "CONSENTRY_KAFKA_CONSUMER_GROUP": s.kafka_consumer_group,
           "CONSENTRY_ALLOW_PRIVATE_NETWORKS": "true", "CONSENTRY_INGEST_IDLE_SECONDS": "3"}
    from consentry.wiring import object_store

    object_store(s).ensure_bucket()
    recorder = Recorder()
    site = DemoSite(photos)
    site.resources["/xss/"] = Resource(xss_page(recorder.base), "text/html; charset=utf-8")
    site.resources["/xss/img/face.jpg"] = Resource(photos["biden.jpg"].read_bytes(), "image/jpeg")
    site.__enter__()
    w = World(s, env, site, recorder)
    w.cli("source", "add", "family", "--match", f"{site.base}/family/", "--basis", "consent",
          "--evidence", "CONSENT-FORMS-2026", "--retention-days", "365")
    w.cli("source", "add", "gallery", "--match", f"{site.base}/xss/", "--basis", "licence", "--evidence", "CC-BY-4.0")
    w.crawl = [w.cli("crawl", "start", "--source", "family", "--seed", f"{site.base}/family/", "--json"),
               w.cli("crawl", "start", "--source", "gallery", "--seed", f"{site.base}/xss/", "--json")]
    w.ingest = w.cli("ingest", "run", "--no-ray", "--until-idle", "--json")
    return w
