"""Helpers for the ingest tests on the real servers (SeaweedFS, tansu, milvus-lite)."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from consentry.catalog.provenance import ProvenanceStore
from consentry.catalog.sources import SourceRegistry
from consentry.clients.broker import KafkaBroker, KafkaConfig
from consentry.clients.objectstore import S3Config, S3ObjectStore
from consentry.clients.vectors import MilvusVectorStore
from consentry.core.records import Basis, DeadLetter, ImageCandidate, Source
from consentry.core.settings import Settings
from consentry.faceindex import FaceIndex, IndexConfig
from consentry.ingest.runner import IdlePolicy, ThreadPool, drive
from consentry.wiring import ingest_worker, prepare_ingest

from .site import Site

FAST = dict(ingest_idle_seconds=2.5, retry_base_delay_s=0.05, retry_max_delay_s=0.2, retry_max_attempts=3,
            fetch_timeout_s=5.0, kafka_max_poll_records=8)


def settings_for(stack: Settings, **kw: Any) -> Settings:
    """Settings on the session stack with topics, collections and group unique to the caller."""
    tag = uuid.uuid4().hex[:10]
    base = dict(topic_prefix=f"t{tag}.", milvus_collection=f"faces_{tag}", s3_bucket=f"ingest-{tag}",
                milvus_suppression_collection=f"suppressed_{tag}", kafka_consumer_group=f"g-{tag}", **FAST)
    base.update(kw)
    return stack.model_copy(update=base)


class Env:
    """Clients for one test's settings."""

    def __init__(self, s: Settings) -> None:
        self.s = s
        self.broker = KafkaBroker(KafkaConfig.from_settings(s))
        self.store = S3ObjectStore(S3Config.from_settings(s))
        self.index = FaceIndex(MilvusVectorStore(s.milvus_uri), IndexConfig.from_settings(s))
        self.provenance = ProvenanceStore(self.store)
        prepare_ingest(s)

    def with_(self, **kw: Any) -> Env:
        return Env(self.s.model_copy(update=kw))

    def add_sources(self, site: Site) -> None:
        reg = SourceRegistry(self.store)
        reg.put(Source(id="family", match=f"127.0.0.1:{site.port}", basis=Basis.CONSENT, retention_days=30))
        reg.put(Source(id="nobasis", match=f"127.0.0.1:{site.port}", basis=Basis.NONE))

    def produce(self, cands: list[ImageCandidate]) -> None:
        p = self.broker.producer()
        for c in cands:
            p.send(self.s.topic_images, c.key.encode(), c.to_json())
        p.flush()
        p.close()

    def run_threads(self, workers: int = 1, timeout_s: float = 120.0) -> dict[str, Any]:
        stop = threading.Event()
        timer = threading.Timer(timeout_s, stop.set)  # a safety net: never hang the suite
        timer.start()
        try:
            return drive(ThreadPool(lambda _k: ingest_worker(self.s), workers), stop, True,
                         IdlePolicy(self.s.ingest_idle_seconds, join_grace_s=10.0), tick_s=0.5)
        finally:
            timer.cancel()

    def read_topic(self, topic: str, quiet_s: float = 3.0, timeout_s: float = 30.0) -> list[Any]:
        """Every message on ``topic`` (fresh group), after ``quiet_s`` with nothing new."""
        c = self.broker.consumer(f"reader-{uuid.uuid4().hex[:8]}", [topic])
        out, last, t0 = [], time.monotonic(), time.monotonic()
        try:
            while time.monotonic() - t0 < timeout_s:
                msgs = c.poll(0.5)
                if msgs:
                    out.extend(msgs)
                    last = time.monotonic()
                elif c.assignment() and time.monotonic() - last > quiet_s:
                    break
        finally:
            c.close()
        return out

    def dead_letters(self) -> list[DeadLetter]:
        return [DeadLetter.from_json(m.value) for m in self.read_topic(self.s.topic_dlq)]

    def snapshot(self) -> tuple[list[str], dict[str, str], list[str]]:
        """(face ids in Milvus, provenance key → decision/reason/face ids, object keys in S3 for this test)."""
        keys = list(self.provenance.keys())
        provs = {}
        for k in keys:
            p = self.provenance.get(k)
            provs[k] = f"{p.decision.value}/{p.reason}/{','.join(p.face_ids)}/{p.sha256}"
        ids = sorted(r["face_id"] for r in self.index.store.query(self.index.spec, [], ["face_id"], strong=True))
        objects = sorted(k for k in self.store.list("") if not k.startswith(("sources/", "audit/")))
        return ids, provs, objects
