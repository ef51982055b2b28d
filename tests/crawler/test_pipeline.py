"""The Kafka pipeline on the in-memory broker: acks before records, no re-publish, loud failure, nothing dropped.

(The same pipeline publishes to the real broker in test_crawl.py and the CLI tests.)
"""

import asyncio

import pytest
from scrapy.utils.test import get_crawler

from consentry.core.errors import BrokerError
from consentry.core.records import ImageCandidate, url_key
from consentry.core.retry import RetryPolicy
from consentry.crawler.jobdir import PublishedKeys
from consentry.crawler.pipeline import KafkaPublishPipeline
from tests.fakes import MemoryBroker

TOPIC = "t.images"


def cand(i: int) -> ImageCandidate:
    return ImageCandidate.build(url=f"http://h.test/img/{i}.jpg", page_url="http://h.test/", job_id="job-1",
                                source_id="src")


async def direct(fn):
    return fn()


def make(broker, tmp_path, failures=None, retries=2):
    stats = get_crawler().stats
    return KafkaPublishPipeline(producer_factory=broker.producer, topic=TOPIC,
                                retry=RetryPolicy(attempts=retries + 1, base_delay_s=0.001, max_delay_s=0.002),
                                published=PublishedKeys(tmp_path / "published.keys"),
                                unpublished_file=tmp_path / "unpublished.jsonl", stats=stats, batch_size=3,
                                flush_interval_s=0, on_failure=(failures.append if failures is not None else None),
                                run_blocking=direct), stats


def run(coro):
    return asyncio.run(coro)


def test_publishes_once_keys_recorded_after_ack(tmp_path):
    broker = MemoryBroker()
    p, stats = make(broker, tmp_path)

    async def go():
        await p.open_spider()
        for i in [0, 1, 2, 3, 1, 0]:
            await p.process_item(cand(i))
        assert len(broker.messages(TOPIC)) == 3  # one full batch acknowledged
        assert len((tmp_path / "published.keys").read_text().split()) == 3
        await p.close_spider()

    run(go())
    msgs = broker.messages(TOPIC)
    assert sorted(m.key.decode() for m in msgs) == sorted(url_key(f"http://h.test/img/{i}.jpg") for i in range(4))
    assert all(ImageCandidate.from_json(m.value).key == m.key.decode() for m in msgs)
    assert stats.get_value("crawler/published") == 4
    assert stats.get_value("crawler/already_published") == 2
    assert not (tmp_path / "unpublished.jsonl").exists()

    # a resumed run with the same job dir skips everything already acknowledged
    p2, stats2 = make(broker, tmp_path)

    async def again():
        await p2.open_spider()
        for i in range(6):
            await p2.process_item(cand(i))
        await p2.close_spider()

    run(again())
    assert len(broker.messages(TOPIC)) == 6
    assert stats2.get_value("crawler/already_published") == 4


def test_broker_down_fails_loudly_and_keeps_what_was_not_acknowledged(tmp_path):
    broker = MemoryBroker()
    failures = []
    p, stats = make(broker, tmp_path, failures)

    async def go():
        await p.open_spider()
        await p.process_item(cand(0))
        broker.down = True
        await p.process_item(cand(1))
        with pytest.raises(BrokerError):
            await p.process_item(cand(2))  # the batch is full: flush, retries, gives up
        await p.process_item(cand(3))  # after the failure: kept, not sent
        await p.close_spider()

    run(go())
    assert len(failures) == 1 and isinstance(failures[0], BrokerError)
    assert stats.get_value("crawler/publish_failures") == 1
    assert broker.messages(TOPIC) == []
    kept = [ImageCandidate.from_json(line) for line in (tmp_path / "unpublished.jsonl").read_text().splitlines()]
    assert [c.url for c in kept] == [cand(i).url for i in range(4)]

    # the broker is back: the resumed run publishes what was kept, once, before anything new
    broker.down = False
    p2, stats2 = make(broker, tmp_path)

    async def resume():
        await p2.open_spider()
        await p2.process_item(cand(1))  # also re-found by the crawl: not twice
        await p2.close_spider()

    run(resume())
    assert sorted(m.key.decode() for m in broker.messages(TOPIC)) == sorted(cand(i).key for i in range(4))
    assert not (tmp_path / "unpublished.jsonl").exists()


def test_no_broker_at_open_raises_after_retries(tmp_path):
    broker = MemoryBroker()
    attempts = []

    def factory():
        attempts.append(1)
        raise BrokerError("Kafka does not answer")

    p, _ = make(broker, tmp_path, retries=3)
    p.producer_factory = factory
    with pytest.raises(BrokerError):
        run(p.open_spider())
    assert len(attempts) == 4
