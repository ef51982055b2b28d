"""Counting the records of one Kafka topic by reading it (the DLQ size on the console's operations page).

The records are read, not inferred from offsets: offsets are not a count after compaction or
transactions, and tansu's ListOffsets(latest) is wrong after multi-record batches (ENVIRONMENT.md).
The reader has no consumer group and commits nothing, so it never disturbs the ingest group; it
keeps its position between refreshes, so each refresh reads only what arrived since.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import BrokerError
from .broker import KafkaConfig


@dataclass
class TopicCount:
    topic: str
    total: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    caught_up: bool = False  # the last refresh ended on empty polls, not on its time budget
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "total": self.total, "by_kind": dict(sorted(self.by_kind.items())),
                "caught_up": self.caught_up, "error": self.error}


class TopicCounter:
    """Reads ``topic`` from its beginning and tallies each record under ``classify(value)``."""

    def __init__(self, cfg: KafkaConfig, topic: str, classify: Callable[[bytes], str] = lambda _v: "record",
                 poll_s: float = 0.3) -> None:
        self.cfg, self.topic, self.classify, self.poll_s = cfg, topic, classify, poll_s
        self._consumer: Any = None
        self._tally: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _open(self, budget_s: float) -> Any:
        from kafka import KafkaConsumer
        from kafka.structs import TopicPartition

        c = KafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                          bootstrap_timeout_ms=int(budget_s * 1000), **self.cfg.common())
        parts = c.partitions_for_topic(self.topic) or set()
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        c.assign(tps)
        if tps:
            c.seek_to_beginning(*tps)
        return c

    def refresh(self, budget_s: float = 2.0) -> TopicCount:
        """Read what arrived since the last refresh, for at most ``budget_s`` seconds."""
        with self._lock:
            try:
                if self._consumer is None or not self._consumer.assignment():
                    self._close()
                    self._tally.clear()  # a fresh reader starts from the beginning again
                    self._consumer = self._open(budget_s)
                deadline, empty = time.monotonic() + budget_s, 0
                while time.monotonic() < deadline and empty < 2:
                    batch = self._consumer.poll(timeout_ms=int(self.poll_s * 1000), max_records=1000)
                    records = [r for recs in batch.values() for r in recs]
                    empty = 0 if records else empty + 1
                    for r in records:
                        self._tally[self.classify(r.value)] += 1
                error = None
            except Exception as exc:
                self._close()
                empty, error = 0, str(BrokerError(f"reading {self.topic}: {type(exc).__name__}: {exc}"))
            return TopicCount(self.topic, sum(self._tally.values()), dict(self._tally), empty >= 2, error)

    def _close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception:
                pass
            self._consumer = None

    def close(self) -> None:
        with self._lock:
            self._close()
