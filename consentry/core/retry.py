"""Bounded retries with exponential backoff and full jitter, for calls to outside systems."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import DependencyError

T = TypeVar("T")
log = logging.getLogger("consentry.retry")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 10.0

    def delay(self, attempt: int) -> float:
        """Full-jitter backoff for the given 1-based attempt."""
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1))))

    def call(self, fn: Callable[[], T], what: str = "call",
             sleep: Callable[[float], None] = time.sleep) -> T:
        """Run ``fn``; retry transient DependencyErrors; re-raise the last one when attempts run out."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except DependencyError as exc:
                if not exc.transient or attempt >= self.attempts:
                    raise
                d = self.delay(attempt)
                log.warning("%s failed (attempt %d/%d): %s; retrying in %.2fs", what, attempt, self.attempts, exc, d)
                sleep(d)


#: one attempt, no retry (components' default; wiring passes the configured policy)
NO_RETRY = RetryPolicy(attempts=1)
