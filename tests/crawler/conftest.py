"""Crawler fixtures: the local test sites on 127.0.0.1, a crawl runner, and a topic reader."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from consentry.clients.broker import KafkaBroker, KafkaConfig
from consentry.core.records import CrawlJob, ImageCandidate, Source
from consentry.core.settings import Settings, load_settings

from .site import SiteServer, chain_site, finish, free_port, html, main_site, text


@dataclass
class Sites:
    main: SiteServer
    r500: SiteServer
    r404: SiteServer
    unreachable_port: int

    @property
    def unreachable(self) -> str:
        return f"http://127.0.0.1:{self.unreachable_port}"


@pytest.fixture(scope="session")
def sites() -> Iterator[Sites]:
    r500 = SiteServer({"/robots.txt": text("down for maintenance", status=503),
                       "/": html('<img src="/img/r500.jpg">')}).start()
    r404 = SiteServer({"/": html('<img src="/img/r404.jpg" alt="no robots.txt here">')}).start()
    main = SiteServer().start()
    main.routes.update(finish(main_site({"r500": r500.base}), main.base))
    yield Sites(main, r500, r404, free_port())
    for s in (main, r500, r404):
        s.stop()


def fresh_settings(stack: Settings, **overrides) -> Settings:
    tag = uuid.uuid4().hex[:10]
    return load_settings(topic_prefix=f"t{tag}.", kafka_consumer_group=f"g-{tag}", crawl_retry_times=1,
                         retry_base_delay_s=0.05, retry_max_delay_s=0.2, **overrides)


def add_source(settings: Settings, name: str, match: str, basis: str = "consent", **fields) -> Source:
    from consentry import wiring

    return wiring.sources(settings).put(Source.build(id=name, match=match, basis=basis, **fields))


def run_crawl(settings: Settings, source: str, seeds: list[str], timeout_s: float = 90, **plan) -> tuple[CrawlJob, int]:
    """Plan a job and run it to its end in a crawl process, as `consentry crawl start` does."""
    from consentry import wiring

    launcher = wiring.crawl_launcher(settings)
    job = launcher.plan(source, seeds, **plan)
    proc = launcher.spawn(job.id)
    try:
        proc.wait(timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
    return launcher.jobs.get(job.id), proc.returncode


def read_topic(settings: Settings, expect: int, timeout_s: float = 40, quiet_s: float = 2.5) -> list[ImageCandidate]:
    """Every record on the images topic, through a fresh consumer group; waits ``quiet_s`` past ``expect``."""
    broker = KafkaBroker(KafkaConfig.from_settings(settings))
    consumer = broker.consumer(f"reader-{uuid.uuid4().hex[:8]}", [settings.topic_images])
    got = []
    try:
        deadline = time.monotonic() + timeout_s
        quiet_until = None
        while time.monotonic() < deadline:
            batch = consumer.poll(0.5)
            got.extend(batch)
            if len(got) >= expect:
                if batch or quiet_until is None:
                    quiet_until = time.monotonic() + quiet_s
                elif time.monotonic() > quiet_until:
                    break
    finally:
        consumer.close()
    out = []
    for m in got:
        c = ImageCandidate.from_json(m.value)
        assert m.key == c.key.encode(), "Kafka key must be sha256(url)"
        out.append(c)
    return out


__all__ = ["Sites", "add_source", "chain_site", "fresh_settings", "read_topic", "run_crawl"]
