"""The dwell sweep: fires ``dwell`` for visits whose phone went quiet before the threshold.

Visits that keep reporting get their dwell from the evidence itself (``engine.py``); this
catches the rest. Timers live in one sorted set by deadline. Firing a timer is one script
that checks the user's own state (the visit is still open and still waiting for its dwell),
so several workers may sweep at once and a dwell still fires exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from geofence import metrics
from geofence.store import PresenceStore
from kernel.clock import Clock

log = logging.getLogger("wallet.presence.sweep")

SWEEP_BATCH: Final = 500
SWEEP_INTERVAL_S: Final = 1.0


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

    async def run(self, interval_s: float = SWEEP_INTERVAL_S) -> None:
        """Sweep until cancelled; a failed round is logged and the next one tries again."""
        while True:
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dwell sweep failed; retrying")
            await asyncio.sleep(interval_s)
