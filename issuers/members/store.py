"""Redis keys of members and enrollment codes (the only code that names them).

- ``member:{iss_..}:<number index>``  string, msgpack ``MemberRecord``; no TTL.  The index is
  ``keyring.blind_index("member:<issuer id>", number)``; the number is sealed inside.
- ``enroll:{<code index>}``           string, msgpack ``EnrollmentRecord``; TTL = the code's
  life (60 s to 7 days).  The index is ``keyring.blind_index("enrollment-code", code)``, so a
  dump of Redis yields no usable code.  Consumed with GETDEL: exactly once.

Each operation touches one key, so every one of them is single-slot on Redis Cluster.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import cast

import msgspec
from redis.asyncio import Redis
from redis.exceptions import WatchError

from issuers.members.models import EnrollmentRecord, MemberRecord
from kernel.keys import KeySpace
from kernel.watched import rewrite_watched

_encode = msgspec.msgpack.Encoder().encode
_decode_member = msgspec.msgpack.Decoder(MemberRecord).decode
_decode_enrollment = msgspec.msgpack.Decoder(EnrollmentRecord).decode

MemberChange = Callable[[MemberRecord | None], MemberRecord]
Reseal = Callable[[MemberRecord | EnrollmentRecord], bytes | None]


class MemberStore:
    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._k = keys

    def _member(self, issuer_id: str, number_index: str) -> str:
        return self._k.key("member", issuer_id, number_index)

    def member_key(self, issuer_id: str, number_index: str) -> str:
        """A member record's name, for POS verification's script (read in the issuer's slot)."""
        return self._member(issuer_id, number_index)

    def _enrollment(self, code_index: str) -> str:
        return self._k.key("enroll", code_index)

    async def get(self, issuer_id: str, number_index: str) -> MemberRecord | None:
        raw = await self._redis.get(self._member(issuer_id, number_index))
        return None if raw is None else _decode_member(cast(bytes, raw))

    async def get_many(self, refs: list[tuple[str, str]]) -> list[MemberRecord | None]:
        """Members by ``(issuer id, number index)``; one round trip (a pipeline, not MGET,
        since the keys live in different issuers' slots)."""
        if not refs:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for issuer_id, number_index in refs:
                pipe.get(self._member(issuer_id, number_index))
            raws = await pipe.execute()
        return [None if raw is None else _decode_member(cast(bytes, raw)) for raw in raws]

    async def upsert(
        self, issuer_id: str, number_index: str, change: MemberChange
    ) -> tuple[MemberRecord, bool]:
        """Apply ``change`` to the stored member (None when new) under WATCH; return the new
        record and whether it was created.  Concurrent upserts of one member retry."""
        key = self._member(issuer_id, number_index)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    current = None if raw is None else _decode_member(cast(bytes, raw))
                    record = change(current)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(key, _encode(record))
                    await pipe.execute()
                    return record, current is None
                except WatchError:
                    continue

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

    async def scan_sealed(self) -> AsyncIterator[str]:
        """Every member and enrollment key (offline use only: key rotation)."""
        for pattern in (self._k.pattern("member"), self._k.pattern("enroll")):
            async for key in self._redis.scan_iter(match=pattern, count=500):
                yield cast(bytes, key).decode()

    async def rewrap(self, key: str, reseal: Reseal) -> bool:
        """Re-seal the number inside one record; ``reseal(record)`` returns the new sealed value
        or None when it needs no change.  WATCH keeps a concurrent write from being undone."""
        is_member = key.startswith(self._k.pattern("member")[:-1])

        def rewrite(data: bytes) -> bytes | None:
            record: MemberRecord | EnrollmentRecord = (
                _decode_member(data) if is_member else _decode_enrollment(data)
            )
            sealed = reseal(record)
            if sealed is None:
                return None
            return _encode(msgspec.structs.replace(record, number_sealed=sealed))

        return await rewrite_watched(self._redis, key, rewrite)
