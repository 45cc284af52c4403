"""Telegram's flood limits, modelled as one token bucket per destination chat.

A send into a chat whose bucket is empty is answered with FLOOD_WAIT_X, X being the whole
seconds until a token is back. Off by default: a test or a benchmark turns it on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated_at: float


class FloodModel:
    """Per-chat token buckets: `burst` sends at once, then `rate_per_s` sends a second."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}
        self.rate_per_s: float | None = None
        self.burst = 1.0
        self.waits_s: list[int] = []

    def limit(self, rate_per_s: float, burst: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self._buckets.clear()

    def take(self, chat_id: int, count: int = 1) -> int:
        """Takes tokens for `count` messages; returns 0, or the FloodWait seconds to answer."""
        if self.rate_per_s is None:
            return 0
        now = self._clock()
        bucket = self._buckets.setdefault(chat_id, _Bucket(self.burst, now))
        refill = (now - bucket.updated_at) * self.rate_per_s
        bucket.tokens = min(self.burst, bucket.tokens + refill)
        bucket.updated_at = now
        if bucket.tokens >= count:
            bucket.tokens -= count
            return 0
        wait_s = max(1, math.ceil((count - bucket.tokens) / self.rate_per_s))
        self.waits_s.append(wait_s)
        return wait_s
