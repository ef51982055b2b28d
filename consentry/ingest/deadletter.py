"""Permanent failures as data: DeadLetter records on the ``dlq`` topic, flushed before the offset moves."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..clients.broker import Message, Producer
from ..core.errors import BrokerError
from ..core.records import DeadLetter
from ..core.retry import RetryPolicy

MAX_PAYLOAD = 64 * 1024


def dead_letter(msg: Message, stage: str, exc: BaseException, reason: str | None = None) -> DeadLetter:
    """A DeadLetter for ``msg`` failing at ``stage`` with ``exc`` (payload kept as text, truncated)."""
    return DeadLetter(stage=stage, error_class=type(exc).__name__,
                      reason=reason or getattr(exc, "reason", None) or "error", message=str(exc)[:2000],
                      topic=msg.topic, partition=msg.partition, offset=msg.offset,
                      key=msg.key.decode("utf-8", "replace") if msg.key else None,
                      payload=(msg.value or b"")[:MAX_PAYLOAD].decode("utf-8", "replace"))


class DeadLetterSink:
    """Dead letters to the ``dlq`` topic. A producer whose send or flush failed is closed and replaced by
    a new one before the next attempt: kafka-python's idempotent producer can stay broken after the
    broker lost its storage (InitProducerId keeps failing), and a fresh one starts clean."""

    def __init__(self, new_producer: Callable[[], Producer], topic: str, retry: RetryPolicy) -> None:
        self.new_producer = new_producer
        self.producer: Producer | None = None
        self.topic = topic
        self.retry = retry

    def send(self, dl: DeadLetter) -> None:
        self.send_many([dl])

    def send_many(self, letters: Sequence[DeadLetter]) -> None:
        """Send them all, then one flush (acks=all): raises BrokerError when Kafka did not take them."""
        if letters:
            self.retry.call(lambda: self._send(letters), "send dead letters")

    def _send(self, letters: Sequence[DeadLetter]) -> None:
        if self.producer is None:
            self.producer = self.new_producer()
        try:
            for dl in letters:
                self.producer.send(self.topic, dl.key.encode() if dl.key else None, dl.to_json())
            self.producer.flush()
        except BrokerError:
            broken, self.producer = self.producer, None
            broken.close()
            raise

    def close(self) -> None:
        if self.producer is not None:
            self.producer.close()
            self.producer = None
