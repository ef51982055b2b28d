"""The message broker boundary: Kafka via kafka-python, and an in-memory fake.

Plain Kafka semantics only (production runs Apache Kafka, e.g. Strimzi); the defaults for
group timeouts suit tansu, the local broker (see ENVIRONMENT.md), and are settings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.errors import BrokerError

log = logging.getLogger("consentry.broker")


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 2000
    request_timeout_ms: int = 30000
    max_poll_records: int = 16
    member_stuck_after_s: float = 60.0  # a consumer unsettled this long (broker answering) is replaced
    partitions: int = 4
    replication: int = 1
    client_id: str = "consentry"

    @classmethod
    def from_settings(cls, s) -> KafkaConfig:
        return cls(bootstrap=s.kafka_bootstrap, security_protocol=s.kafka_security_protocol,
                   sasl_mechanism=s.kafka_sasl_mechanism, username=s.kafka_username,
                   password=s.kafka_password.get_secret_value() if s.kafka_password else None,
                   session_timeout_ms=s.kafka_session_timeout_ms, heartbeat_interval_ms=s.kafka_heartbeat_interval_ms,
                   request_timeout_ms=s.kafka_request_timeout_ms, max_poll_records=s.kafka_max_poll_records,
                   member_stuck_after_s=s.kafka_member_stuck_after_s, partitions=s.kafka_partitions,
                   replication=s.kafka_replication)

    def common(self) -> dict:
        out: dict = {"bootstrap_servers": self.bootstrap.split(","), "security_protocol": self.security_protocol,
                     "request_timeout_ms": self.request_timeout_ms, "client_id": self.client_id}
        if self.sasl_mechanism:
            out.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                       sasl_plain_password=self.password)
        return out


class Producer(Protocol):
    def send(self, topic: str, key: bytes | None, value: bytes) -> None: ...
    def flush(self, timeout_s: float = 30.0) -> None: ...
    def close(self) -> None: ...


class Consumer(Protocol):
    def poll(self, timeout_s: float, max_records: int | None = None) -> list[Message]: ...
    def commit(self, offsets: dict[tuple[str, int], int]) -> None: ...
    def assignment(self) -> set[tuple[str, int]]: ...
    def settled(self) -> bool: ...  # a stable group member: an empty poll then means "nothing to read"
    def close(self) -> None: ...


class Broker(Protocol):
    """Creates producers and consumers for one cluster."""

    def producer(self) -> Producer: ...
    def consumer(self, group: str, topics: Sequence[str]) -> Consumer: ...
    def ensure_topics(self, topics: Iterable[str]) -> None: ...
    def ping(self) -> bool: ...


def _translate(exc: Exception, what: str) -> BrokerError:
    return BrokerError(f"{what}: {type(exc).__name__}: {exc}", transient=True)


def _connect_error(exc: Exception, cfg: KafkaConfig) -> BrokerError:
    """A client could not be created: nothing answering at the bootstrap address, or another failure."""
    if type(exc).__name__ in ("NoBrokersAvailable", "KafkaConnectionError") or "Unable to bootstrap" in str(exc):
        return BrokerError.unreachable("Kafka", cfg.bootstrap, "kafka_bootstrap")
    return _translate(exc, f"cannot connect to Kafka at {cfg.bootstrap}")


# ----------------------------------------------------------------------------------------------- Kafka
class KafkaProducerAdapter:
    """acks=all, idempotent keys; ``flush`` raises BrokerError if any send failed."""

    def __init__(self, cfg: KafkaConfig, max_block_s: float = 10.0) -> None:
        from kafka import KafkaProducer

        try:
            self._p = KafkaProducer(acks="all", retries=5, linger_ms=5, max_block_ms=int(max_block_s * 1000),
                                    retry_backoff_ms=200, bootstrap_timeout_ms=int(max_block_s * 1000),
                                    **cfg.common())
        except Exception as exc:  # kafka.errors.NoBrokersAvailable and friends
            raise _connect_error(exc, cfg) from None
        self._pending: list = []
        self._lock = threading.Lock()

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        try:
            fut = self._p.send(topic, key=key, value=value)
        except Exception as exc:
            raise _translate(exc, f"send to {topic}") from None
        with self._lock:
            self._pending.append(fut)

    def flush(self, timeout_s: float = 30.0) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        try:
            self._p.flush(timeout=timeout_s)
        except Exception as exc:
            raise _translate(exc, "flush") from None
        failed = [f for f in pending if f.failed()]
        if failed:
            raise BrokerError(f"{len(failed)} of {len(pending)} messages not acknowledged: {failed[0].exception}")
        if any(not f.is_done for f in pending):
            raise BrokerError(f"messages not acknowledged within {timeout_s}s")

    def close(self) -> None:
        try:
            self._p.close(timeout=5)
        except Exception:  # closing is best effort
            log.debug("producer close failed", exc_info=True)


class KafkaConsumerAdapter:
    """A consumer-group member with auto-commit off: callers commit after their durable writes.

    A member that stays unsettled (rejoining, or without a coordinator) for ``stuck_after_s``
    (``member_stuck_after_s``, well above a normal rebalance) is replaced by a fresh one:
    kafka-python 3.0 can hang between JoinGroup and SyncGroup after tansu loses its S3 for a while,
    and a new member joins cleanly. Nothing is lost: uncommitted records are redelivered to the new
    member from the committed offsets.
    """

    def __init__(self, cfg: KafkaConfig, group: str, topics: Sequence[str], stuck_after_s: float | None = None) -> None:
        self.cfg, self.group, self.topics = cfg, group, list(topics)
        self.stuck_after_s = cfg.member_stuck_after_s if stuck_after_s is None else stuck_after_s
        self.replaced = 0  # members replaced after being stuck
        self._unsettled_since: float | None = None
        try:
            self._c = self._new()
        except Exception as exc:
            raise _connect_error(exc, cfg) from None

    def _new(self):
        from kafka import KafkaConsumer

        cfg = self.cfg
        return KafkaConsumer(*self.topics, group_id=self.group, enable_auto_commit=False,
                             auto_offset_reset="earliest", session_timeout_ms=cfg.session_timeout_ms,
                             heartbeat_interval_ms=cfg.heartbeat_interval_ms, max_poll_records=cfg.max_poll_records,
                             max_poll_interval_ms=300000, **cfg.common())

    def _watch(self) -> None:
        """Replace the member once it has been unsettled for longer than ``stuck_after_s``."""
        if self.settled():
            self._unsettled_since = None
            return
        now = time.monotonic()
        if self._unsettled_since is None:
            self._unsettled_since = now
            return
        if now - self._unsettled_since < self.stuck_after_s:
            return
        try:
            fresh = self._new()
        except Exception as exc:
            log.warning("consumer of %s unsettled for %.0fs; no new member yet: %s", self.group,
                        now - self._unsettled_since, exc)
            self._unsettled_since = now
            return
        log.warning("consumer of %s unsettled for %.0fs: replacing it with a new group member "
                    "(uncommitted records will be redelivered)", self.group, now - self._unsettled_since)
        old, self._c = self._c, fresh
        self._unsettled_since = None
        self.replaced += 1
        try:
            old.close(autocommit=False, timeout_ms=2000)
        except Exception:
            log.debug("closing the stuck consumer failed", exc_info=True)

    def poll(self, timeout_s: float, max_records: int | None = None) -> list[Message]:
        try:
            batch = self._c.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        except Exception as exc:
            raise _translate(exc, "poll") from None
        if not batch:
            self._watch()
        out = [Message(r.topic, r.partition, r.offset, r.key, r.value) for recs in batch.values() for r in recs]
        out.sort(key=lambda m: (m.topic, m.partition, m.offset))
        return out

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        from kafka.structs import OffsetAndMetadata, TopicPartition

        if not offsets:
            return
        try:
            self._c.commit({TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()})
        except Exception as exc:
            raise _translate(exc, "commit") from None

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Read ``partition`` from ``offset`` next. A partition this member no longer holds (the group
        rebalanced) is skipped: its new owner reads it from the committed offset anyway."""
        from kafka.structs import TopicPartition

        tp = TopicPartition(topic, partition)
        try:
            self._c.seek(tp, offset)
        except (ValueError, AssertionError) as exc:  # kafka-python: "Unassigned partition"
            log.info("not seeking %s[%d] to %d: %s", topic, partition, offset, exc)

    def assignment(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self._c.assignment()}

    def settled(self) -> bool:
        """A stable member of its group with a known coordinator: only then does an empty poll mean
        "nothing to read". While the group (re)joins or its coordinator is being found (after a broker
        or, for tansu, an S3 outage) kafka-python's poll returns nothing without fetching."""
        coordinator = getattr(self._c, "_coordinator", None)
        if coordinator is None:  # kafka-python internals moved: do not block idleness on them
            return True
        try:
            return coordinator.stable() and not coordinator.need_rejoin() and not coordinator.coordinator_unknown()
        except Exception:
            return False

    def close(self) -> None:
        try:
            self._c.close(autocommit=False)
        except Exception:
            log.debug("consumer close failed", exc_info=True)


