"""A bound on the image bytes and pixels held by batches in flight.

Each prepared image reserves its body plus its decoded pixels (BGR, 3 bytes each) *before* it is
decoded, and the faces stage releases the reservation once the faces are
computed (refusals release at once). A reservation waits while the budget is spent — except for
the oldest batch not yet past the faces stage, which may always go over: the faces stage waits
for that batch, so holding it back could never free anything. A flood of large images therefore
holds at most ``limit`` bytes plus one batch.
"""

from __future__ import annotations

import threading


class InFlightBytes:
    def __init__(self, limit: int) -> None:
        self.limit = max(1, int(limit))
        self.used = 0
        self.peak = 0
        self.oldest = 0  # sequence number of the oldest batch the faces stage has not finished
        self._cond = threading.Condition()

    def reserve(self, seq: int, n: int, stop: threading.Event | None = None) -> int:
        """Hold ``n`` bytes for batch ``seq``; waits while over the limit (see the module doc)."""
        with self._cond:
            while self.used and self.used + n > self.limit and seq > self.oldest and not (stop and stop.is_set()):
                self._cond.wait(0.5)
            self.used += n
            self.peak = max(self.peak, self.used)
            return n

    def release(self, n: int) -> None:
        if n:
            with self._cond:
                self.used = max(0, self.used - n)
                self._cond.notify_all()

    def advance(self, oldest: int) -> None:
        """The faces stage now works on batch ``oldest``: its reservations may go over the limit."""
        with self._cond:
            self.oldest = max(self.oldest, oldest)
            self._cond.notify_all()

    @property
    def full(self) -> bool:
        with self._cond:
            return self.used >= self.limit
