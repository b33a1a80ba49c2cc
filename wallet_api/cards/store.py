"""Redis keys of wallet cards (the only code that names them).

User slot (hash tag ``usr_..``), changed together by one Lua script or MULTI:
- ``card:{usr_..}:crd_..``   string, msgpack ``CardRecord`` (number sealed); no TTL
- ``cards:{usr_..}``         sorted set, score = position, member ``<created µs>:<card id>``
                             (equal positions sort by creation); its size is the card count
- ``cards:{usr_..}:dedupe``  hash, blind index of (issuer or custom, number) -> card id

Issuer slot (hash tag ``iss_..``), for the till's static-code lookup (issue 4):
- ``cardref:{iss_..}``       hash, ``blind_index("card-number:<iss>", number)`` ->
                             space-separated ``usr_../crd_..`` of every wallet card (self-added
                             or enrolled) carrying that number

Cross-slot: ``cardref`` is written after the card (add) and after the card is gone (delete),
each by its own single-key script that is idempotent, so a retry repairs it.  The exact
invariants (at most N cards, no duplicate) live in the user's slot.  A crash between the two
steps leaves a ``cardref`` entry missing or pointing at a deleted card: readers must confirm
the card record, and treat a missing entry as "not in any wallet".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Literal, cast

import msgspec
from redis.asyncio import Redis

from kernel.keys import KeySpace
from kernel.watched import rewrite_watched
from wallet_api.cards.models import CardHolder, CardRecord

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(CardRecord).decode

# KEYS: card, order, dedupe.  ARGV: dedupe field, limit, record, position, order member, card id
_ADD = """
local held = redis.call('HGET', KEYS[3], ARGV[1])
if held then return {'exists', held} end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return {'limit', ''} end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[6])
return {'ok', ''}
"""
# KEYS: card, order, dedupe.  ARGV: card id, order member, dedupe field
_DELETE = """
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if redis.call('HGET', KEYS[3], ARGV[3]) == ARGV[1] then redis.call('HDEL', KEYS[3], ARGV[3]) end
return existed
"""
# KEYS: cardref.  ARGV: number index, holder entry
_REF_ADD = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1 end
for entry in string.gmatch(current, '%S+') do if entry == ARGV[2] then return 0 end end
redis.call('HSET', KEYS[1], ARGV[1], current .. ' ' .. ARGV[2])
return 1
"""
_REF_REMOVE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
local kept = {}
for entry in string.gmatch(current, '%S+') do
  if entry ~= ARGV[2] then table.insert(kept, entry) end
