"""Read-modify-write of one stored record while the service keeps writing it: a string under
WATCH, a hash field by compare-and-set (``wallet rotate-keys`` re-seals records this way;
member upserts use the field swap)."""

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


SealedItem = tuple[str, str | None]  # one stored record: (key, hash field; None = the string)


# Compare-and-set on one field: WATCH would guard the whole hash, so writers of different
# fields (a bulk import of one program's members) would make each other retry.
_SWAP_FIELD = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (current or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


class FieldSwap:
    """Set one hash field only if it still holds what the caller read."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._script = redis.register_script(_SWAP_FIELD)

    async def __call__(self, key: str, field: str, expected: bytes | None, new: bytes) -> bool:
        # A stored value is never empty (msgpack), so "" stands for "no field yet".
        done = await self._script(keys=[key], args=[field, expected or b"", new])
        return bool(done)

    async def rewrite(self, key: str, field: str, rewrite: Callable[[bytes], bytes | None]) -> bool:
        """``rewrite_watched`` for one field: False when the field is gone or unchanged."""
        while True:
            raw = cast(bytes | None, await self._redis.hget(key, field))
            if raw is None:
                return False
            new = rewrite(raw)
            if new is None:
                return False
            if await self(key, field, raw, new):
                return True

    async def rewrite_item(
        self, item: SealedItem, rewrite: Callable[[bytes], bytes | None]
    ) -> bool:
        """The record ``item`` names, rewritten: a whole string under WATCH, a field by swap."""
        key, field = item
        if field is None:
            return await rewrite_watched(self._redis, key, rewrite)
        return await self.rewrite(key, field, rewrite)
