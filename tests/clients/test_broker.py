import time
import uuid

import pytest

from consentry.clients.broker import KafkaBroker, KafkaConfig
from consentry.core.errors import BrokerError
from tests.fakes import MemoryBroker


def drain(consumer, want, timeout=40.0):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got.extend(consumer.poll(1.0))
    return got


def produce(broker, topic, values):
    broker.ensure_topics([topic])
    p = broker.producer()
    for v in values:
        p.send(topic, v.encode(), v.encode())
    p.flush()
    p.close()


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


@pytest.mark.slow
def test_unreachable_broker_raises_broker_error():
    b = KafkaBroker(KafkaConfig(bootstrap="127.0.0.1:9", request_timeout_ms=1000))
    assert b.ping() is False
    with pytest.raises(BrokerError):
        p = b.producer()
        p.send("x", None, b"y")
        p.flush(2)


def test_a_consumer_is_settled_only_once_it_has_joined_its_group(broker, settings):
    """An empty poll means "drained" only for a settled member; before the join it means "not yet"."""
    topic = settings.topic_images
    broker.ensure_topics([topic])
    c = broker.consumer(f"g-{uuid.uuid4().hex[:8]}", [topic])
    try:
        assert c.settled() is False  # not joined yet: nothing has been polled
        deadline = time.monotonic() + 40
        while not (c.assignment() and c.settled()) and time.monotonic() < deadline:
            c.poll(0.5)
        assert c.assignment() and c.settled()
    finally:
        c.close()


def drain_quiet(consumer, quiet_polls=4, timeout=60.0):
    """Everything the consumer gets until ``quiet_polls`` empty polls in a row."""
    got, quiet = [], 0
    deadline = time.monotonic() + timeout
    while quiet < quiet_polls and time.monotonic() < deadline:
        batch = consumer.poll(1.0)
        got.extend(batch)
        settled = consumer.settled() and consumer.assignment()
        quiet = 0 if batch or not settled else quiet + 1  # joining the group is not "quiet"
    return got


@pytest.mark.slow
def test_a_member_stuck_unsettled_is_replaced_and_uncommitted_records_come_again(broker, settings):
    from consentry.clients.broker import KafkaConsumerAdapter

    topic = settings.topic_images
    produce(broker, topic, [f"stuck{i}" for i in range(5)])
    c = KafkaConsumerAdapter(broker.cfg, f"g-{uuid.uuid4().hex[:8]}", [topic])
    try:
        first = {(m.partition, m.offset) for m in drain_quiet(c)}  # read, never committed
        assert len(first) >= 5 and c.replaced == 0  # a normal join is well within member_stuck_after_s
        c.stuck_after_s = 1.0
        c.settled = lambda: False  # as when kafka-python hangs between JoinGroup and SyncGroup
        deadline = time.monotonic() + 10
        while c.replaced == 0 and time.monotonic() < deadline:
            assert c.poll(0.3) == []
        assert c.replaced == 1
        del c.settled
        c.stuck_after_s = 60.0  # the new member's own join takes a few seconds
        again = {(m.partition, m.offset) for m in drain_quiet(c)}
        assert again == first  # the new member gets every uncommitted record again: none lost
    finally:
        c.close()
