"""Time in one place, so tests and the engine agree on what "now" means."""

from __future__ import annotations

import math
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


def to_rfc3339(ts: float) -> str:
    """RFC 3339 UTC with millisecond precision and a ``Z`` suffix: exactly what
    ``datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")`` writes (the
    microseconds rounded half to even, then truncated), at a fraction of its cost: the
    date and time of day are formatted once per second (most calls repeat the last one)."""
    global _last_second
    fraction, whole = math.modf(ts)
    micros = round(fraction * 1e6)
    second = int(whole)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    elif micros < 0:
        second, micros = second - 1, micros + 1_000_000
    last = _last_second
    if last[0] != second:  # one tuple, swapped whole: never a second with another's text
        last = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        _last_second = last
    return f"{last[1]}.{micros // 1000:03d}Z"


_last_second: tuple[int, str] = (-(2**62), "")
