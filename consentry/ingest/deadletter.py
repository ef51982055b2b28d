"""Permanent failures as data: DeadLetter records on the ``dlq`` topic, flushed before the offset moves."""

from __future__ import annotations

from collections.abc import Sequence

from ..clients.broker import Message, Producer
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
    def __init__(self, producer: Producer, topic: str, retry: RetryPolicy) -> None:
        self.producer = producer
        self.topic = topic
        self.retry = retry

    def send(self, dl: DeadLetter) -> None:
        self.send_many([dl])

    def send_many(self, letters: Sequence[DeadLetter]) -> None:
        """Send them all, then one flush (acks=all): raises BrokerError when Kafka did not take them."""
        if not letters:
            return

        def go() -> None:
            for dl in letters:
                self.producer.send(self.topic, dl.key.encode() if dl.key else None, dl.to_json())
            self.producer.flush()

        self.retry.call(go, "send dead letters")
