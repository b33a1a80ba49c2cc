"""Redis keys of dynamic codes (the only code that names them).

Global, tagged by the looked-up value itself:
- ``coderef:{<ref>}``        string, msgpack ``CodeRefRecord``: a card's TOTP seed and
                             identity, sealed (associated data ``coderef:<ref>``); no TTL.
                             Claimed SET NX, so a reference belongs to one card.  The till
                             reads it before its script (Python checks the value).
- ``otclive:{<token index>}`` string, the issuer id of a live one-time token; claimed SET NX
                             before its record is written, so a token is unique among all
                             programs' live tokens, and a till of another program can say
                             "wrong issuer" rather than "unknown".  TTL = the record's.

Issuer slot (hash tag ``iss_..``), so the till's one script reads the token it consumes:
- ``otc:{iss_..}:<token index>`` hash: ``record`` (msgpack ``OneTimeRecord``, the number
                             sealed inside) and, for the script, which reads hashes but not
                             msgpack with binary fields, the plain fields it needs copied
                             from it (``_token_fields``; verify_lua.py names them); TTL =
                             the program's ``ttl_s`` + ``EXPIRED_GRACE_S`` (so a late scan
                             hears "expired", not "unknown").  The index is
                             ``blind_index("one-time-code", token)``.

User slot (hash tag ``usr_..``), so removing a card or a user finds what to delete:
- ``codes:{usr_..}``      hash card id -> ref (HSETNX: a card's first reference wins)
- ``otcs:{usr_..}``       sorted set ``<card id> <token index> <issuer id>`` -> expiry (ms);
                          expired members are pruned on each mint; the key expires with its
                          last token

Cross-slot: a reference or token is claimed before it is attached to the card, and a losing
or orphaned claim holds a secret nobody was ever given, so it can produce no valid code.  The
till also checks that the card is still held (``cardref``), so leftovers of a deleted card
never verify.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import cast

import msgspec
from redis.asyncio import Redis

from kernel.keys import KeySpace
from kernel.watched import FieldSwap, SealedItem
from wallet_api.codes.models import CodeRefRecord, OneTimeRecord

EXPIRED_GRACE_S = 300

_encode = msgspec.msgpack.Encoder().encode
_decode_ref = msgspec.msgpack.Decoder(CodeRefRecord).decode
_decode_token = msgspec.msgpack.Decoder(OneTimeRecord).decode

Reseal = Callable[[CodeRefRecord | OneTimeRecord], CodeRefRecord | OneTimeRecord | None]


def _token_fields(record: OneTimeRecord) -> dict[str, str | bytes]:
    card = record.card
    return {
        "user_id": card.user_id,
        "card_id": card.card_id,
        "kind": card.kind,
        "number_index": card.number_index,
        "member_index": card.member_index,
        "expires_at": repr(record.expires_at),
        "record": _encode(record),
    }


def decode_ref(raw: bytes) -> CodeRefRecord:
    return _decode_ref(raw)


def decode_token(raw: bytes) -> OneTimeRecord:
    return _decode_token(raw)


class CodeStore:
    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._k = keys
        self._swap = FieldSwap(redis)

    def ref_key(self, ref: str) -> str:
        return self._k.key("coderef", ref)

    def token_key(self, issuer_id: str, token_index: str) -> str:
        """A live token's record, in its program's slot (read by POS verification's script)."""
        return self._k.key("otc", issuer_id, token_index)

    def _live(self, token_index: str) -> str:
        return self._k.key("otclive", token_index)

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
        issuer_id = record.card.issuer_id
        if not await self._redis.set(self._live(record.token_index), issuer_id, nx=True, px=ttl_ms):
            return False
        key = self.token_key(issuer_id, record.token_index)
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hset(key, mapping=_token_fields(record))  # type: ignore[arg-type]
            tx.pexpire(key, ttl_ms)
            await tx.execute()
        tracked = self._tokens_of(record.card.user_id)
        expiry_ms = round(now * 1000) + ttl_ms
        member = f"{record.card.card_id} {record.token_index} {issuer_id}"
        async with self._redis.pipeline(transaction=True) as tx:
            tx.zremrangebyscore(tracked, "-inf", round(now * 1000))
            tx.zadd(tracked, {member: expiry_ms})
            tx.pexpireat(tracked, expiry_ms, gt=True)
            tx.pexpireat(tracked, expiry_ms, nx=True)
            await tx.execute()
        return True

    def live_key(self, token_index: str) -> str:
        """The claim naming a live token's program (a till's "wrong issuer" answer)."""
        return self._live(token_index)

    async def drop_tokens(self, user_id: str, card_id: str) -> None:
        """Delete the card's live tokens (the card is gone)."""
        tracked = self._tokens_of(user_id)
        members = cast(list[bytes], await self._redis.zrange(tracked, 0, -1))
        mine = [m for m in members if m.decode().partition(" ")[0] == card_id]
        if not mine:
            return
        async with self._redis.pipeline(transaction=False) as pipe:  # keys in many slots
            for member in mine:
                _, index, issuer_id = [*member.decode().split(" "), ""][:3]
                pipe.delete(self._live(index))
                if issuer_id:
                    pipe.delete(self.token_key(issuer_id, index))
                else:  # tracked before tokens moved to the program's slot
                    pipe.delete(self._k.key("otc", index))
            pipe.zrem(tracked, *mine)
            await pipe.execute()

    # --- key rotation (offline) ----------------------------------------------------------

    async def scan_sealed(self) -> AsyncIterator[SealedItem]:
        async for key in self._redis.scan_iter(match=self._k.pattern("coderef"), count=500):
            yield cast(bytes, key).decode(), None
        tokens = self._k.pattern("otc")
        async for key in self._redis.scan_iter(match=tokens, count=500, _type="HASH"):
            yield cast(bytes, key).decode(), "record"

    async def rewrap(self, item: SealedItem, reseal: Reseal) -> bool:
        """Replace one record with ``reseal(record)`` (None: unchanged); a concurrent write is
        never undone."""
        decode = _decode_ref if item[1] is None else _decode_token

        def rewrite(data: bytes) -> bytes | None:
            changed = reseal(decode(data))
            return None if changed is None else _encode(changed)

        return await self._swap.rewrite_item(item, rewrite)
