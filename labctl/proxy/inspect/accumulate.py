"""Running totals from counter points of either temporality, without double counting.

Delta points carry the increase since the previous export: add them. Cumulative points carry the
total since `start_time`: remember the last value per series and add only the difference; a new
start time or a smaller value is a reset (the process restarted), and then the whole new value is the
increase. Claude Code exports delta by default, most other SDKs cumulative; both give the same totals.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class CounterAccumulator:
    def __init__(self, max_series: int = 100_000) -> None:
        self.max_series = max_series
        self._last: OrderedDict[Any, tuple[int, float]] = OrderedDict()
        self.resets = 0

    def increase(self, series: Any, temporality: str, start_ns: int, value: float) -> float:
        """How much this point adds to the series' total (never negative)."""
        if temporality != "cumulative":
            return value if value > 0 else 0.0
        prev = self._last.get(series)
        self._last[series] = (start_ns, value)
        if prev is None:
            if len(self._last) > self.max_series:
                self._last.popitem(last=False)  # bounded memory: forget the oldest series
            return value if value > 0 else 0.0
        self._last.move_to_end(series)
        prev_start, prev_value = prev
        if (start_ns and prev_start and start_ns != prev_start) or value < prev_value:
            self.resets += 1
            return value if value > 0 else 0.0
        return value - prev_value

    def __len__(self) -> int:
        return len(self._last)
