"""Redis keys of terminals (the only code that names them).  No key has a TTL.

- ``terminals:{iss_..}``       hash terminal_id -> msgpack ``TerminalRecord``
- ``terminal-list:{iss_..}``   sorted set terminal_id -> created_at in microseconds (listing)
- ``tkey:{<digest>}``          string, msgpack ``TerminalRecord``: the key lookup (one GET)

Creation and revocation write the program's keys and the lookup in one MULTI, so a revoked
key stops resolving with the same write.  The lookup has its own slot: single-node only, as
for partner API keys (see docs/architecture.md, roadmap).
"""

from __future__ import annotations

from typing import cast

import msgspec
from redis.asyncio import Redis

from issuers.stores.store import created_score, page_by_score
from issuers.terminals.models import TerminalRecord
from kernel.keys import KeySpace

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(TerminalRecord).decode


class TerminalStore:
    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._k = keys

    def _terminals(self, issuer_id: str) -> str:
        return self._k.key("terminals", issuer_id)

    def _list(self, issuer_id: str) -> str:
        return self._k.key("terminal-list", issuer_id)

    def _lookup(self, digest: str) -> str:
        return self._k.key("tkey", digest)

    def hash_key(self, issuer_id: str) -> str:
        """The program's terminals (field: terminal id), for POS verification's script, which
        checks that a terminal it was handed is still this one."""
        return self._terminals(issuer_id)

    def lookup_key(self, digest: str) -> str:
        """The key lookup's name, for POS verification's one pipelined read (msgpack
        ``TerminalRecord``)."""
        return self._lookup(digest)

    async def create(self, record: TerminalRecord) -> None:
        raw = _encode(record)
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hset(self._terminals(record.issuer_id), record.terminal_id, raw)
            tx.zadd(
                self._list(record.issuer_id),
                {record.terminal_id: created_score(record.created_at)},
            )
            tx.set(self._lookup(record.digest), raw)
            await tx.execute()

    async def get(self, issuer_id: str, terminal_id: str) -> TerminalRecord | None:
        raw = cast(bytes | None, await self._redis.hget(self._terminals(issuer_id), terminal_id))
        return None if raw is None else _decode(raw)

    async def page(
        self, issuer_id: str, after: tuple[int, str] | None, limit: int
    ) -> list[TerminalRecord]:
        rows = await page_by_score(self._redis, self._list(issuer_id), after, limit)
        if not rows:
            return []
        ids = [terminal_id for terminal_id, _ in rows]
        raws = cast(list[bytes | None], await self._redis.hmget(self._terminals(issuer_id), ids))
        return [_decode(raw) for raw in raws if raw is not None]

    async def remove(self, record: TerminalRecord) -> None:
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hdel(self._terminals(record.issuer_id), record.terminal_id)
            tx.zrem(self._list(record.issuer_id), record.terminal_id)
            tx.delete(self._lookup(record.digest))
            await tx.execute()

    async def for_digest(self, digest: str) -> TerminalRecord | None:
        raw = await self._redis.get(self._lookup(digest))
        return None if raw is None else _decode(cast(bytes, raw))
