"""Presence: consent, evidence in, transitions out, region sync, visits.

Each evidence call reads the user's state, runs the pure engine over this process's fence
index, and writes the outcome back with one script that refuses if the state moved
meanwhile (then it runs again on the state the script returned). So two concurrent requests
for one user can never both emit the same enter, and a retried fix is simply stale.

The last state this process wrote for a user is kept in a small in-memory cache and used as
the starting guess: when it is still current (the usual case for a phone talking to one
worker) an update costs one Redis call; when another worker moved it, the write-back is
refused and returns the current state, costing one more. It is never trusted for an answer
that writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, Protocol

from geofence import metrics
from geofence.engine import PresenceEngine
from geofence.errors import (
    ConsentRequired,
    CredentialRevoked,
    InvalidLocationReport,
    PresenceBusy,
    PresenceIndexLoading,
)
from geofence.follower import LiveIndex
from geofence.models import (
    BeaconReport,
    ClosedVisit,
    Consent,
    ConsentRecord,
    ConsentUpdate,
    CredentialCheck,
    Fix,
    Ignored,
    LocationReport,
    Platform,
    PresenceExport,
    PresenceResult,
    RegionEvent,
    RegionSet,
    Transition,
    Visit,
)
from geofence.nearby import NearbyCache
from geofence.regions import region_set
from geofence.state import (
    Eligibility,
    Everyone,
    FixEvidence,
    HeldPrograms,
    MembershipNeeded,
    Outcome,
    PresenceState,
    SightingEvidence,
    Undecided,
)
from geofence.store import VISITS_TTL_S, PresenceStore
from kernel.clock import Clock
from kernel.ids import new_id
from kernel.lru import LRU
from kernel.pagination import InvalidCursor, decode_cursor, encode_cursor
from kernel.structs import Page

MAX_ATTEMPTS: Final = 8
CACHE_SIZE: Final = 20_000
CACHE_MAX_AGE_S: Final = 60.0

Step = Callable[[PresenceState, Eligibility], Outcome]
_EVERYONE = Everyone()
_UNDECIDED = Undecided()
_NOTHING_IGNORED = Ignored()


class MembershipDirectory(Protocol):
    """The wallet's answer to "which programs does this user hold a card of?"."""

    async def issuer_ids_of(self, user_id: str) -> set[str]: ...


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _consent(record: ConsentRecord) -> Consent:
    return Consent(
        location=record.location,
        discovery=record.discovery,
        updated_at=_at(record.updated_at) if record.updated_at else None,
    )


def fixes_of(report: LocationReport) -> list[FixEvidence]:
    """The fixes of a report: exactly one fix, or a ``fixes`` batch."""
    lat, lon, accuracy_m, at = report.lat, report.lon, report.accuracy_m, report.recorded_at
    if report.fixes is not None:
        if lat is not None or lon is not None or accuracy_m is not None or at is not None:
            raise InvalidLocationReport(
                "send one fix (lat, lon, accuracy_m, recorded_at) or a fixes batch, not both",
                field="fixes",
            )
        return [
            FixEvidence(f.lat, f.lon, f.accuracy_m, f.recorded_at.timestamp()) for f in report.fixes
        ]
    if lat is None or lon is None or accuracy_m is None or at is None:
        single = {"lat": lat, "lon": lon, "accuracy_m": accuracy_m, "recorded_at": at}
        name = next(name for name, value in single.items() if value is None)
        raise InvalidLocationReport(f"{name} is required for a single fix", field=name)
    return [FixEvidence(lat, lon, accuracy_m, at.timestamp())]


class _StateCache:
    """LRU of the last state written per user (a hint: the write-back verifies it)."""

    def __init__(self, size: int, max_age_s: float) -> None:
        self._items: LRU[str, tuple[float, PresenceState]] = LRU(size)
        self._max_age_s = max_age_s

    def get(self, user_id: str) -> PresenceState | None:
        item = self._items.get(user_id)
        if item is None or time.monotonic() - item[0] > self._max_age_s:
            return None
        return item[1]

    def put(self, user_id: str, state: PresenceState) -> None:
        self._items.put(user_id, (time.monotonic(), state))

    def drop(self, user_id: str) -> None:
        self._items.drop(user_id)


