"""Background work, in the HTTP process or on its own (``wallet worker``).

Two kinds of task:

- per HTTP worker, always: the fence index follower, because each worker serves presence
  requests from its own in-memory index (``geofence/follower.py``);
- background jobs, once per deployment or more (each is safe to run in several processes):
  the dwell sweep and the 90-day visit retention. ``wallet serve`` runs them in every
  worker unless ``--no-worker`` (or ``WALLET_RUN_WORKER=false``); ``wallet worker`` runs
  them without HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from redis.asyncio import Redis

from wallet_api.services import Services, build_services
from wallet_api.settings import Settings

log = logging.getLogger("wallet.worker")

_FREEZE_INDEX_AT_STORES = 10_000

Job = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
"""Runs until the event is set, survives its own failures, and stops between Redis calls."""
STOP_GRACE_S = 5.0


def background_jobs(services: Services) -> dict[str, Job]:
    return {
        "dwell-sweep": services.dwell_sweeper.run,
        "visit-retention": services.visit_retention.run,
    }


class TaskGroup:
    """Named long-running tasks, stopped together: asked first, cancelled after a grace."""

    def __init__(self, jobs: dict[str, Job]) -> None:
        self._jobs = jobs
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for name, job in self._jobs.items():
            self._tasks.append(asyncio.create_task(job(self._stop), name=name))
            log.info("background task started", extra={"task": name})

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=STOP_GRACE_S)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks.clear()


@contextlib.asynccontextmanager
async def running_tasks(services: Services, *, run_jobs: bool) -> AsyncIterator[None]:
    """For the app lifespan: load the fence index, follow it, and run the jobs if asked.
    A failed load does not stop the start (health checks must answer); the follower retries."""
    await services.fence_index.try_load()
    # The fence index is several objects per store that live as long as the process: keep
    # the cyclic collector from walking them in every full collection, a pause of ~100 ms at
    # 100,000 stores that every request in flight waits out (it set /readyz's p99).  Frozen
    # objects are still freed by reference counting when an edit replaces them.  Small
    # indexes (tests, a few programs) gain nothing, and freezing would also pin whatever
    # else is alive then.
    if len(services.fence_index.index) >= _FREEZE_INDEX_AT_STORES:
        gc.collect()
        gc.freeze()
    jobs: dict[str, Job] = {"fence-index": services.fence_index.follow}
    if run_jobs:
        jobs |= background_jobs(services)
    group = TaskGroup(jobs)
    group.start()
    try:
        yield
    finally:
        await group.stop()


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """``wallet worker``: the background jobs without HTTP, until SIGINT/SIGTERM or ``stop``."""
    assert settings.redis_url
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    redis = Redis.from_url(settings.redis_url, max_connections=32)
    services = build_services(settings, redis)
    group = TaskGroup(background_jobs(services))
    group.start()
    try:
        await stop.wait()
    finally:
        await group.stop()
        await services.direct.aclose()
        await redis.aclose()
        for sig in handled:
            loop.remove_signal_handler(sig)
