"""Timed work: the dwell sweep, and the 90-day retention of visits.

The dwell sweep fires ``dwell`` for visits whose phone went quiet before the threshold.

Visits that keep reporting get their dwell from the evidence itself (``engine.py``); this
catches the rest. Timers live in one sorted set by deadline. Firing a timer is one script
that checks the user's own state (the visit is still open and still waiting for its dwell),
so several workers may sweep at once and a dwell still fires exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from geofence import metrics
from geofence.store import PresenceStore
from kernel.clock import Clock

log = logging.getLogger("wallet.presence.sweep")

SWEEP_BATCH: Final = 500
SWEEP_INTERVAL_S: Final = 1.0
RETENTION_INTERVAL_S: Final = 60.0


class DwellSweeper:
    def __init__(self, store: PresenceStore, clock: Clock, batch: int = SWEEP_BATCH) -> None:
        self._store = store
        self._clock = clock
        self._batch = batch

    async def sweep_once(self) -> int:
        """Fire every timer due now; returns how many dwells fired."""
        now = self._clock.now()
        fired = 0
        while True:
            due = await self._store.due_dwells(now, self._batch)
            done = await self._store.fire_dwells(due)
            fired += len(done)
            if len(due) < self._batch:
                break
        if fired:
            metrics.TRANSITIONS_BY_TYPE["dwell"].inc(fired)
        return fired

    async def run(self, stop: asyncio.Event, interval_s: float = SWEEP_INTERVAL_S) -> None:
        """Sweep until ``stop`` is set; a failed round is logged and the next one retries."""
        await _every(interval_s, self.sweep_once, stop, "dwell sweep")


class VisitRetention:
    """Deletes visits once they are 90 days old, also for users who stopped using the app
    (the write path trims too, but only when there is a write)."""

    def __init__(self, store: PresenceStore, clock: Clock, batch: int = SWEEP_BATCH) -> None:
        self._store = store
        self._clock = clock
        self._batch = batch

    async def sweep_once(self) -> int:
        """Trim every user due now; returns how many users were trimmed."""
        now = self._clock.now()
        trimmed = 0
        while True:
            done = await self._store.trim_due_visits(now, self._batch)
            trimmed += done
            if done < self._batch:
                return trimmed

    async def run(self, stop: asyncio.Event, interval_s: float = RETENTION_INTERVAL_S) -> None:
        await _every(interval_s, self.sweep_once, stop, "visit retention sweep")


async def _every(
    interval_s: float, sweep: Callable[[], Awaitable[int]], stop: asyncio.Event, name: str
) -> None:
    """Run ``sweep`` every ``interval_s`` until ``stop``; a failure is logged, not fatal."""
    while not stop.is_set():
        try:
            await sweep()
        except Exception:
            log.exception("%s failed; retrying", name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
