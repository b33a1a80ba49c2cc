"""Redis keys of the presence engine (the only code that names them).

User slot (hash tag ``usr_..``):

- ``presence:{usr_..}``          hash, the engine state; TTL 7 days, renewed by each write.
  Fields: ``fix`` (last accepted fix, msgpack ``LastFix``; the only raw location kept),
  ``jump`` (newest too-fast fix, held until confirmed or replaced), ``bt`` (newest beacon
  pass time), ``rt`` (msgpack ``RegionMark``), ``v:<store_id>`` (msgpack ``OpenVisit``),
  ``d:<store_id>`` (visit id whose dwell has not fired yet)
- ``presence:{usr_..}:consent``  hash, no TTL: ``record`` (msgpack ``ConsentRecord``) and
  ``ver``, the counter of every write to the user's presence (the optimistic-concurrency
  guard). It lives here, in the key that never expires, so it never starts over while the
  user exists (a write prepared before consent was withdrawn and granted again still fails)
- ``presence:{usr_..}:visits``   sorted set, msgpack ``ClosedVisit`` scored by exit time;
  entries older than 90 days are trimmed by the retention sweep (and on each write, and
  never read), and the key expires 90 days after the last one

Global:

- ``presence:{dwell}``           sorted set ``<user>|<store>|<visit>|<issuer>`` scored by the
  dwell deadline; the sweep fires due ones (idempotently: the ``d:`` field decides)
- ``presence:{retention}``       sorted set of user ids scored by when their oldest visit
  turns 90 days old; the retention sweep trims those due
- ``presence:{transitions}``     stream, MAXLEN ~ 1,000,000, one entry per transition:
  ``type`` (enter|exit|dwell), ``user_id``, ``store_id``, ``issuer_id``, ``zone`` (only for
  in-store zone transitions), ``at`` (RFC 3339 UTC, ms), ``visit_id`` (shared by a visit's
  enter, dwell and exit), ``source`` (location|beacon|region|timer). Campaigns consume it.

The write-back script checks ``ver`` and applies the whole outcome (state fields, visit
history, timers, stream entries) or nothing. It spans the user's slot and the two global
keys, so it needs a single Redis node; on Redis Cluster the stream and timer entries would
be relayed from a per-user outbox (docs/architecture.md, roadmap).
"""

from __future__ import annotations

from typing import Final, cast

import msgspec
from redis.asyncio import Redis

from geofence.errors import CredentialRevoked
from geofence.models import (
    ClosedVisit,
    ConsentRecord,
    CredentialCheck,
    LastFix,
    OpenVisit,
    RegionMark,
)
from geofence.state import DwellTimer, Outcome, PresenceState, TransitionEvent
from kernel.clock import to_rfc3339
from kernel.direct_redis import DirectRedis, DirectScript
from kernel.keys import KeySpace

STATE_TTL_S: Final = 7 * 24 * 3600
VISITS_TTL_S: Final = 90 * 24 * 3600
TRANSITIONS_MAXLEN: Final = 1_000_000

_encode = msgspec.msgpack.Encoder().encode
_decode_consent = msgspec.msgpack.Decoder(ConsentRecord).decode
_decode_fix = msgspec.msgpack.Decoder(LastFix).decode
_decode_visit = msgspec.msgpack.Decoder(OpenVisit).decode
_decode_closed = msgspec.msgpack.Decoder(ClosedVisit).decode
_decode_mark = msgspec.msgpack.Decoder(RegionMark).decode

# Prepended to the read and the write-back: with one key more than the script's own
# (``CredentialCheck``), the record there must hold ARGV[#ARGV] in field ARGV[#ARGV - 1], else
# the script answers {2} and does nothing.
_CHECK = """
if #KEYS == %d then
  local raw = redis.call('GET', KEYS[%d])
  if not raw or cmsgpack.unpack(raw)[ARGV[#ARGV - 1]] ~= ARGV[#ARGV] then return {2} end
end
"""

# KEYS: 1 state, 2 consent.  Returns {consent record, ver, state fields}.
_READ = (
    _CHECK % (3, 3)
    + """
local meta = redis.call('HMGET', KEYS[2], 'record', 'ver')
return {meta[1], meta[2], redis.call('HGETALL', KEYS[1])}
"""
)

