import time
import uuid

import pytest

from consentry.clients.broker import KafkaBroker, KafkaConfig, MemoryBroker
from consentry.core.errors import BrokerError


def drain(consumer, want, timeout=40.0):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got.extend(consumer.poll(1.0))
    return got


@pytest.fixture(params=["kafka", "memory"])
def any_broker(request):
    if request.param == "memory":
        return MemoryBroker()
    return request.getfixturevalue("broker")


def test_produce_consume_commit_and_resume(any_broker, settings):
    topic = settings.topic_images
    group = f"g-{uuid.uuid4().hex[:8]}"
    any_broker.ensure_topics([topic])
    p = any_broker.producer()
    for i in range(10):
        p.send(topic, f"k{i}".encode(), f"v{i}".encode())
    p.flush()
    p.close()

    c = any_broker.consumer(group, [topic])
    first = drain(c, 10)
    assert sorted(m.value for m in first) == sorted(f"v{i}".encode() for i in range(10))
    # commit only the first 4 records of each partition we saw, then "crash"
    by_part = {}
    for m in first:
        by_part.setdefault((m.topic, m.partition), []).append(m)
    committed = {}
    for tp, msgs in by_part.items():
        msgs.sort(key=lambda m: m.offset)
        keep = msgs[: min(len(msgs), 2)]
        if keep:
            committed[tp] = keep[-1].offset + 1
    c.commit(committed)
    c.close()

    c2 = any_broker.consumer(group, [topic])
    again = drain(c2, 10 - sum(committed[tp] for tp in committed), timeout=40)
    c2.close()
    expected = {(m.partition, m.offset) for m in first if m.offset >= committed[(m.topic, m.partition)]}
    assert {(m.partition, m.offset) for m in again} == expected  # resumed exactly after the commit


def test_unreachable_broker_raises_broker_error():
    b = KafkaBroker(KafkaConfig(bootstrap="127.0.0.1:9", request_timeout_ms=1000))
    assert b.ping() is False
    with pytest.raises(BrokerError):
        p = b.producer()
        p.send("x", None, b"y")
        p.flush(2)
