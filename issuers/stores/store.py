"""Redis keys of stores (the only code that names them).  No key has a TTL.

Per store and per program (hash tag = the owner):

- ``store:{sto_..}``             string, msgpack ``StoreRecord``
- ``store-list:{iss_..}``        sorted set store_id -> created_at in microseconds: the listing
                                 order, and the program's set of store ids
- ``store-ext:{iss_..}``         hash external_id -> store_id (the partner's own ids, unique
                                 within the program)

Global (tag = the looked-up value, or one fixed tag for the whole index):

- ``beacon:{<uuid>:<major>:<minor>}``  string ``<store_id>:<issuer_id>``, the beacon's one owner
                                 across all programs (uuid lower-case)
- ``geo:{stores}``               geo set of every store_id at its fence centre (GEOSEARCH)
- ``geo:{stores}:issuer``        hash store_id -> issuer_id
- ``stores:{changes}``           stream, one entry {store_id, issuer_id, op: upsert|delete} per
                                 store written, MAXLEN ~ 100000: the presence engine's feed
- ``stores:{changes}:version``   string counter, incremented by every write that changed a store

Every write (one store, or a batch of import rows) is one Lua script, so a store's record, its
indexes, its beacon claims and its change entry appear together or not at all, and two writes
can never both claim a beacon.  Writes are optimistic: the caller passes the SHA-1 of the
record bytes it read (or "absent"), and a store changed in between comes back ``stale`` for the
caller to re-read and retry.  The script spans the program's slot and the global keys, so it
needs a single Redis node; on Redis Cluster the global indexes must move to a follower of the
change stream (see docs/architecture.md, roadmap).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Literal, NamedTuple, cast

import msgspec
from redis.asyncio import Redis

from issuers.stores.models import Beacon, StoreChange, StoreRecord
from kernel.keys import KeySpace
from kernel.pagination import InvalidCursor

CHANGES_MAXLEN = 100_000
ScoredRows = list[tuple[bytes, float]]
StreamRows = list[tuple[bytes, dict[bytes, bytes]]]
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(StoreRecord).decode

# KEYS: 1 geo, 2 geo issuer hash, 3 change stream, 4 version, 5 program list, 6 program
#       external ids; then per store: its record, its new beacon keys, its released beacon keys.
# ARGV: 1 issuer_id, 2 stream MAXLEN, 3 msgpack array with one 9-item array per store (see
#       ``_store_args``), then each store's record.  One blob instead of 9 arguments per store
#       halves the encoding cost (Redis's cmsgpack reads no binary, hence the separate records).
_UPSERT_LUA = """
local issuer, maxlen = ARGV[1], ARGV[2]
local k, changed, results = 7, 0, {}
for i, s in ipairs(cmsgpack.unpack(ARGV[3])) do
  local id, expected, score, lon, lat, ext_new, ext_old, n_new, n_old = unpack(s)
  local record = ARGV[3 + i]
  local claim = id .. ':' .. issuer
  local current = redis.call('GET', KEYS[k])
  local status = 'ok'
  if (expected == '' and current) or
     (expected ~= '' and (not current or redis.sha1hex(current) ~= expected)) then
    status = 'stale'
  end
  if status == 'ok' and ext_new ~= '' then
    local owner = redis.call('HGET', KEYS[6], ext_new)
    if owner and owner ~= id then status = 'external_id_taken' end
  end
  if status == 'ok' then
    for j = 1, n_new do
      local holder = redis.call('GET', KEYS[k + j])
      if holder and holder ~= claim then
        status = 'beacon_taken:' .. (j - 1) .. ':' .. holder
        break
      end
    end
  end
  if status == 'ok' then
    for j = n_new + 1, n_new + n_old do
      if redis.call('GET', KEYS[k + j]) == claim then redis.call('DEL', KEYS[k + j]) end
    end
    for j = 1, n_new do redis.call('SET', KEYS[k + j], claim) end
    if ext_old ~= '' and ext_old ~= ext_new and redis.call('HGET', KEYS[6], ext_old) == id then
      redis.call('HDEL', KEYS[6], ext_old)
    end
    if ext_new ~= '' then redis.call('HSET', KEYS[6], ext_new, id) end
    redis.call('SET', KEYS[k], record)
    redis.call('ZADD', KEYS[5], 'NX', score, id)
    redis.call('GEOADD', KEYS[1], lon, lat, id)
    redis.call('HSET', KEYS[2], id, issuer)
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*',
               'store_id', id, 'issuer_id', issuer, 'op', 'upsert')
    changed = changed + 1
    if current then status = 'updated' else status = 'created' end
  end
  results[i] = status
  k = k + 1 + n_new + n_old
