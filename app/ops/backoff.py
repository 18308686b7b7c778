"""Backoff for a source that keeps failing: exponential, capped, jittered.

The n-th consecutive failure waits ``min(cap, base * 2**(n-1))`` seconds, scaled by a
random factor in ``[1 - jitter, 1]`` so sources that failed together do not retry
together (and the cap is never exceeded).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backoff:
    base_seconds: float = 60.0
    max_seconds: float = 3600.0
    jitter: float = 0.2
    uniform: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (``failures >= 1``)."""
        exponent = min(max(failures, 1) - 1, 32)
        ceiling = min(self.max_seconds, self.base_seconds * 2.0**exponent)
        return ceiling * (1.0 - self.jitter * self.uniform())
