"""Background work, in the HTTP process or on its own (``wallet worker``).

Two kinds of task:

- per HTTP worker, always: the fence index follower, because each worker serves presence
  requests from its own in-memory index (``geofence/follower.py``);
- background jobs, once per deployment or more (each is safe to run in several processes):
  the dwell sweep. ``wallet serve`` runs them in every worker unless ``--no-worker`` (or
  ``WALLET_RUN_WORKER=false``); ``wallet worker`` runs them without HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable

from redis.asyncio import Redis

from wallet_api.services import Services, build_services
from wallet_api.settings import Settings

log = logging.getLogger("wallet.worker")

Job = Callable[[], Awaitable[None]]


def background_jobs(services: Services) -> dict[str, Job]:
    """Each job runs until cancelled and survives its own failures."""
    return {"dwell-sweep": services.dwell_sweeper.run}


class TaskGroup:
    """Named long-running tasks, cancelled together."""

    def __init__(self, jobs: dict[str, Job]) -> None:
        self._jobs = jobs
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for name, job in self._jobs.items():

            async def run(job: Job = job) -> None:
                await job()

            self._tasks.append(asyncio.create_task(run(), name=name))
            log.info("background task started", extra={"task": name})

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


@contextlib.asynccontextmanager
async def running_tasks(services: Services, *, run_jobs: bool) -> AsyncIterator[None]:
    """For the app lifespan: load the fence index, follow it, and run the jobs if asked.
    A failed load does not stop the start (health checks must answer); the follower retries."""
    await services.fence_index.try_load()
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
    group = TaskGroup(background_jobs(build_services(settings, redis)))
    group.start()
    try:
        await stop.wait()
    finally:
        await group.stop()
        await redis.aclose()
        for sig in handled:
            loop.remove_signal_handler(sig)