# KEYS: 1 state, 2 consent, 3 visits, 4 dwell timers, 5 transitions, 6 retention.
# ARGV: 1 expected ver, 2 state TTL, 3 visits TTL, 4 visits cutoff, 5 stream MAXLEN,
#       6..11 counts (fields set, fields deleted, timers set, timers cleared, visits ended,
#       transitions), then the items in that order; a transition is its field count, then
#       its field/value pairs; last, the user id and the retention score of the ended visits.
#       Returns {1} or, when ``ver`` moved, {0, consent, ver, state}.
_APPLY = (
    _CHECK % (7, 7)
    + """
local meta = redis.call('HMGET', KEYS[2], 'record', 'ver')
if (meta[2] or '0') ~= ARGV[1] then
  return {0, meta[1], meta[2], redis.call('HGETALL', KEYS[1])}
end
local a = 12
for _ = 1, tonumber(ARGV[6]) do redis.call('HSET', KEYS[1], ARGV[a], ARGV[a + 1]); a = a + 2 end
for _ = 1, tonumber(ARGV[7]) do redis.call('HDEL', KEYS[1], ARGV[a]); a = a + 1 end
redis.call('HINCRBY', KEYS[2], 'ver', 1)
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
for _ = 1, tonumber(ARGV[8]) do redis.call('ZADD', KEYS[4], ARGV[a], ARGV[a + 1]); a = a + 2 end
for _ = 1, tonumber(ARGV[9]) do redis.call('ZREM', KEYS[4], ARGV[a]); a = a + 1 end
local ended = tonumber(ARGV[10])
for _ = 1, ended do redis.call('ZADD', KEYS[3], ARGV[a], ARGV[a + 1]); a = a + 2 end
for _ = 1, tonumber(ARGV[11]) do
  local n = tonumber(ARGV[a])
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*', unpack(ARGV, a + 1, a + n))
  a = a + n + 1
end
if ended > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[4])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
  redis.call('ZADD', KEYS[6], 'LT', ARGV[a + 1], ARGV[a])
end
return {1}
"""
)

# KEYS: 1 state, 2 consent, 3 visits.  ARGV: 1 consent record, 2 '1' keeps collected data.
# Withdrawing location consent erases what was collected under it.
_CONSENT = """
redis.call('HSET', KEYS[2], 'record', ARGV[1])
if ARGV[2] ~= '1' then redis.call('DEL', KEYS[1], KEYS[3]) end
return redis.call('HINCRBY', KEYS[2], 'ver', 1)
"""

