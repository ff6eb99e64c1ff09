"""Per-credential token buckets (per server process: N processes allow N times the rate)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from segmentd.errors import OverLimit

MAX_TRACKED = 50_000  # least recently seen credentials are forgotten beyond this


class RateLimiter:
    def __init__(self, per_second: float, burst: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    def take(self, key: str) -> None:
        """Spend one request for `key`; OverLimit (429) with Retry-After when none is left."""
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - stamp) * self.per_second)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            raise OverLimit(retry_after=max(1, math.ceil((1.0 - tokens) / self.per_second)))
        self._buckets[key] = (tokens - 1.0, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > MAX_TRACKED:
            self._buckets.popitem(last=False)
