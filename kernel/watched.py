"""Rewrite one Redis string under WATCH: the read-modify-write that key rotation needs
(``wallet rotate-keys`` re-seals records while the service keeps writing them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import WatchError


async def rewrite_watched(redis: Redis, key: str, rewrite: Callable[[bytes], bytes | None]) -> bool:
    """Replace the value of ``key`` with ``rewrite(value)``, keeping its TTL; False when the
    key is gone or ``rewrite`` returns None. A concurrent write makes it read again, so that
    write is never undone."""
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(key)
                raw = await pipe.get(key)
                if raw is None:
                    return False
                new = rewrite(cast(bytes, raw))
                if new is None:
                    return False
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.set(key, new, keepttl=True)
                await pipe.execute()
                return True
            except WatchError:
                continue
