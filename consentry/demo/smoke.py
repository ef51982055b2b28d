"""A smoke check of the local stack: one object, one message, one vector, through the real servers."""

from __future__ import annotations

import time
import uuid

import click
import numpy as np

from ..clients.broker import KafkaBroker, KafkaConfig
from ..clients.objectstore import S3Config, S3ObjectStore
from ..clients.vectors import CollectionSpec, FieldSpec, IndexSpec, MilvusVectorStore
from ..core.errors import StackError
from ..core.settings import Settings, load_settings
from ..infra.stack import Stack


def smoke_check(settings: Settings) -> dict[str, float]:
    """Round-trip through S3, Kafka and Milvus; returns seconds per check. Raises on any failure."""
    timings: dict[str, float] = {}
    token = uuid.uuid4().hex

    t = time.monotonic()
    store = S3ObjectStore(S3Config.from_settings(settings))
    store.put(f"smoke/{token}", token.encode(), metadata={"check": "smoke"})
    if store.get(f"smoke/{token}") != token.encode():
        raise StackError("S3 smoke check: object read back differs")
    store.delete(f"smoke/{token}")
    timings["s3"] = time.monotonic() - t

    t = time.monotonic()
    broker = KafkaBroker(KafkaConfig.from_settings(settings))
    topic = settings.topic("smoke")
    broker.ensure_topics([topic])
    prod = broker.producer()
    prod.send(topic, token.encode(), token.encode())
    prod.flush()
    prod.close()
    cons = broker.consumer(f"smoke-{token}", [topic])
    seen = False
    deadline = time.monotonic() + 30
    while not seen and time.monotonic() < deadline:
        seen = any(m.value == token.encode() for m in cons.poll(1.0))
    cons.close()
    if not seen:
        raise StackError("Kafka smoke check: message not consumed within 30 s")
    timings["kafka"] = time.monotonic() - t

    t = time.monotonic()
    vs = MilvusVectorStore(settings.milvus_uri)
    spec = CollectionSpec("consentry_smoke", (FieldSpec("id", "varchar", primary=True),
                                              FieldSpec("v", "vector", dim=8)), IndexSpec("FLAT"))
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(4, 8)).astype("float32")
    vs.upsert(spec, [{"id": str(i), "v": v.tolist()} for i, v in enumerate(vecs)])
    hits = vs.search(spec, [vecs[2].tolist()], top_k=1, strong=True)
    vs.drop(spec)
    vs.reset()
    if not hits or not hits[0] or hits[0][0].id != "2":
        raise StackError("Milvus smoke check: nearest neighbour not found")
    timings["milvus"] = time.monotonic() - t
    return timings


def run_smoke(settings: Settings, keep: bool = False) -> None:
    stack = Stack(settings)
    click.echo("1/3 starting the local stack (S3, Kafka, Milvus) …")
    stack.up()
    try:
        settings = load_settings(home=settings.home, config=settings.config)  # picks up generated credentials
        click.echo("2/3 smoke check through the real servers …")
        for name, secs in smoke_check(settings).items():
            click.echo(f"    {name:7s} ok  ({secs * 1000:.0f} ms)")
        click.echo("3/3 done: the stack works. (The full crawl → index → search demo is not built yet.)")
    finally:
        if keep:
            click.echo("the stack is still up; stop it with: consentry stack down")
        else:
            stack.down()
