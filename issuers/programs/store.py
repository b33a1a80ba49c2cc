"""Redis keys of programs (the only code that names them).

- ``iss:{iss_..}``              string, msgpack ``IssuerRecord``
- ``iss:{iss_..}:keys``         hash key_id -> msgpack ``ApiKeyRecord``
- ``pkey:{<digest>}``           string, msgpack ``ApiKeyRecord`` (token lookup)
- ``catalogue:{catalogue}``     sorted set (score 0) of ``<word>\\0<issuer_id>`` for name search
- ``catalogue:{catalogue}:all`` sorted set issuer_id -> created_at (the catalogue's order)
- ``catalogue:{catalogue}:rules`` hash issuer_id -> msgpack list[NumberPattern]

Issuer creation and name changes touch the issuer's slot, the key lookup and the catalogue
in one MULTI: single-node only.  On Redis Cluster the catalogue must be updated idempotently
after the issuer write (see docs/architecture.md, roadmap).
"""

from __future__ import annotations

import re
from typing import cast

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from issuers.programs.models import ApiKeyRecord, IssuerRecord, NumberPattern
from kernel.keys import KeySpace

_encode = msgspec.msgpack.Encoder().encode
_decode_issuer = msgspec.msgpack.Decoder(IssuerRecord).decode
_decode_key = msgspec.msgpack.Decoder(ApiKeyRecord).decode
_decode_rules = msgspec.msgpack.Decoder(list[NumberPattern]).decode
_WORD = re.compile(r"\w+")


def name_words(name: str) -> set[str]:
    return {w for w in _WORD.findall(name.casefold()) if w}


class ProgramStore:
    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._k = keys

    def _issuer(self, issuer_id: str) -> str:
        return self._k.key("iss", issuer_id)

    def issuer_key(self, issuer_id: str) -> str:
        """The program record's name, for POS verification's script, which reads
        ``code_policy`` from it (cmsgpack) in the issuer's slot."""
        return self._issuer(issuer_id)

    def _keys_of(self, issuer_id: str) -> str:
        return self._k.key("iss", issuer_id, "keys")

    def _key_lookup(self, digest: str) -> str:
        return self._k.key("pkey", digest)

    def _catalogue(self, *rest: str) -> str:
        return self._k.key("catalogue", "catalogue", *rest)

    def _index(self, tx: Pipeline, record: IssuerRecord, old_name: str | None) -> None:
        if old_name is not None:
            tx.zrem(self._catalogue(), *[f"{w}\0{record.issuer_id}" for w in name_words(old_name)])
        tx.zadd(self._catalogue(), {f"{w}\0{record.issuer_id}": 0 for w in name_words(record.name)})
        tx.zadd(self._catalogue("all"), {record.issuer_id: record.created_at})
        tx.hset(self._catalogue("rules"), record.issuer_id, _encode(record.number_patterns))

    async def create(self, record: IssuerRecord, key: ApiKeyRecord) -> None:
        async with self._redis.pipeline(transaction=True) as tx:
            tx.set(self._issuer(record.issuer_id), _encode(record), nx=True)
            tx.hset(self._keys_of(record.issuer_id), key.key_id, _encode(key))
            tx.set(self._key_lookup(key.digest), _encode(key))
            self._index(tx, record, None)
            await tx.execute()

    async def get(self, issuer_id: str) -> IssuerRecord | None:
        raw = await self._redis.get(self._issuer(issuer_id))
        return None if raw is None else _decode_issuer(cast(bytes, raw))

    async def get_many(self, issuer_ids: list[str]) -> list[IssuerRecord]:
        if not issuer_ids:
            return []
        raws = await self._redis.mget([self._issuer(i) for i in issuer_ids])
        return [_decode_issuer(cast(bytes, r)) for r in raws if r is not None]

    async def put(self, record: IssuerRecord, old_name: str) -> None:
        async with self._redis.pipeline(transaction=True) as tx:
            tx.set(self._issuer(record.issuer_id), _encode(record), xx=True)
            self._index(tx, record, old_name)
            await tx.execute()

    async def add_key(self, key: ApiKeyRecord) -> None:
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hset(self._keys_of(key.issuer_id), key.key_id, _encode(key))
            tx.set(self._key_lookup(key.digest), _encode(key))
            await tx.execute()

    async def list_keys(self, issuer_id: str) -> list[ApiKeyRecord]:
        raws = cast(list[bytes], await self._redis.hvals(self._keys_of(issuer_id)))
        return sorted((_decode_key(r) for r in raws), key=lambda k: k.created_at)

    async def remove_key(self, key: ApiKeyRecord) -> None:
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hdel(self._keys_of(key.issuer_id), key.key_id)
            tx.delete(self._key_lookup(key.digest))
            await tx.execute()

    async def key_for_digest(self, digest: str) -> ApiKeyRecord | None:
        raw = await self._redis.get(self._key_lookup(digest))
        return None if raw is None else _decode_key(cast(bytes, raw))

    async def search(self, word_prefix: str, limit: int) -> list[str]:
        """Issuer ids with a name word starting with ``word_prefix`` (lexicographic index)."""
        found = await self._redis.zrangebylex(
            self._catalogue(), f"[{word_prefix}", f"[{word_prefix}\xff", start=0, num=limit * 4
        )
        ids = dict.fromkeys(cast(bytes, m).split(b"\0", 1)[1].decode() for m in found)
        return list(ids)[:limit]

    async def page(self, after: float, limit: int) -> list[tuple[str, float]]:
        """Issuer ids in creation order, strictly after the score ``after``."""
        rows = await self._redis.zrangebyscore(
            self._catalogue("all"), f"({after}", "+inf", start=0, num=limit, withscores=True
        )
        return [(m.decode(), float(s)) for m, s in cast(list[tuple[bytes, float]], rows)]

    async def all_rules(self) -> dict[str, list[NumberPattern]]:
        raw = cast(dict[bytes, bytes], await self._redis.hgetall(self._catalogue("rules")))
        return {k.decode(): _decode_rules(v) for k, v in raw.items()}