class KafkaBroker:
    def __init__(self, cfg: KafkaConfig) -> None:
        self.cfg = cfg

    def producer(self) -> KafkaProducerAdapter:
        return KafkaProducerAdapter(self.cfg)

    def consumer(self, group: str, topics: Sequence[str]) -> KafkaConsumerAdapter:
        return KafkaConsumerAdapter(self.cfg, group, topics)

    @contextmanager
    def _admin(self, what: str) -> Iterator[Any]:
        """A Kafka admin client for one operation; library errors become BrokerErrors."""
        from kafka.admin import KafkaAdminClient

        try:  # an address where nothing answers is reported within 10 s, not after the request timeout
            admin = KafkaAdminClient(**{**self.cfg.common(), "bootstrap_timeout_ms": 10000})
        except Exception as exc:
            raise _connect_error(exc, self.cfg) from None
        try:
            yield admin
        except BrokerError:
            raise
        except Exception as exc:
            raise _translate(exc, what) from None
        finally:
            admin.close()

    def ensure_topics(self, topics: Iterable[str]) -> None:
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError

        with self._admin("create topics") as admin:
            existing = set(admin.list_topics())
            new = [NewTopic(t, self.cfg.partitions, self.cfg.replication) for t in topics if t not in existing]
            if new:
                try:
                    admin.create_topics(new)
                except TopicAlreadyExistsError:
                    pass

    def topics(self) -> list[str]:
        with self._admin("list topics") as admin:
            return sorted(admin.list_topics())

    def delete_topics(self, names: Sequence[str]) -> None:
        if names:
            with self._admin("delete topics") as admin:
                admin.delete_topics(list(names))

    def ping(self) -> bool:
        from kafka.admin import KafkaAdminClient

        try:
            admin = KafkaAdminClient(**{**self.cfg.common(), "request_timeout_ms": 3000, "bootstrap_timeout_ms": 3000})
            admin.list_topics()
            admin.close()
            return True
        except Exception:
            return False
