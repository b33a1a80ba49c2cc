"""Redis keys of wallet users (the only code that names them).

- ``user:{usr_..}``        string, msgpack ``UserRecord``; no TTL
- ``utok:{<digest>}``      string, the user id a bearer token belongs to; no TTL
"""

from __future__ import annotations

from typing import cast

import msgspec
from redis.asyncio import Redis

from kernel.direct_redis import DirectRedis
from kernel.keys import KeySpace
from wallet_api.users.models import UserRecord

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(UserRecord).decode


class UserStore:
    def __init__(self, redis: Redis, direct: DirectRedis, keys: KeySpace) -> None:
        self._redis = redis
        self._direct = direct  # the token lookup runs on every user request
        self._keys = keys

    def _user(self, user_id: str) -> str:
        return self._keys.key("user", user_id)

    def record_key(self, user_id: str) -> str:
        """The user's record, for scripts that check a credential in the user's slot
        (msgpack map: ``token_digest`` names the user's one token)."""
        return self._user(user_id)

    def _token(self, token_digest: str) -> str:
        return self._keys.key("utok", token_digest)

    async def create(self, record: UserRecord) -> None:
        async with self._redis.pipeline(transaction=True) as tx:
            tx.set(self._user(record.user_id), _encode(record), nx=True)
            tx.set(self._token(record.token_digest), record.user_id)
            await tx.execute()

    async def get(self, user_id: str) -> UserRecord | None:
        raw = await self._redis.get(self._user(user_id))
        return None if raw is None else _decode(cast(bytes, raw))

    async def put(self, record: UserRecord) -> None:
        await self._redis.set(self._user(record.user_id), _encode(record), xx=True)

    async def user_id_for_token(self, token_digest: str) -> str | None:
        (raw,) = await self._direct.execute([("GET", self._token(token_digest))])
        return None if raw is None else cast(bytes, raw).decode()

    async def delete(self, record: UserRecord) -> None:
        async with self._redis.pipeline(transaction=True) as tx:
            tx.delete(self._user(record.user_id))
            tx.delete(self._token(record.token_digest))
            await tx.execute()
