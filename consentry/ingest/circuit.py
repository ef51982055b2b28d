"""A circuit that pauses consumption while a dependency is down, and resumes when it returns.

When a batch had to leave records for redelivery because S3, Milvus or the broker failed past
the retry policy, the circuit opens: the worker stops polling (its place is the last committed
offset, so nothing is lost), probes its dependencies with backoff and jitter, and closes the
circuit once every probe answers. While open, the worker reports itself not ready.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

log = logging.getLogger("consentry.ingest.circuit")

Probe = Callable[[], dict[str, bool]]


class Circuit:
    REMIND_S = 30.0  # while open, say at most this often what it is waiting for

    def __init__(self, probe: Probe, base_delay_s: float = 0.5, max_delay_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.probe = probe
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.clock = clock
        self.opened_at: float | None = None
        self.down: list[str] = []
        self.openings = 0
        self._attempt = 0
        self._said_at: float | None = None  # when "still waiting" was last logged
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def open(self, why: str) -> None:
        with self._lock:
            if self.opened_at is None:
                self.opened_at = self.clock()
                self.openings += 1
                log.warning("circuit open (%s): pausing consumption until the dependencies answer", why)

    def try_close(self) -> bool:
        """Probe once; close the circuit (True) when every dependency answers."""
        results = self._probe()
        down = sorted(k for k, ok in results.items() if not ok)
        with self._lock:
            self.down = down
            now = self.clock()
            opened = self.opened_at if self.opened_at is not None else now
            if down:
                self._attempt += 1
                remind = self._said_at is None or now - self._said_at >= self.REMIND_S
                if remind:
                    self._said_at = now
            else:
                self.opened_at, self._attempt, self._said_at = None, 0, None
        if down:
            if remind:  # an operator watching the log sees what it waits for, not silence
                log.warning("circuit open for %.0fs: still waiting for %s", now - opened, ", ".join(down))
            return False
        log.warning("circuit closed after %.1fs: resuming consumption", now - opened)
        return True

    def delay(self) -> float:
        """How long to wait before the next probe: exponential backoff with full jitter."""
        with self._lock:
            attempt = self._attempt
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** attempt))

    def wait_closed(self, stop: threading.Event) -> bool:
        """Probe with backoff until every dependency answers (True) or ``stop`` is set (False)."""
        while not stop.is_set():
            if self.try_close():
                return True
            stop.wait(self.delay())
        return False

    def _probe(self) -> dict[str, bool]:
        try:
            return dict(self.probe())
        except Exception as exc:
            log.debug("probe failed: %s", exc)
            return {"probe": False}

    def status(self) -> dict[str, object]:
        with self._lock:
            return {"circuit": "open" if self.opened_at is not None else "closed", "waiting_for": list(self.down),
                    "circuit_openings": self.openings}