# KEYS: 1 visits, 2 retention.  ARGV: 1 user id, 2 cutoff (exit times before it go),
# 3 retention period.  Trims the user's visits and reschedules them by the oldest left.
_TRIM_VISITS = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] then
  redis.call('ZADD', KEYS[2], tonumber(oldest[2]) + tonumber(ARGV[3]), ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
"""

# KEYS: 1 state, 2 consent, 3 dwell timers, 4 transitions.  ARGV: 1 timer member,
# 2 store id, 3 visit id, 4 stream MAXLEN, 5.. the dwell transition's field/value pairs.
_FIRE_DWELL = """
local fired = 0
if redis.call('HGET', KEYS[1], 'd:' .. ARGV[2]) == ARGV[3] then
  redis.call('HDEL', KEYS[1], 'd:' .. ARGV[2])
  redis.call('HINCRBY', KEYS[2], 'ver', 1)
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', unpack(ARGV, 5))
  fired = 1
end
redis.call('ZREM', KEYS[3], ARGV[1])
return fired
"""


class DueDwell(msgspec.Struct, frozen=True):
    member: str
    user_id: str
    store_id: str
    visit_id: str
    issuer_id: str
    due: float


def transition_fields(user_id: str, event: TransitionEvent) -> list[str]:
    """The stream entry of one transition (the field list documented above)."""
    fields = [
        "type", event.type,
        "user_id", user_id,
        "store_id", event.store_id,
        "issuer_id", event.issuer_id,
        "at", to_rfc3339(event.at),
        "visit_id", event.visit_id,
        "source", event.source,
    ]  # fmt: skip
    if event.zone is not None:
        fields += ["zone", event.zone]
    return fields


def _state_of(raw_consent: bytes | None, raw_ver: bytes | None, flat: list[bytes]) -> PresenceState:
    state = PresenceState(version=0 if raw_ver is None else int(raw_ver))
    if raw_consent is not None:
        state.consent = _decode_consent(raw_consent)
    for i in range(0, len(flat), 2):
        name, value = flat[i], flat[i + 1]
        if name.startswith(b"v:"):
            state.visits[name[2:].decode()] = _decode_visit(value)
        elif name.startswith(b"d:"):
            state.pending_dwell[name[2:].decode()] = value.decode()
        elif name == b"fix":
            state.fix = _decode_fix(value)
        elif name == b"jump":
            state.jump = _decode_fix(value)
        elif name == b"bt":
            state.beacon_at = float(value)
        elif name == b"rt":
            state.region = _decode_mark(value)
    return state


def _field_changes(old: PresenceState, new: PresenceState) -> tuple[list[bytes | str], list[str]]:
    """(field, value, field, value, ...) to set and fields to delete, old -> new."""
    set_: list[bytes | str] = []
    deleted: list[str] = []
    singles: list[tuple[str, object, object]] = [
        ("fix", old.fix, new.fix),
        ("jump", old.jump, new.jump),
        ("bt", old.beacon_at, new.beacon_at),
        ("rt", old.region, new.region),
    ]
    for name, before, after in singles:
        if before == after:
            continue
        if after is None:
            deleted.append(name)
        else:
            # Encoded only when changed: most updates change the fix alone.
            set_ += [name, repr(after) if name == "bt" else _encode(after)]
    if new.visits is old.visits and new.pending_dwell is old.pending_dwell:
        return set_, deleted  # the engine copies these on their first change only
    for store_id, visit in new.visits.items():
        if old.visits.get(store_id) != visit:
            set_ += ["v:" + store_id, _encode(visit)]
    deleted += ["v:" + s for s in old.visits if s not in new.visits]
    for store_id, visit_id in new.pending_dwell.items():
        if old.pending_dwell.get(store_id) != visit_id:
            set_ += ["d:" + store_id, visit_id]
    deleted += ["d:" + s for s in old.pending_dwell if s not in new.pending_dwell]
    return set_, deleted


async def _checked(
    script: DirectScript,
    keys: list[str],
    args: list[bytes | str | int | float],
    check: CredentialCheck | None,
) -> list[object]:
    """Run a state script, with ``check`` (the ``_CHECK`` prelude) when one is given."""
    if check is not None:
        keys, args = [*keys, check.key], [*args, check.field, check.value]
    reply = cast(list[object], await script(keys, args))
    if reply[0] == 2:
        raise CredentialRevoked("the token is not valid")
    return reply


class PresenceStore:
    def __init__(self, redis: Redis, direct: DirectRedis, keys: KeySpace) -> None:
        self._redis = redis
        self._k = keys
        # Every location update reads and writes back: the hot path's own connection.
        self._read = DirectScript(direct, _READ)
        self._apply = DirectScript(direct, _APPLY)
        self._consent = redis.register_script(_CONSENT)
        self._fire_dwell = redis.register_script(_FIRE_DWELL)
        self._trim_visits = redis.register_script(_TRIM_VISITS)
        # The global keys, named once (every write-back names all three).
        self._timers_key = keys.key("presence", "dwell")
        self._retention_key = keys.key("presence", "retention")
        self._transitions_key = keys.key("presence", "transitions")

    # --- key builders ---------------------------------------------------------------------

    def _state(self, user_id: str) -> str:
        return self._k.key("presence", user_id)

    def _consent_key(self, user_id: str) -> str:
        return self._k.key("presence", user_id, "consent")

    def _visits(self, user_id: str) -> str:
        return self._k.key("presence", user_id, "visits")

    def _timers(self) -> str:
        return self._timers_key

    def _retention(self) -> str:
        return self._retention_key

    def transitions_key(self) -> str:
        """The stream campaigns consume (exposed so a consumer need not rebuild the name)."""
        return self._transitions_key

    @staticmethod
    def _timer_member(user_id: str, timer: DwellTimer) -> str:
        return f"{user_id}|{timer.store_id}|{timer.visit_id}|{timer.issuer_id}"

    # --- state ----------------------------------------------------------------------------

    async def read(self, user_id: str, check: CredentialCheck | None = None) -> PresenceState:
        keys = [self._state(user_id), self._consent_key(user_id)]
        raw_consent, raw_ver, flat = await _checked(self._read, keys, [], check)
        return _state_of(
            cast(bytes | None, raw_consent), cast(bytes | None, raw_ver), cast(list[bytes], flat)
        )

    async def consent(self, user_id: str) -> ConsentRecord:
        raw = await self._redis.hget(self._consent_key(user_id), "record")
        return ConsentRecord() if raw is None else _decode_consent(cast(bytes, raw))

    async def set_consent(self, user_id: str, record: ConsentRecord) -> None:
        await self._consent(
            keys=[self._state(user_id), self._consent_key(user_id), self._visits(user_id)],
            args=[_encode(record), "1" if record.location else "0"],
        )

    async def apply(
        self,
        user_id: str,
        old: PresenceState,
        outcome: Outcome,
        now: float,
        check: CredentialCheck | None = None,
    ) -> PresenceState | None:
        """Write the outcome if the state is still ``old``; else return the current state."""
        set_, deleted = _field_changes(old, outcome.state)
        # The visits cutoff is read only when a visit ended (a float's repr is not free).
        cutoff = repr(now - VISITS_TTL_S) if outcome.closed else "0"
        args: list[bytes | str | int | float] = [
            old.version, STATE_TTL_S, VISITS_TTL_S, cutoff, TRANSITIONS_MAXLEN,
            len(set_) // 2, len(deleted), len(outcome.timers_set), len(outcome.timers_cleared),
            len(outcome.closed), len(outcome.transitions),
            *set_, *deleted,
        ]  # fmt: skip
        for timer in outcome.timers_set:
            args += [repr(timer.due), self._timer_member(user_id, timer)]
        args += [self._timer_member(user_id, timer) for timer in outcome.timers_cleared]
        for visit in outcome.closed:
            args += [repr(visit.exited_at), _encode(visit)]
        for event in outcome.transitions:
            fields = transition_fields(user_id, event)
            args += [len(fields), *fields]
        if outcome.closed:
            oldest = min(visit.exited_at for visit in outcome.closed)
            args += [user_id, repr(oldest + VISITS_TTL_S)]
        keys = [
            self._state(user_id),
            self._consent_key(user_id),
            self._visits(user_id),
            self._timers(),
            self.transitions_key(),
            self._retention(),
        ]
        reply = await _checked(self._apply, keys, args, check)
        if reply[0] == 1:
            return None
        return _state_of(
            cast(bytes | None, reply[1]), cast(bytes | None, reply[2]), cast(list[bytes], reply[3])
        )

    # --- visits and personal data ---------------------------------------------------------

    async def closed_visits(
        self, user_id: str, since: float, before: float | None, skip: int, limit: int | None
    ) -> list[ClosedVisit]:
        """Newest first, exited at or after ``since`` and at or before ``before`` (None: from
        the newest), skipping the first ``skip`` of those; ``limit`` None: all."""
        top = "+inf" if before is None else repr(before)
        key, bottom = self._visits(user_id), repr(since)
        if limit is None:
            raws = await self._redis.zrevrangebyscore(key, top, bottom)
        else:
            raws = await self._redis.zrevrangebyscore(key, top, bottom, start=skip, num=limit)
        return [_decode_closed(cast(bytes, raw)) for raw in raws]

    async def erase(self, user_id: str) -> None:
        await self._redis.delete(
            self._state(user_id), self._consent_key(user_id), self._visits(user_id)
        )
        await self._redis.zrem(self._retention(), user_id)

    async def trim_due_visits(self, now: float, limit: int) -> int:
        """Drop visits older than the retention period for users due now; returns users."""
        due = await self._redis.zrangebyscore(
            self._retention(), "-inf", repr(now), start=0, num=limit
        )
        if not due:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for raw in cast(list[bytes], due):
                user_id = raw.decode()
                await self._trim_visits(
                    keys=[self._visits(user_id), self._retention()],
                    args=[user_id, repr(now - VISITS_TTL_S), VISITS_TTL_S],
                    client=pipe,
                )
            await pipe.execute()
        return len(due)

    # --- dwell timers ---------------------------------------------------------------------

    async def due_dwells(self, now: float, limit: int) -> list[DueDwell]:
        rows = await self._redis.zrangebyscore(
            self._timers(), "-inf", repr(now), start=0, num=limit, withscores=True
        )
        due = []
        for raw, score in cast(list[tuple[bytes, float]], rows):
            member = raw.decode()
            user_id, store_id, visit_id, issuer_id = member.split("|")
            due.append(DueDwell(member, user_id, store_id, visit_id, issuer_id, float(score)))
        return due

    async def fire_dwells(self, due: list[DueDwell]) -> list[DueDwell]:
        """Fire each timer whose visit is still waiting for it; returns those fired."""
        if not due:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for timer in due:
                event = TransitionEvent(
                    "dwell", timer.store_id, timer.issuer_id, timer.due, timer.visit_id, "timer"
                )
                keys = [
                    self._state(timer.user_id),
                    self._consent_key(timer.user_id),
                    self._timers(),
                    self.transitions_key(),
                ]
                await self._fire_dwell(
                    keys=keys,
                    args=[
                        timer.member,
                        timer.store_id,
                        timer.visit_id,
                        TRANSITIONS_MAXLEN,
                        *transition_fields(timer.user_id, event),
                    ],
                    client=pipe,
                )
            fired = await pipe.execute()
        return [timer for timer, done in zip(due, fired, strict=True) if done == 1]