end
if changed > 0 then redis.call('INCR', KEYS[4]) end
return results
"""

# KEYS: 1-6 as above, 7 the record, then its beacon keys.
# ARGV: issuer_id, store_id, SHA-1 of the record read, external_id or '', stream MAXLEN.
_DELETE_LUA = """
local issuer, id, expected, ext, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local current = redis.call('GET', KEYS[7])
if not current or redis.sha1hex(current) ~= expected then return 'stale' end
local claim = id .. ':' .. issuer
for j = 8, #KEYS do
  if redis.call('GET', KEYS[j]) == claim then redis.call('DEL', KEYS[j]) end
end
if ext ~= '' and redis.call('HGET', KEYS[6], ext) == id then redis.call('HDEL', KEYS[6], ext) end
redis.call('DEL', KEYS[7])
redis.call('ZREM', KEYS[5], id)
redis.call('ZREM', KEYS[1], id)
redis.call('HDEL', KEYS[2], id)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*',
           'store_id', id, 'issuer_id', issuer, 'op', 'delete')
redis.call('INCR', KEYS[4])
return 'deleted'
"""


class Loaded(NamedTuple):
    """A record as read, with the SHA-1 of its bytes (the optimistic-write precondition)."""

    record: StoreRecord
    sha: str


class WriteOutcome(NamedTuple):
    status: Literal["created", "updated", "stale", "external_id_taken", "beacon_taken"]
    beacon_index: int = -1
    holder_store_id: str = ""
    holder_issuer_id: str = ""


def _outcome(raw: bytes) -> WriteOutcome:
    text = raw.decode()
    if text.startswith("beacon_taken:"):
        _, index, holder = text.split(":", 2)
        store_id, _, issuer_id = holder.partition(":")
        return WriteOutcome("beacon_taken", int(index), store_id, issuer_id)
    return WriteOutcome(cast(Literal["created", "updated", "stale", "external_id_taken"], text))


def _store_args(
    record: StoreRecord, previous: Loaded | None, claimed: int, released: int
) -> tuple[str | int, ...]:
    # Strings, not numbers, for the score and coordinates: Lua would print numbers with 14
    # significant digits, too few for a microsecond score.
    return (
        record.store_id,
        "" if previous is None else previous.sha,
        str(created_score(record.created_at)),
        repr(record.lon),
        repr(record.lat),
        record.external_id or "",
        "" if previous is None else previous.record.external_id or "",
        claimed,
        released,
    )


def created_score(created_at: float) -> int:
    """Listing order: creation time in microseconds (imports space their rows 1 us apart)."""
    return round(created_at * 1_000_000)


def listing_position(position: str | None) -> tuple[int, str] | None:
    """The (score, member) a decoded list cursor names; see ``position_after``."""
    if position is None:
        return None
    score, _, member = position.partition(":")
    if not score.isdigit() or not member:
        raise InvalidCursor("cursor is not one this API returned", field="cursor")
    return int(score), member


def position_after(score: int, member: str) -> str:
    return f"{score}:{member}"


async def page_by_score(
    redis: Redis, key: str, after: tuple[int, str] | None, limit: int
) -> list[tuple[str, int]]:
    """Members in (score, member) order strictly after ``after``; ties on a score are rare
    (same microsecond) and are skipped by member, so a page never repeats or loses one."""
    if after is None:
        first = cast(ScoredRows, await redis.zrange(key, 0, limit - 1, withscores=True))
        return [(member.decode(), int(score)) for member, score in first]
    score, member = after
    found: list[tuple[str, int]] = []
    offset = 0
    while len(found) < limit:
        batch = limit + 16
        rows = cast(
            ScoredRows,
            await redis.zrangebyscore(key, score, "+inf", start=offset, num=batch, withscores=True),
        )
        for raw, raw_score in rows:
            item = (raw.decode(), int(raw_score))
            if item[1] > score or (item[1] == score and item[0] > member):
                found.append(item)
        if len(rows) < batch:
            break
        offset += batch
    return found[:limit]


class StoreStore:
    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._k = keys
        self._upsert = redis.register_script(_UPSERT_LUA)
        self._delete = redis.register_script(_DELETE_LUA)

    # --- key builders ---------------------------------------------------------------------

    def _store(self, store_id: str) -> str:
        return self._k.key("store", store_id)

    def _list(self, issuer_id: str) -> str:
        return self._k.key("store-list", issuer_id)

    def _ext(self, issuer_id: str) -> str:
        return self._k.key("store-ext", issuer_id)

    def _beacon(self, beacon: Beacon) -> str:
        return self._k.key("beacon", f"{beacon.uuid.lower()}:{beacon.major}:{beacon.minor}")

    def _geo(self, *rest: str) -> str:
        return self._k.key("geo", "stores", *rest)

    def _changes(self, *rest: str) -> str:
        return self._k.key("stores", "changes", *rest)

    def _shared_keys(self, issuer_id: str) -> list[str]:
        return [
            self._geo(),
            self._geo("issuer"),
            self._changes(),
            self._changes("version"),
            self._list(issuer_id),
            self._ext(issuer_id),
        ]

    # --- reads ----------------------------------------------------------------------------

    async def get(self, store_id: str) -> StoreRecord | None:
        raw = await self._redis.get(self._store(store_id))
        return None if raw is None else _decode(cast(bytes, raw))

    async def get_many(self, store_ids: list[str]) -> list[StoreRecord]:
        if not store_ids:
            return []
        raws = await self._redis.mget([self._store(i) for i in store_ids])
        return [_decode(cast(bytes, r)) for r in raws if r is not None]

    async def load(self, store_ids: list[str]) -> dict[str, Loaded]:
        """Records with the digest a later ``write``/``delete`` checks them against."""
        if not store_ids:
            return {}
        raws = await self._redis.mget([self._store(i) for i in store_ids])
        return {
            store_id: Loaded(_decode(raw), hashlib.sha1(raw).hexdigest())
            for store_id, raw in zip(store_ids, cast(list[bytes | None], raws), strict=True)
            if raw is not None
        }

    async def ids_for_external(self, issuer_id: str, external_ids: list[str]) -> list[str | None]:
        if not external_ids:
            return []
        raws = cast(list[bytes | None], await self._redis.hmget(self._ext(issuer_id), external_ids))
        return [None if r is None else r.decode() for r in raws]

    async def page(
        self, issuer_id: str, after: tuple[int, str] | None, limit: int
    ) -> list[tuple[str, int]]:
        return await page_by_score(self._redis, self._list(issuer_id), after, limit)

    async def beacon_owner(self, beacon: Beacon) -> tuple[str, str] | None:
        """(store_id, issuer_id) of the store that claimed this uuid/major/minor."""
        raw = await self._redis.get(self._beacon(beacon))
        if raw is None:
            return None
        store_id, _, issuer_id = cast(bytes, raw).decode().partition(":")
        return store_id, issuer_id

    # --- writes ---------------------------------------------------------------------------

    async def write(
        self, issuer_id: str, writes: list[tuple[StoreRecord, Loaded | None]]
    ) -> list[WriteOutcome]:
        """Upsert each (new record, what was read before) all-or-nothing per store."""
        keys = self._shared_keys(issuer_id)
        stores = []
        records = []
        for record, previous in writes:
            claimed = [self._beacon(b) for b in record.beacons]
            released: list[str] = []
            if previous is not None:
                released = [self._beacon(b) for b in previous.record.beacons]
                released = [key for key in released if key not in set(claimed)]
            keys += [self._store(record.store_id), *claimed, *released]
            stores.append(_store_args(record, previous, len(claimed), len(released)))
            records.append(_encode(record))
        args: list[str | int | bytes] = [issuer_id, CHANGES_MAXLEN, _encode(stores), *records]
        raws = await self._upsert(keys=keys, args=args)
        return [_outcome(cast(bytes, raw)) for raw in raws]

    async def delete(self, current: Loaded) -> bool:
        """False when the record changed since it was read (or is gone)."""
        record = current.record
        keys = self._shared_keys(record.issuer_id)
        keys += [self._store(record.store_id), *(self._beacon(b) for b in record.beacons)]
        args: list[str | int] = [
            record.issuer_id,
            record.store_id,
            current.sha,
            record.external_id or "",
            CHANGES_MAXLEN,
        ]
        return cast(bytes, await self._delete(keys=keys, args=args)) == b"deleted"

    # --- the presence engine's view -------------------------------------------------------

    async def version(self) -> int:
        """Bumped by every write that changed a store: compare to know whether to look."""
        raw = await self._redis.get(self._changes("version"))
        return 0 if raw is None else int(cast(bytes, raw))

    async def changes_since(self, change_id: str, count: int) -> list[StoreChange]:
        """Changes strictly after ``change_id`` ("0-0" for the start), oldest first.

        The stream keeps about the last 100,000 changes: when ``oldest_change_id()`` is past
        the id a follower last saw, it missed some and must reload (``scan_records``)."""
        rows = cast(
            StreamRows,
            await self._redis.xrange(self._changes(), min=f"({change_id}", count=count),
        )
        return [
            StoreChange(
                change_id=entry_id.decode(),
                store_id=fields[b"store_id"].decode(),
                issuer_id=fields[b"issuer_id"].decode(),
                op="delete" if fields[b"op"] == b"delete" else "upsert",
            )
            for entry_id, fields in rows
        ]

    async def oldest_change_id(self) -> str | None:
        rows = cast(StreamRows, await self._redis.xrange(self._changes(), count=1))
        return None if not rows else rows[0][0].decode()

    async def latest_change_id(self) -> str:
        """Where a follower that just loaded everything starts reading ("0-0": none yet)."""
        rows = cast(StreamRows, await self._redis.xrevrange(self._changes(), count=1))
        return "0-0" if not rows else rows[0][0].decode()

    async def nearby(
        self, lat: float, lon: float, radius_m: float, count: int
    ) -> list[tuple[str, float]]:
        """(store_id, metres from the fence centre), nearest first."""
        rows = await self._redis.geosearch(
            self._geo(),
            longitude=lon,
            latitude=lat,
            radius=radius_m,
            unit="m",
            sort="ASC",
            count=count,
            withdist=True,
        )
        return [(member.decode(), float(dist)) for member, dist in cast(ScoredRows, rows)]

    async def scan_records(self, batch: int = 1000) -> AsyncIterator[list[StoreRecord]]:
        """Every store, in batches (HSCAN: for a follower's full load, never a request)."""
        cursor = 0
        while True:
            cursor, found = cast(
                tuple[int, dict[bytes, bytes]],
                await self._redis.hscan(self._geo("issuer"), cursor, count=batch),
            )
            if found:
                yield await self.get_many([k.decode() for k in found])
            if cursor == 0:
                return
