"""A per-client rate limiter in Redis, reused by any route that needs one.

Fixed windows counted by one Lua call (INCR + PEXPIRE + PTTL in one round trip, atomic):
``rl:{<name>:<subject>}`` is a counter that lives for one window.  Over the limit the caller
gets ``RateLimited`` with the whole seconds left in the window, which the HTTP layer sends as
``Retry-After``.  Routes opt in with ``opt={"rate_limit": "<name>"}``; limits per name come
from settings.
"""

from __future__ import annotations

from redis.asyncio import Redis

from kernel.errors import RateLimited
from kernel.keys import KeySpace

_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
  return ttl
end
return -1
"""


class RateLimiter:
    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._keys = keys
        self._hit = redis.register_script(_HIT)

    async def hit(self, name: str, subject: str, limit: int, window_s: int) -> None:
        """Count one request; raise ``RateLimited`` when ``subject`` is over ``limit``."""
        key = self._keys.key("rl", f"{name}:{subject}")
        wait_ms = int(await self._hit(keys=[key], args=[window_s * 1000, limit]))
        if wait_ms >= 0:
            raise RateLimited(
                f"more than {limit} requests in {window_s} s; try again later",
                retry_after_s=(wait_ms + 999) // 1000,
            )
