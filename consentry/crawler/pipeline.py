"""Publishes ImageCandidate records to Kafka: key = sha256(url), value = the record's JSON, acks=all.

Candidates are sent in batches and flushed (every ``CONSENTRY_PUBLISH_BATCH`` items, every
``CONSENTRY_PUBLISH_INTERVAL`` seconds, and on close). Only after the broker acknowledged a batch
are its keys added to the job's published-keys record, so a resumed job never publishes a key
twice. A batch the broker refuses is retried with backoff (``CONSENTRY_PUBLISH_RETRIES``); then
the crawl fails loudly (close reason ``broker-unavailable``), and every candidate not
acknowledged is kept in ``unpublished.jsonl`` and published first when the job resumes.
Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread

from ..clients.broker import Producer
from ..core.errors import BrokerError, DependencyError
from ..core.records import ImageCandidate
from ..core.retry import RetryPolicy
from .jobdir import PublishedKeys

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

log = logging.getLogger("consentry.crawler.pipeline")

CLOSE_REASON_BROKER = "broker-unavailable"


async def _in_reactor_thread(fn: Callable[[], Any]) -> Any:
    """Run blocking client calls (connect, flush) off the reactor thread."""
    return await maybe_deferred_to_future(deferToThread(fn))


class KafkaPublishPipeline:
    def __init__(self, *, producer_factory: Callable[[], Producer], topic: str, retry: RetryPolicy,
                 published: PublishedKeys, unpublished_file: Path | None, stats: Any,
                 batch_size: int = 100, flush_interval_s: float = 0.5, flush_timeout_s: float = 30.0,
                 on_failure: Callable[[BrokerError], None] | None = None,
                 run_blocking: Callable[[Callable[[], Any]], Awaitable[Any]] | None = None) -> None:
        self.producer_factory = producer_factory
        self.topic = topic
        self.retry = retry
        self.published = published
        self.unpublished_file = unpublished_file
        self.stats = stats
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.flush_timeout_s = flush_timeout_s
        self.on_failure = on_failure
        self.producer: Producer | None = None
        self.failure: BrokerError | None = None
        self._buffer: list[ImageCandidate] = []
        self._queued: set[str] = set()
        self._lock = asyncio.Lock()
        self._ticker: Any = None
        self._run_blocking = run_blocking or _in_reactor_thread

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> KafkaPublishPipeline:
        """``CONSENTRY_PRODUCER_FACTORY`` (from the wiring) connects to the broker and returns a Producer."""
        s = crawler.settings
        published = s.get("CONSENTRY_PUBLISHED_FILE")
        unpublished = s.get("CONSENTRY_UNPUBLISHED_FILE")

        def fail(exc: BrokerError) -> None:
            crawler.stats.set_value("crawler/failure", str(exc))
            if crawler.engine is not None and crawler.engine.spider is not None:
                deferred_from_coro(crawler.engine.close_spider_async(reason=CLOSE_REASON_BROKER))

        return cls(producer_factory=s["CONSENTRY_PRODUCER_FACTORY"],
                   topic=s.get("CONSENTRY_TOPIC_IMAGES"),
                   retry=RetryPolicy(attempts=s.getint("CONSENTRY_PUBLISH_RETRIES") + 1,
                                     base_delay_s=s.getfloat("RETRY_BACKOFF_BASE"),
                                     max_delay_s=s.getfloat("RETRY_BACKOFF_MAX")),
                   published=PublishedKeys(Path(published) if published else None),
                   unpublished_file=Path(unpublished) if unpublished else None, stats=crawler.stats,
                   batch_size=s.getint("CONSENTRY_PUBLISH_BATCH"),
                   flush_interval_s=s.getfloat("CONSENTRY_PUBLISH_INTERVAL"),
                   flush_timeout_s=s.getfloat("CONSENTRY_PUBLISH_TIMEOUT_SECONDS"), on_failure=fail)

    # --- lifecycle ------------------------------------------------------------------------------
    async def open_spider(self) -> None:
        """Connect (with retries) and queue what a failed run left unacknowledged."""
        self.producer = await self._in_thread(lambda: self.retry.call(self.producer_factory, what="connect to Kafka"))
        for candidate in self._take_unpublished():
            self._enqueue(candidate)
        if self.flush_interval_s > 0:
            self._ticker = LoopingCall(self._tick)
            self._ticker.start(self.flush_interval_s, now=False)

    async def close_spider(self) -> None:
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        try:
            if self.failure is None:
                await self.flush()
        except BrokerError:
            pass  # logged and reported by flush(); what was not acknowledged is kept just below
        finally:
            self._keep_unpublished(self._buffer)
            if self.producer is not None:
                try:
                    await self._in_thread(self.producer.close)
                except Exception as exc:
                    log.warning("closing the Kafka producer: %s", exc)

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, ImageCandidate):
            return item
        if item.key in self.published or item.key in self._queued:
            self.stats.inc_value("crawler/already_published")
            return item
        self._enqueue(item)
        if self.failure is None and len(self._buffer) >= self.batch_size:
            await self.flush()
        return item

    # --- publishing -----------------------------------------------------------------------------
    def _enqueue(self, candidate: ImageCandidate) -> None:
        self._buffer.append(candidate)
        self._queued.add(candidate.key)

    def _tick(self) -> Any:
        return deferred_from_coro(self.flush()).addErrback(lambda f: log.debug("periodic flush: %s", f.value))

    async def flush(self) -> None:
        """Publish everything buffered; record the keys once acknowledged. Raises BrokerError when it gives up."""
        async with self._lock:
            if self.failure is not None:
                raise self.failure
            batch, self._buffer = self._buffer, []
            if not batch:
                return
            try:
                await self._in_thread(lambda: self.retry.call(lambda: self._publish(batch), what="publish to Kafka"))
            except DependencyError as exc:
                self._buffer = batch + self._buffer
                self.failure = exc if isinstance(exc, BrokerError) else BrokerError(str(exc))
                log.error("giving up publishing %d candidates to %s: %s", len(batch), self.topic, exc)
                self.stats.inc_value("crawler/publish_failures")
                if self.on_failure is not None:
                    self.on_failure(self.failure)
                raise self.failure from None
            keys = [c.key for c in batch]
            self.published.add_many(keys)
            self._queued.difference_update(keys)
            self.stats.inc_value("crawler/published", len(batch))

    def _publish(self, batch: list[ImageCandidate]) -> None:
        if self.producer is None:
            raise BrokerError("no Kafka producer (the pipeline is not open)")
        for candidate in batch:
            self.producer.send(self.topic, candidate.key.encode("ascii"), candidate.to_json())
        self.producer.flush(self.flush_timeout_s)

    async def _in_thread(self, fn: Callable[[], Any]) -> Any:
        return await self._run_blocking(fn)

    # --- what the broker never acknowledged ---------------------------------------------------------
    def _keep_unpublished(self, candidates: list[ImageCandidate]) -> None:
        """Rewrite ``unpublished.jsonl`` to hold exactly ``candidates`` (removed when there are none)."""
        if self.unpublished_file is None:
            return
        if not candidates:
            self.unpublished_file.unlink(missing_ok=True)
            return
        self.stats.set_value("crawler/unpublished", len(candidates))
        log.error("%d candidates were not acknowledged by the broker; kept in %s for resume",
                  len(candidates), self.unpublished_file)
        tmp = self.unpublished_file.with_suffix(".tmp")
        tmp.write_text("".join(c.to_json().decode("utf-8") + "\n" for c in candidates), encoding="utf-8")
        tmp.replace(self.unpublished_file)

    def _take_unpublished(self) -> list[ImageCandidate]:
        """Candidates a previous run could not publish (the file stays until they are acknowledged)."""
        if self.unpublished_file is None or not self.unpublished_file.is_file():
            return []
        out = []
        for line in self.unpublished_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                c = ImageCandidate.from_json(line)
                if c.key not in self.published and c.key not in self._queued:
                    out.append(c)
        if out:
            self.stats.set_value("crawler/carried_over", len(out))
        return out
