"""Redis keys of dynamic codes (the only code that names them).

Global, tagged by the looked-up value itself (the till finds them in one pipelined read):
- ``coderef:{<ref>}``     string, msgpack ``CodeRefRecord``: a card's TOTP seed and identity,
                          sealed (associated data ``coderef:<ref>``); no TTL.  Claimed SET NX,
                          so a reference belongs to one card.
- ``otc:{<token index>}`` string, msgpack ``OneTimeRecord``; TTL = the program's ``ttl_s`` +
                          ``EXPIRED_GRACE_S`` (so a late scan hears "expired", not "unknown").
                          The index is ``blind_index("one-time-code", token)``; SET NX makes a
                          token unique among live ones.

User slot (hash tag ``usr_..``), so removing a card or a user finds what to delete:
- ``codes:{usr_..}``      hash card id -> ref (HSETNX: a card's first reference wins)
- ``otcs:{usr_..}``       sorted set ``<card id> <token index>`` -> expiry (ms); expired
                          members are pruned on each mint; the key expires with its last token

Cross-slot: a reference is claimed before it is attached to the card, and a losing or
orphaned claim holds a seed nobody was ever given, so it can produce no valid code.  The
till also checks that the card is still held (``cardref``), so leftovers of a deleted card
never verify.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import cast

import msgspec
from redis.asyncio import Redis

from kernel.keys import KeySpace
from kernel.watched import rewrite_watched
from wallet_api.codes.models import CodeRefRecord, OneTimeRecord

EXPIRED_GRACE_S = 300

_encode = msgspec.msgpack.Encoder().encode
_decode_ref = msgspec.msgpack.Decoder(CodeRefRecord).decode
_decode_token = msgspec.msgpack.Decoder(OneTimeRecord).decode

Reseal = Callable[[CodeRefRecord | OneTimeRecord], CodeRefRecord | OneTimeRecord | None]


def decode_ref(raw: bytes) -> CodeRefRecord:
    return _decode_ref(raw)


def decode_token(raw: bytes) -> OneTimeRecord:
    return _decode_token(raw)


class CodeStore:
    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._k = keys

    def ref_key(self, ref: str) -> str:
        return self._k.key("coderef", ref)

    def token_key(self, token_index: str) -> str:
        return self._k.key("otc", token_index)

    def _refs_of(self, user_id: str) -> str:
        return self._k.key("codes", user_id)

    def _tokens_of(self, user_id: str) -> str:
        return self._k.key("otcs", user_id)

    # --- TOTP references -----------------------------------------------------------------

    async def ref_of(self, user_id: str, card_id: str) -> str | None:
        raw = await self._redis.hget(self._refs_of(user_id), card_id)
        return None if raw is None else cast(bytes, raw).decode()

    async def get_ref(self, ref: str) -> CodeRefRecord | None:
        raw = await self._redis.get(self.ref_key(ref))
        return None if raw is None else _decode_ref(cast(bytes, raw))

    async def claim_ref(self, record: CodeRefRecord) -> bool:
        """Store a new reference; False when it is taken (draw another)."""
        return bool(await self._redis.set(self.ref_key(record.ref), _encode(record), nx=True))

    async def replace_ref(self, record: CodeRefRecord) -> None:
        await self._redis.set(self.ref_key(record.ref), _encode(record), xx=True)

    async def attach(self, user_id: str, card_id: str, ref: str) -> str:
        """Attach ``ref`` to the card unless one is attached already; the card's ref."""
        key = self._refs_of(user_id)
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hsetnx(key, card_id, ref)
            tx.hget(key, card_id)
            _, current = await tx.execute()
        return cast(bytes, current).decode()

    async def detach(self, user_id: str, card_id: str) -> str | None:
        """Forget the card's reference and its record; the reference, if there was one."""
        ref = await self.ref_of(user_id, card_id)
        if ref is not None:
            await self._redis.delete(self.ref_key(ref))
            await self._redis.hdel(self._refs_of(user_id), card_id)
        return ref

    async def release_ref(self, ref: str) -> None:
        """Drop a claimed reference that lost the race to be attached (never handed out)."""
        await self._redis.delete(self.ref_key(ref))

    # --- one-time tokens -----------------------------------------------------------------

    async def add_token(self, record: OneTimeRecord, now: float) -> bool:
        """Store a new live token; False when that token is live already (draw another)."""
        ttl_ms = round((record.expires_at - now + EXPIRED_GRACE_S) * 1000)
        key = self.token_key(record.token_index)
        if not await self._redis.set(key, _encode(record), nx=True, px=ttl_ms):
            return False
        tracked = self._tokens_of(record.card.user_id)
        expiry_ms = round(now * 1000) + ttl_ms
        async with self._redis.pipeline(transaction=True) as tx:
            tx.zremrangebyscore(tracked, "-inf", round(now * 1000))
            tx.zadd(tracked, {f"{record.card.card_id} {record.token_index}": expiry_ms})
            tx.pexpireat(tracked, expiry_ms, gt=True)
            tx.pexpireat(tracked, expiry_ms, nx=True)
            await tx.execute()
        return True

    async def drop_tokens(self, user_id: str, card_id: str) -> None:
        """Delete the card's live tokens (the card is gone)."""
        tracked = self._tokens_of(user_id)
        members = cast(list[bytes], await self._redis.zrange(tracked, 0, -1))
        mine = [m for m in members if m.decode().partition(" ")[0] == card_id]
        if mine:
            indexes = [m.decode().partition(" ")[2] for m in mine]
            await self._redis.delete(*[self.token_key(index) for index in indexes])
            await self._redis.zrem(tracked, *mine)

    # --- key rotation (offline) ----------------------------------------------------------

    async def scan_sealed(self) -> AsyncIterator[str]:
        for pattern in (self._k.pattern("coderef"), self._k.pattern("otc")):
            async for key in self._redis.scan_iter(match=pattern, count=500):
                yield cast(bytes, key).decode()

    async def rewrap(self, key: str, reseal: Reseal) -> bool:
        """Replace one record with ``reseal(record)`` (None: unchanged) under WATCH."""
        is_ref = key.startswith(self._k.pattern("coderef")[:-1])

        def rewrite(data: bytes) -> bytes | None:
            changed = reseal(_decode_ref(data) if is_ref else _decode_token(data))
            return None if changed is None else _encode(changed)

        return await rewrite_watched(self._redis, key, rewrite)