end
if #kept == 0 then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], table.concat(kept, ' ')) end
return 1
"""

# KEYS: order.  ARGV: the card key up to the card id.  Every card record of the user in one
# round trip (for presence's "which programs does this user hold"); same slot as KEYS[1].
_ALL_RECORDS = """
local out = {}
for i, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  out[i] = redis.call('GET', ARGV[1] .. string.match(member, '[^:]+$')) or false
end
return out
"""


class _IssuerOnly(msgspec.Struct):
    issuer_id: str | None = None


_decode_issuer = msgspec.msgpack.Decoder(_IssuerOnly).decode

AddOutcome = tuple[Literal["ok", "exists", "limit"], str]


def order_member(record: CardRecord) -> str:
    return f"{round(record.created_at * 1_000_000):017d}:{record.card_id}"


def _card_id_of(member: bytes) -> str:
    return member.decode().rpartition(":")[2]


class CardStore:
    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._k = keys
        self._add = redis.register_script(_ADD)
        self._delete = redis.register_script(_DELETE)
        self._ref_add = redis.register_script(_REF_ADD)
        self._ref_remove = redis.register_script(_REF_REMOVE)
        self._all_records = redis.register_script(_ALL_RECORDS)

    def _card(self, user_id: str, card_id: str) -> str:
        return self._k.key("card", user_id, card_id)

    def _order(self, user_id: str) -> str:
        return self._k.key("cards", user_id)

    def _dedupe(self, user_id: str) -> str:
        return self._k.key("cards", user_id, "dedupe")

    def _refs(self, issuer_id: str) -> str:
        return self._k.key("cardref", issuer_id)

    def refs_key(self, issuer_id: str) -> str:
        """The ``cardref`` hash's name, for POS verification's script (issuer slot)."""
        return self._refs(issuer_id)

    def _user_keys(self, record: CardRecord) -> list[str]:
        return [
            self._card(record.user_id, record.card_id),
            self._order(record.user_id),
            self._dedupe(record.user_id),
        ]

    async def add(self, record: CardRecord, limit: int) -> AddOutcome:
        """Store the card unless the user holds it already (``exists``, with that card's id)
        or holds ``limit`` cards (``limit``); check and write are one script."""
        status, detail = await self._add(
            keys=self._user_keys(record),
            args=[
                record.dedupe_index,
                limit,
                _encode(record),
                record.position,
                order_member(record),
                record.card_id,
            ],
        )
        return cast(Literal["ok", "exists", "limit"], status.decode()), detail.decode()

    async def last_position(self, user_id: str) -> int | None:
        top = await self._redis.zrevrange(self._order(user_id), 0, 0, withscores=True)
        return int(top[0][1]) if top else None

    async def get(self, user_id: str, card_id: str) -> CardRecord | None:
        raw = await self._redis.get(self._card(user_id, card_id))
        return None if raw is None else _decode(cast(bytes, raw))

    async def page(self, user_id: str, offset: int, limit: int) -> list[CardRecord]:
        """Cards in the user's order (position, then creation), from ``offset``."""
        return await self._cards_at(user_id, offset, offset + limit - 1)

    async def all_cards(self, user_id: str) -> list[CardRecord]:
        return await self._cards_at(user_id, 0, -1)

    async def _cards_at(self, user_id: str, start: int, stop: int) -> list[CardRecord]:
        members = await self._redis.zrange(self._order(user_id), start, stop)
        if not members:
            return []
        ids = [_card_id_of(cast(bytes, m)) for m in members]
        raws = await self._redis.mget([self._card(user_id, card_id) for card_id in ids])
        return [_decode(cast(bytes, raw)) for raw in raws if raw is not None]

    async def issuer_ids(self, user_id: str) -> set[str]:
        """Issuers of the user's program cards (custom cards have none), one round trip."""
        raws = await self._all_records(keys=[self._order(user_id)], args=[self._card(user_id, "")])
        decoded = (_decode_issuer(raw) for raw in cast(list[bytes | None], raws) if raw)
        return {card.issuer_id for card in decoded if card.issuer_id is not None}

    async def count(self, user_id: str) -> int:
        return int(await self._redis.zcard(self._order(user_id)))

    async def update(self, record: CardRecord) -> bool:
        """Write changed fields and the position; False if the card was deleted meanwhile."""
        card, order, _ = self._user_keys(record)
        async with self._redis.pipeline(transaction=True) as tx:
            tx.set(card, _encode(record), xx=True)
            tx.zadd(order, {order_member(record): record.position}, xx=True)
            written, _ = await tx.execute()
        return bool(written)

    async def delete(self, record: CardRecord) -> bool:
        existed = await self._delete(
            keys=self._user_keys(record),
            args=[record.card_id, order_member(record), record.dedupe_index],
        )
        return bool(existed)

    async def forget_user(self, user_id: str) -> None:
        """Drop the order and dedupe keys once every card of the user is deleted."""
        await self._redis.delete(self._order(user_id), self._dedupe(user_id))

    async def add_ref(self, issuer_id: str, number_index: str, holder: CardHolder) -> None:
        entry = f"{holder.user_id}/{holder.card_id}"
        await self._ref_add(keys=[self._refs(issuer_id)], args=[number_index, entry])

    async def remove_ref(self, issuer_id: str, number_index: str, holder: CardHolder) -> None:
        entry = f"{holder.user_id}/{holder.card_id}"
        await self._ref_remove(keys=[self._refs(issuer_id)], args=[number_index, entry])

    async def holders(self, issuer_id: str, number_index: str) -> list[CardHolder]:
        raw = await self._redis.hget(self._refs(issuer_id), number_index)
        if raw is None:
            return []
        pairs = (entry.partition("/") for entry in cast(bytes, raw).decode().split())
        return [CardHolder(user_id=user_id, card_id=card_id) for user_id, _, card_id in pairs]

    async def scan_cards(self) -> AsyncIterator[str]:
        """Every card key (offline use only: key rotation)."""
        async for key in self._redis.scan_iter(match=self._k.pattern("card"), count=500):
            yield cast(bytes, key).decode()

    async def reseal(self, key: str, reseal: Callable[[CardRecord], bytes | None]) -> bool:
        """Replace one card's sealed number with ``reseal(record)`` (None: no change), under
        WATCH so a concurrent PATCH or delete is never undone."""

        def rewrite(data: bytes) -> bytes | None:
            record = _decode(data)
            sealed = reseal(record)
            if sealed is None:
                return None
            return _encode(msgspec.structs.replace(record, number_sealed=sealed))

        return await rewrite_watched(self._redis, key, rewrite)
