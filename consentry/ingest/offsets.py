"""Which offsets a finished batch may commit, and where a partition must be rewound. Pure functions.

At-least-once, per partition, in offset order: a record's offset is committed only once its
durable writes (or its dead letter) succeeded and every earlier record of its partition is
committed too. The first record left :class:`~.outcomes.Transient` stops its partition: nothing
from it on is committed, and the consumer is rewound to it, so the next poll redelivers exactly
the records that need it (later records that were written anyway are rewritten: the keys are
deterministic).

While a rewind of a partition is pending, batches polled before the rewind may still be in flight
with later records of that partition: :class:`Rewinds` says which of their results to discard
(and lets the stages skip work on them).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..clients.broker import Message
from .outcomes import Result, Transient, Written

TP = tuple[str, int]


@dataclass(frozen=True)
class Plan:
    commit: dict[TP, int] = field(default_factory=dict)  # partition -> next offset to read
    rewind: dict[TP, int] = field(default_factory=dict)  # partition -> first offset to redeliver
    done: tuple[Written, ...] = ()  # the records the commit covers


def plan(results: Sequence[Result], rewound: dict[TP, int] | None = None) -> Plan:
    """The commit and rewind of one batch's results; ``rewound`` partitions are already being rewound
    (their records from that offset on are discarded)."""
    rewound = rewound or {}
    by_tp: dict[TP, list[Result]] = defaultdict(list)
    for r in results:
        by_tp[(r.msg.topic, r.msg.partition)].append(r)
    commit: dict[TP, int] = {}
    rewind: dict[TP, int] = {}
    done: list[Written] = []
    for tp, part in by_tp.items():
        part.sort(key=lambda r: r.msg.offset)
        for r in part:
            if tp in rewound and r.msg.offset >= rewound[tp]:
                break
            if isinstance(r, Transient):
                rewind[tp] = r.msg.offset
                break
            done.append(r)
            commit[tp] = r.msg.offset + 1
    return Plan(commit, rewind, tuple(done))


class Rewinds:
    """Partitions being rewound (shared by the orchestrating thread and the stages, thread-safe)."""

    def __init__(self) -> None:
        self._at: dict[TP, int] = {}
        self._lock = threading.Lock()

    def add(self, rewind: dict[TP, int]) -> None:
        with self._lock:
            for tp, off in rewind.items():
                self._at[tp] = min(off, self._at.get(tp, off))

    def snapshot(self) -> dict[TP, int]:
        with self._lock:
            return dict(self._at)

    def stale(self, msg: Message) -> bool:
        """Is ``msg`` at or after a pending rewind of its partition (its result would be discarded)?"""
        with self._lock:
            at = self._at.get((msg.topic, msg.partition))
        return at is not None and msg.offset >= at

    def take(self) -> dict[TP, int]:
        """The pending rewinds, cleared (the caller seeks the consumer to them)."""
        with self._lock:
            out, self._at = self._at, {}
            return out

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._at)
