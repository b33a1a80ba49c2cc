"""Keeps this process's ``FenceIndex`` equal to the stores in Redis.

At start it notes the newest entry of the store change stream, loads every store, and then
applies the changes after that entry: a store written during the load is applied twice,
which is harmless (an upsert re-reads the record). Afterwards it polls the change counter
every ``poll_interval_s`` (one GET) and reads the new entries when it moves, so an edit is
served by every worker within about that interval. If the stream was trimmed past the last
entry seen (a worker asleep through 100,000 changes), it reloads everything into a new index
and swaps it in; requests keep using the old one meanwhile.

Until the first load succeeds, ``loaded`` is False and the presence service refuses to
evaluate (503): an empty index would read as "every store is gone" and end open visits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Final, Protocol

from geofence.index import FenceIndex
from geofence.metrics import INDEX_CHANGES
from issuers.stores.models import StoreChange, StoreRecord

log = logging.getLogger("wallet.presence.index")

CHANGES_PER_READ: Final = 1000
LOAD_BATCH: Final = 2000


class StoreFeed(Protocol):
    """What the follower needs of the store layer (``issuers.stores``)."""

    async def version(self) -> int: ...

    async def latest_change_id(self) -> str: ...

    async def oldest_change_id(self) -> str | None: ...

    async def changes_since(self, change_id: str, count: int) -> list[StoreChange]: ...

    async def get_many(self, store_ids: list[str]) -> list[StoreRecord]: ...

    def scan_records(self, batch: int = 1000) -> AsyncIterator[list[StoreRecord]]: ...


def _stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


class LiveIndex:
    def __init__(self, feed: StoreFeed, poll_interval_s: float = 0.2) -> None:
        self._feed = feed
        self._poll_interval_s = poll_interval_s
        self.index = FenceIndex()
        self._last_id = "0-0"
        self._version = -1
        self.loaded = False

    async def load(self) -> None:
        """Build a fresh index from every store, swap it in, then catch up."""
        started = time.perf_counter()
        version = await self._feed.version()
        mark = await self._feed.latest_change_id()
        fresh = FenceIndex()
        async for records in self._feed.scan_records(LOAD_BATCH):
            for record in records:
                fresh.put_record(record)
        self.index, self._last_id, self._version = fresh, mark, version
        self.loaded = True
        await self.catch_up()
        log.info(
            "fence index loaded",
            extra={"stores": len(fresh), "seconds": round(time.perf_counter() - started, 2)},
        )

    async def catch_up(self) -> int:
        """Apply every change after the last one seen; returns how many were applied."""
        applied = 0
        while True:
            changes = await self._feed.changes_since(self._last_id, CHANGES_PER_READ)
            if not changes:
                return applied
            if await self._missed_changes():
                await self.load()
                return applied
            await self._apply(changes)
            self._last_id = changes[-1].change_id
            applied += len(changes)
            if len(changes) < CHANGES_PER_READ:
                return applied

    async def _missed_changes(self) -> bool:
        if self._last_id == "0-0":
            return False  # the stream was empty at load: everything in it is new
        oldest = await self._feed.oldest_change_id()
        return oldest is not None and _stream_id(oldest) > _stream_id(self._last_id)

    async def _apply(self, changes: list[StoreChange]) -> None:
        latest = {change.store_id: change.op for change in changes}
        upserts = [store_id for store_id, op in latest.items() if op == "upsert"]
        records = {r.store_id: r for r in await self._feed.get_many(upserts)}
        for store_id, op in latest.items():
            record = records.get(store_id) if op == "upsert" else None
            if record is None:
                self.index.remove(store_id)
            else:
                self.index.put_record(record)
        INDEX_CHANGES.inc(len(changes))

    async def try_load(self) -> bool:
        """``load``, logging instead of raising when Redis cannot be read."""
        try:
            await self.load()
        except Exception:
            log.exception("fence index could not be loaded; presence is unavailable until it is")
            return False
        return True

    async def poll_once(self) -> int:
        """One follow step: load if never loaded, else read changes if the counter moved."""
        if not self.loaded:
            await self.load()
            return len(self.index)
        version = await self._feed.version()
        if version == self._version:
            return 0
        self._version = version
        return await self.catch_up()

    async def follow(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (between polls, so no Redis call is cut short); a Redis
        hiccup is logged and retried, never fatal."""
        while not stop.is_set():
            pause = self._poll_interval_s
            try:
                await self.poll_once()
            except Exception:
                log.exception("fence index follower failed; retrying")
                pause = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
