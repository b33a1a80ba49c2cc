"""Redis keys of members and enrollment codes (the only code that names them).

- ``members:{iss_..}``                hash number index -> msgpack ``MemberRecord``; no TTL.  The
  index is ``keyring.blind_index("member:<issuer id>", number)``; the number is sealed
  inside.  One hash per program (not a key per member) so POS verification's script, which
  learns a card's member index from a one-time token record it reads, can look the member
  up by field in a key it declared.  Writes are field compare-and-sets, not WATCH.
- ``enroll:{<code index>}``           string, msgpack ``EnrollmentRecord``; TTL = the code's
  life (60 s to 7 days).  The index is ``keyring.blind_index("enrollment-code", code)``, so a
  dump of Redis yields no usable code.  Consumed with GETDEL: exactly once.

Each operation touches one key, so every one of them is single-slot on Redis Cluster.
Rotation walks ``SealedItem``s: ``(key, field)`` for members, ``(key, None)`` for enrollment
codes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import cast

import msgspec
from redis.asyncio import Redis

from issuers.members.models import EnrollmentRecord, MemberRecord
from kernel.keys import KeySpace
from kernel.watched import FieldSwap, SealedItem

_encode = msgspec.msgpack.Encoder().encode
_decode_member = msgspec.msgpack.Decoder(MemberRecord).decode
_decode_enrollment = msgspec.msgpack.Decoder(EnrollmentRecord).decode

MemberChange = Callable[[MemberRecord | None], MemberRecord]
Reseal = Callable[[MemberRecord | EnrollmentRecord], bytes | None]


class MemberStore:
    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._k = keys
        self._swap = FieldSwap(redis)

    def _members(self, issuer_id: str) -> str:
        return self._k.key("members", issuer_id)

    def members_key(self, issuer_id: str) -> str:
        """The program's member hash (field: number index), for POS verification's script."""
        return self._members(issuer_id)

    def _enrollment(self, code_index: str) -> str:
        return self._k.key("enroll", code_index)

    async def get(self, issuer_id: str, number_index: str) -> MemberRecord | None:
        raw = await self._redis.hget(self._members(issuer_id), number_index)
        return None if raw is None else _decode_member(cast(bytes, raw))

    async def get_many(self, refs: list[tuple[str, str]]) -> list[MemberRecord | None]:
        """Members by ``(issuer id, number index)``; one round trip (a pipeline, not MGET,
        since the keys live in different issuers' slots)."""
        if not refs:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for issuer_id, number_index in refs:
                pipe.hget(self._members(issuer_id), number_index)
            raws = await pipe.execute()
        return [None if raw is None else _decode_member(cast(bytes, raw)) for raw in raws]

    async def upsert(
        self, issuer_id: str, number_index: str, change: MemberChange
    ) -> tuple[MemberRecord, bool]:
        """Apply ``change`` to the stored member (None when new) by compare-and-set; return the
        new record and whether it was created.  Concurrent upserts of one member retry."""
        key = self._members(issuer_id)
        while True:
            raw = cast(bytes | None, await self._redis.hget(key, number_index))
            current = None if raw is None else _decode_member(raw)
            record = change(current)
            if await self._swap(key, number_index, raw, _encode(record)):
                return record, current is None

    async def add_enrollment(self, code_index: str, record: EnrollmentRecord, ttl_ms: int) -> bool:
        """Store a new code; False if that code already exists (a collision: mint another)."""
        done = await self._redis.set(
            self._enrollment(code_index), _encode(record), nx=True, px=max(1, ttl_ms)
        )
        return bool(done)

    async def take_enrollment(self, code_index: str) -> EnrollmentRecord | None:
        """Read and delete in one command: two concurrent takers never both get the record."""
        raw = await self._redis.getdel(self._enrollment(code_index))
        return None if raw is None else _decode_enrollment(cast(bytes, raw))

    async def scan_sealed(self) -> AsyncIterator[SealedItem]:
        """Every member and enrollment record (offline use only: key rotation)."""
        async for key in self._redis.scan_iter(match=self._k.pattern("members"), count=500):
            async for field, _ in self._redis.hscan_iter(key, count=500):
                yield cast(bytes, key).decode(), cast(bytes, field).decode()
        async for key in self._redis.scan_iter(match=self._k.pattern("enroll"), count=500):
            yield cast(bytes, key).decode(), None

    async def rewrap(self, item: SealedItem, reseal: Reseal) -> bool:
        """Re-seal the number inside one record; ``reseal(record)`` returns the new sealed value
        or None when it needs no change.  A concurrent write is never undone."""
        field = item[1]

        def rewrite(data: bytes) -> bytes | None:
            record: MemberRecord | EnrollmentRecord = (
                _decode_member(data) if field is not None else _decode_enrollment(data)
            )
            sealed = reseal(record)
            if sealed is None:
                return None
            return _encode(msgspec.structs.replace(record, number_sealed=sealed))

        return await self._swap.rewrite_item(item, rewrite)