class PresenceService:
    """Also the "presence" personal-data part (consent, last fix, visits)."""

    name = "presence"

    def __init__(
        self,
        store: PresenceStore,
        live: LiveIndex,
        memberships: MembershipDirectory,
        clock: Clock,
        *,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self._store = store
        self._live = live
        self._memberships = memberships
        self._clock = clock
        self._engine = PresenceEngine(lambda: new_id("vis"))
        self._cache = _StateCache(cache_size, CACHE_MAX_AGE_S)
        self._nearby = NearbyCache(cache_size)

    def _forget_cached(self, user_id: str) -> None:
        """What this worker holds of the user's whereabouts: gone with the consent."""
        self._cache.drop(user_id)
        self._nearby.drop(user_id)

    # --- consent --------------------------------------------------------------------------

    async def consent(self, user_id: str) -> Consent:
        return _consent(await self._store.consent(user_id))

    async def update_consent(self, user_id: str, data: ConsentUpdate) -> Consent:
        """Withdrawing location consent erases the presence data collected under it."""
        record = ConsentRecord(
            location=data.location, discovery=data.discovery, updated_at=self._clock.now()
        )
        self._forget_cached(user_id)
        await self._store.set_consent(user_id, record)
        return _consent(record)

    async def _require_consent(self, user_id: str) -> ConsentRecord:
        record = await self._store.consent(user_id)
        if not record.location:
            raise ConsentRequired("the user has not granted location consent (PUT /v1/me/consent)")
        return record

    # --- evidence -------------------------------------------------------------------------

    def _require_index(self) -> None:
        if not self._live.loaded:
            raise PresenceIndexLoading("stores are still loading in this worker; retry shortly")

    async def report_location(
        self, user_id: str, report: LocationReport, check: CredentialCheck | None = None
    ) -> PresenceResult:
        """``check``: the caller's credential, when it was not looked up for this request;
        every read and write of the user's state then checks it (``CredentialRevoked``)."""
        fixes = fixes_of(report)
        now = self._clock.now()

        def step(state: PresenceState, eligibility: Eligibility) -> Outcome:
            # The index as it is at each attempt: a reload may swap it while one awaits.
            fences = self._nearby.fences_for(self._live.index, user_id)
            return self._engine.locate(state, fixes, fences, eligibility, now)

        return await self._evaluate(user_id, "location", step, now, check)

    async def report_beacons(self, user_id: str, report: BeaconReport) -> PresenceResult:
        sightings = [
            SightingEvidence(
                s.uuid.lower(), s.major, s.minor, s.proximity, s.rssi, s.recorded_at.timestamp()
            )
            for s in report.sightings
        ]
        now = self._clock.now()

        def step(state: PresenceState, eligibility: Eligibility) -> Outcome:
            return self._engine.sight(state, sightings, self._live.index, eligibility, now)

        return await self._evaluate(user_id, "beacon", step, now)

    async def report_region_event(self, user_id: str, event: RegionEvent) -> PresenceResult:
        at = event.recorded_at.timestamp()
        now = self._clock.now()

        def step(state: PresenceState, eligibility: Eligibility) -> Outcome:
            return self._engine.region_event(
                state, event.region_id, event.event, at, self._live.index, eligibility, now
            )

        return await self._evaluate(user_id, "region", step, now)

    async def _evaluate(
        self, user_id: str, kind: str, step: Step, now: float, check: CredentialCheck | None = None
    ) -> PresenceResult:
        self._require_index()
        try:
            return await self._attempts(user_id, kind, step, now, check)
        except CredentialRevoked:
            # The engine may have run on a cached state (and gathered fences around the
            # refused fix) before the script refused: keep nothing of it in this worker.
            self._forget_cached(user_id)
            raise

    async def _attempts(
        self, user_id: str, kind: str, step: Step, now: float, check: CredentialCheck | None
    ) -> PresenceResult:
        cached = self._cache.get(user_id)
        state = cached or await self._store.read(user_id, check)
        trusted = cached is None
        held: Eligibility | None = None
        for _ in range(MAX_ATTEMPTS):
            if not state.consent.location:
                if not trusted:
                    state, trusted = await self._store.read(user_id, check), True
                    continue
                self._forget_cached(user_id)
                raise ConsentRequired("the user has not granted location consent")
            try:
                eligibility = _EVERYONE if state.consent.discovery else held or _UNDECIDED
                outcome = step(state, eligibility)
            except MembershipNeeded:
                held = HeldPrograms(await self._memberships.issuer_ids_of(user_id))
                continue
            if not outcome.changed:
                if not trusted:  # answers that write nothing are never given from the cache
                    state, trusted = await self._store.read(user_id, check), True
                    continue
                return self._result(kind, outcome)
            fresh = await self._store.apply(user_id, state, outcome, now, check)
            if fresh is None:
                outcome.state.version = state.version + 1
                self._cache.put(user_id, outcome.state)
                return self._result(kind, outcome)
            metrics.CONFLICTS.inc()
            state, trusted = fresh, True
        raise PresenceBusy("too many concurrent presence updates for this user; retry")

    @staticmethod
    def _result(kind: str, outcome: Outcome) -> PresenceResult:
        ignored = outcome.ignored
        if ignored != _NOTHING_IGNORED:
            for reason in ignored.__struct_fields__:
                count = getattr(ignored, reason)
                if count:
                    metrics.IGNORED.labels(kind, reason).inc(count)
        for event in outcome.transitions:
            metrics.TRANSITIONS_BY_TYPE[event.type].inc()
        return PresenceResult(
            transitions=[
                Transition(
                    type=e.type,
                    store_id=e.store_id,
                    issuer_id=e.issuer_id,
                    zone=e.zone,
                    at=_at(e.at),
                )
                for e in outcome.transitions
            ],
            ignored=ignored,
        )

    # --- region sync ----------------------------------------------------------------------

    async def regions(self, user_id: str, lat: float, lon: float, platform: Platform) -> RegionSet:
        self._require_index()
        consent = await self._require_consent(user_id)
        if consent.discovery:
            allows = Everyone().allows
        else:
            allows = HeldPrograms(await self._memberships.issuer_ids_of(user_id)).allows
        return region_set(self._live.index, lat, lon, platform, allows)

    # --- visits and personal data ---------------------------------------------------------

    async def visits(self, user_id: str, limit: int, cursor: str | None) -> Page[Visit]:
        """Open visits first (on the first page), then ended ones, newest first."""
        await self._require_consent(user_id)
        position = decode_cursor(cursor)
        items: list[Visit] = []
        before, skip = None, 0
        if position is None:
            items = self._open_visits(await self._store.read(user_id))[:limit]
        else:
            try:
                raw_score, _, raw_skip = position.partition("|")
                before, skip = float(raw_score), int(raw_skip)
            except ValueError:
                raise InvalidCursor("cursor is not one this API returned", field="cursor") from None
        since = self._clock.now() - VISITS_TTL_S
        closed = await self._store.closed_visits(
            user_id, since, before, skip, limit - len(items) + 1
        )
        more = len(closed) > limit - len(items)
        closed = closed[: limit - len(items)]
        items += [_visit(v) for v in closed]
        next_cursor = None
        if more and closed:
            last = closed[-1].exited_at
            same = sum(1 for v in closed if v.exited_at == last)
            seen = same + (skip if before == last else 0)
            next_cursor = encode_cursor(f"{last!r}|{seen}")
        return Page(items=items, next_cursor=next_cursor)

    @staticmethod
    def _open_visits(state: PresenceState) -> list[Visit]:
        visits = [
            Visit(
                visit_id=v.visit_id,
                store_id=store_id,
                issuer_id=v.issuer_id,
                entered_at=_at(v.entered_at),
                dwelled=store_id not in state.pending_dwell,
            )
            for store_id, v in state.visits.items()
        ]
        return sorted(visits, key=lambda v: v.entered_at, reverse=True)

    async def export(self, user_id: str) -> object:
        state = await self._store.read(user_id)
        since = self._clock.now() - VISITS_TTL_S
        closed = await self._store.closed_visits(user_id, since, None, 0, None)
        last_fix = None
        if state.fix is not None:
            fix = state.fix
            last_fix = Fix(
                lat=fix.lat, lon=fix.lon, accuracy_m=fix.accuracy_m, recorded_at=_at(fix.at)
            )
        return PresenceExport(
            consent=_consent(state.consent),
            last_fix=last_fix,
            visits=self._open_visits(state) + [_visit(v) for v in closed],
        )

    async def erase(self, user_id: str) -> None:
        self._forget_cached(user_id)
        await self._store.erase(user_id)


def _visit(visit: ClosedVisit) -> Visit:
    return Visit(
        visit_id=visit.visit_id,
        store_id=visit.store_id,
        issuer_id=visit.issuer_id,
        entered_at=_at(visit.entered_at),
        exited_at=_at(visit.exited_at),
        dwelled=visit.dwelled,
    )
