"""CrawlRecorder: the crawl's lines (every refusal, every page read) stored in the crawl log, in batches.

Lines are buffered and stored as one object per ``CONSENTRY_RECORD_BATCH`` lines, every
``CONSENTRY_RECORD_INTERVAL`` seconds, and when the crawl closes (off the reactor thread, one store
at a time). A store that fails is tried again at the next interval; when ten batches' worth are
waiting the crawl stops (close reason ``object-store-unavailable``). Lines still not stored when
the crawl closes (after ``CONSENTRY_RECORD_RETRIES`` retries with backoff) are kept in the job dir
(``records.pending.jsonl``), the job fails loudly, and ``consentry crawl resume`` stores them
first. Nothing is dropped silently.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread

from ..catalog.crawllog import CrawlLine, CrawlLog, parse_line
from ..core.errors import ConsentryError
from ..core.retry import RetryPolicy
from .shared import shared

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

log = logging.getLogger("consentry.crawler.record")

#: stats: lines stored, batches stored, store attempts that failed, lines left unstored at close
STORED, BATCHES, FAILURES, UNSTORED = ("crawler/record/lines", "crawler/record/batches", "crawler/record/failures",
                                       "crawler/record/unstored")
CLOSE_REASON_STORE = "object-store-unavailable"
#: how many batches' worth may wait for an object store that keeps failing before the crawl stops
MAX_WAITING_BATCHES = 10


class CrawlRecorder:
    def __init__(self, log_store: CrawlLog | None, job_id: str, source_id: str, stats: Any, *, batch_size: int,
                 interval_s: float, retry: RetryPolicy, pending_file: Path | None = None,
                 run_blocking: Callable[[Callable[[], Any]], Any] | None = None,
                 on_overflow: Callable[[], None] | None = None) -> None:
        self.store = log_store
        self.job_id = job_id
        self.source_id = source_id
        self.stats = stats
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.retry = retry
        self.pending_file = pending_file
        self.run = secrets.token_hex(3)
        self._seq = 0
        self._buffer: list[CrawlLine] = []
        self._flushing: Any = None  # the Deferred of the store in progress
        self._ticker: LoopingCall | None = None
        self._run_blocking = run_blocking or deferToThread
        self.on_overflow = on_overflow
        self._hold_until = 0.0  # after a failed store, the next try waits for the interval

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlRecorder:
        """The crawler's one recorder (the extension and every middleware share it)."""
        return shared(crawler, cls, cls._build)

    @classmethod
    def _build(cls, crawler: Crawler) -> CrawlRecorder:
        s = crawler.settings
        factory = s.get("CONSENTRY_CRAWL_LOG")  # a callable: the wiring's CrawlLog on the object store
        pending = s.get("CONSENTRY_RECORDS_PENDING_FILE")
        rec = cls(factory() if factory else None, s.get("CONSENTRY_JOB_ID") or "", s.get("CONSENTRY_SOURCE_ID") or "",
                  crawler.stats, batch_size=s.getint("CONSENTRY_RECORD_BATCH"),
                  interval_s=s.getfloat("CONSENTRY_RECORD_INTERVAL"),
                  retry=RetryPolicy(attempts=s.getint("CONSENTRY_RECORD_RETRIES") + 1,
                                    base_delay_s=s.getfloat("RETRY_BACKOFF_BASE"),
                                    max_delay_s=s.getfloat("RETRY_BACKOFF_MAX")),
                  pending_file=Path(pending) if pending else None)

        def overflow() -> None:
            crawler.stats.set_value("crawler/failure", "the object store does not take the crawl records")
            if crawler.engine is not None and crawler.engine.spider is not None:
                deferred_from_coro(crawler.engine.close_spider_async(reason=CLOSE_REASON_STORE))

        rec.on_overflow = overflow
        crawler.signals.connect(rec.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(rec.spider_closed, signal=signals.spider_closed)
        return rec

    # --- lines ---------------------------------------------------------------------------------------
    def add(self, line: CrawlLine) -> None:
        if self.store is None:
            return
        self._buffer.append(line)
        if len(self._buffer) >= self.batch_size and self._flushing is None and time.monotonic() >= self._hold_until:
            self.flush()

    # --- lifecycle -------------------------------------------------------------------------------------
    def spider_opened(self) -> None:
        if self.store is None:
            return
        self._buffer[:0] = self._take_pending()
        if self.interval_s > 0:
            self._ticker = LoopingCall(self.flush)  # flush() never waits: a slow store never stacks up ticks
            self._ticker.start(self.interval_s, now=False)

    async def spider_closed(self) -> None:
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        if self.store is None:
            return
        if self._flushing is not None:
            await maybe_deferred_to_future(self._waiter())
        if self._buffer:
            self.flush(retry=self.retry)
            await maybe_deferred_to_future(self._waiter())
        self._keep_pending()

    def _waiter(self) -> Deferred:
        """A Deferred fired when the store in progress ends (its own: a Deferred feeds one awaiter only)."""
        waiter: Deferred = Deferred()
        if self._flushing is None:
            waiter.callback(None)
        else:
            def fire(result: object) -> object:
                waiter.callback(None)
                return result

            self._flushing.addBoth(fire)
        return waiter

    # --- storing -------------------------------------------------------------------------------------
    def flush(self, retry: RetryPolicy | None = None) -> None:
        """Start storing what is buffered as one batch, in a thread (nothing if a store is in progress)."""
        if self._flushing is not None or not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        self._seq += 1
        name = CrawlLog.batch_name(self.run, self._seq)
        store = self.store
        assert store is not None

        def put() -> None:
            if retry is None:
                store.append(self.job_id, self.source_id, batch, name)
            else:
                retry.call(lambda: store.append(self.job_id, self.source_id, batch, name), what="store crawl records")

        def stored(_: Any) -> None:
            self.stats.inc_value(STORED, len(batch))
            self.stats.inc_value(BATCHES)
            self._hold_until = 0.0

        def failed(failure: Any) -> None:
            self._buffer[:0] = batch  # kept, in order, for the next flush
            self._hold_until = time.monotonic() + self.interval_s
            self.stats.inc_value(FAILURES)
            log.warning("could not store %d crawl records (kept for the next try): %s", len(batch), failure.value)
            if len(self._buffer) >= MAX_WAITING_BATCHES * self.batch_size and self.on_overflow is not None:
                self.on_overflow()

        def done(_: Any) -> None:
            self._flushing = None

        d = self._run_blocking(put)
        d.addCallbacks(stored, failed)
        d.addBoth(done)
        if self._flushing is None and not d.called:  # (a synchronous store has already finished)
            self._flushing = d

    # --- what the object store never took ------------------------------------------------------------
    def _keep_pending(self) -> None:
        """Keep unstored lines in the job dir (the job fails; ``crawl resume`` stores them)."""
        if not self._buffer:
            if self.pending_file is not None:
                self.pending_file.unlink(missing_ok=True)
            return
        self.stats.set_value(UNSTORED, len(self._buffer))
        if self.pending_file is None:
            log.error("%d crawl records could not be stored and there is no job dir to keep them", len(self._buffer))
            return
        log.error("%d crawl records could not be stored; kept in %s for `crawl resume`", len(self._buffer),
                  self.pending_file)
        tmp = self.pending_file.with_suffix(".tmp")
        tmp.write_text("".join(ln.model_dump_json() + "\n" for ln in self._buffer), encoding="utf-8")
        tmp.replace(self.pending_file)

    def _take_pending(self) -> list[CrawlLine]:
        if self.pending_file is None or not self.pending_file.is_file():
            return []
        try:
            lines = [parse_line(t) for t in self.pending_file.read_text(encoding="utf-8").splitlines() if t.strip()]
        except ConsentryError as exc:
            log.error("%s is unreadable (%s); left in place", self.pending_file, exc)
            return []
        log.info("storing %d crawl records a previous run could not store", len(lines))
        return lines
