"""The presence state machine: evidence in, transitions out. No I/O and no clock.

One user's state (``PresenceState``) plus a batch of evidence (location fixes, beacon
sightings or one region event) gives an ``Outcome``: the new state, the transitions, the
visits that ended, and the dwell timers to set or clear. ``service.py`` reads the state,
runs the engine and writes the outcome back only if the state did not change meanwhile, so
two concurrent requests can never both emit the same transition.

Rules (docs/architecture.md, Presence, says the same for readers of the API):

- Evidence older than ``MAX_EVIDENCE_AGE_S`` (1 h) is ignored as ``too_old``; evidence more
  than ``FUTURE_TOLERANCE_S`` ahead of the server clock as ``future`` (a phone whose clock
  runs ahead would otherwise make every later fix look stale).
- Fixes are applied in time order; a fix not newer than the last accepted one is ``stale``
  (a retried fix is stale, so it produces its transitions once).
- A fix implying more than ~300 km/h from the last accepted one (beyond both accuracies) is
  ``too_fast`` and held as a *jump*; a later fix plausible from the jump confirms the move
  (a flight), and is accepted. The rejected fix itself is never evaluated.
- Inside/outside comes from ``geometry.classify`` (accuracy-aware, with the store's exit
  margin as hysteresis); "unknown" keeps the current state.
- ``dwell`` fires once per visit, ``dwell_s`` after the enter, stamped at that moment: on the
  first evidence at or after it while the visit is open, or by the timer sweep.
- Presence is evaluated only for issuers the ``Eligibility`` allows. It is consulted only
  when a transition is about to be emitted (so the wallet is asked only then); a visit whose
  program is no longer allowed, or whose store is gone, is dropped without a transition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import groupby
from typing import Final

from geofence.geometry import (
    MAX_PLAUSIBLE_SPEED_MPS,
    classify,
    haversine_m,
    signed_distance_m,
    speed_mps,
)
from geofence.index import FenceEntry
from geofence.models import (
    ClosedVisit,
    EvidenceSource,
    LastFix,
    OpenVisit,
    Proximity,
    RegionMark,
    TransitionType,
)
from geofence.state import (
    DwellTimer,
    Eligibility,
    FenceLookup,
    FixEvidence,
    Outcome,
    PresenceState,
    SightingEvidence,
    TransitionEvent,
)

MAX_EVIDENCE_AGE_S: Final = 3600.0
FUTURE_TOLERANCE_S: Final = 60.0
BEACON_REGION_PREFIX: Final = "beacon:"
_PROXIMITY_RANK: Final = {"immediate": 0, "near": 1, "far": 2}


class _Run:
    """One evaluation: a private copy of the state and what happened to it.  The visit
    dicts are copied on the first change only (``own_visits``): most fixes change none, and
    an unchanged dict is the caller's own object, which ``store.py`` skips comparing."""

    def __init__(
        self,
        state: PresenceState,
        fences: FenceLookup,
        eligibility: Eligibility,
        now: float,
        new_visit_id: Callable[[], str],
    ) -> None:
        self.state = PresenceState(
            version=state.version,
            consent=state.consent,
            fix=state.fix,
            jump=state.jump,
            beacon_at=state.beacon_at,
            region=state.region,
            visits=state.visits,
            pending_dwell=state.pending_dwell,
        )
        self._owned = False
        self.fences = fences
        self.eligibility = eligibility
        self.now = now
        self.new_visit_id = new_visit_id
        self.out = Outcome(state=self.state)

    def own_visits(self) -> None:
        """Copy the visit dicts before the first change: the caller's state stays as is."""
        if not self._owned:
            self.state.visits = dict(self.state.visits)
            self.state.pending_dwell = dict(self.state.pending_dwell)
            self._owned = True

    def too_old_or_future(self, at: float, count: int = 1) -> bool:
        if at < self.now - MAX_EVIDENCE_AGE_S:
            self.out.ignored.too_old += count
            return True
        if at > self.now + FUTURE_TOLERANCE_S:
            self.out.ignored.future += count
            return True
        return False

    def emit(
        self,
        kind: TransitionType,
        store_id: str,
        visit: OpenVisit,
        at: float,
        source: EvidenceSource,
        zone: str | None = None,
    ) -> None:
        self.out.transitions.append(
            TransitionEvent(kind, store_id, visit.issuer_id, at, visit.visit_id, source, zone)
        )
        self.out.changed = True

    def enter(self, entry: FenceEntry, at: float, source: EvidenceSource) -> OpenVisit:
        visit = OpenVisit(
            visit_id=self.new_visit_id(),
            issuer_id=entry.issuer_id,
            entered_at=at,
            dwell_at=at + entry.dwell_s,
        )
        self.own_visits()
        self.state.visits[entry.store_id] = visit
        self.state.pending_dwell[entry.store_id] = visit.visit_id
        self.out.timers_set.append(
            DwellTimer(entry.store_id, visit.visit_id, visit.issuer_id, visit.dwell_at)
        )
        self.emit("enter", entry.store_id, visit, at, source)
        return visit

    def exit(self, store_id: str, at: float, source: EvidenceSource) -> None:
        visit = self.state.visits[store_id]
        if visit.zone is not None:
            self.emit("exit", store_id, visit, at, source, visit.zone)
        self.emit("exit", store_id, visit, at, source)
        dwelled = store_id not in self.state.pending_dwell
        self.out.closed.append(
            ClosedVisit(
                visit_id=visit.visit_id,
                store_id=store_id,
                issuer_id=visit.issuer_id,
                entered_at=visit.entered_at,
                exited_at=at,
                dwelled=dwelled,
            )
        )
        self.forget(store_id)

    def forget(self, store_id: str) -> None:
        """End a visit without a transition (store gone, program no longer evaluated)."""
        self.own_visits()
        visit = self.state.visits.pop(store_id)
        if self.state.pending_dwell.pop(store_id, None) is not None:
            self.out.timers_cleared.append(
                DwellTimer(store_id, visit.visit_id, visit.issuer_id, visit.dwell_at)
            )
        self.out.changed = True

    def still_evaluated(self, store_id: str) -> bool:
        """Drop the visit (no transition) when its store or program is out of scope."""
        visit = self.state.visits[store_id]
        entry = self.fences.get(store_id)
        if entry is None or not self.eligibility.allows(visit.issuer_id):
            self.forget(store_id)
            return False
        return True

    def dwell_if_due(self, store_id: str, at: float, source: EvidenceSource) -> None:
        visit = self.state.visits[store_id]
        if self.state.pending_dwell.get(store_id) != visit.visit_id or at < visit.dwell_at:
            return
        if not self.still_evaluated(store_id):
            return
        self.own_visits()
        del self.state.pending_dwell[store_id]
        self.out.timers_cleared.append(
            DwellTimer(store_id, visit.visit_id, visit.issuer_id, visit.dwell_at)
        )
        self.emit("dwell", store_id, visit, visit.dwell_at, source)

    def set_zone(self, store_id: str, zone: str | None, at: float) -> None:
        visit = self.state.visits[store_id]
        if visit.zone == zone:
            return
        if visit.zone is not None:
            self.emit("exit", store_id, visit, at, "beacon", visit.zone)
        visit = OpenVisit(
            visit_id=visit.visit_id,
            issuer_id=visit.issuer_id,
            entered_at=visit.entered_at,
            dwell_at=visit.dwell_at,
            zone=zone,
        )
        self.own_visits()
        self.state.visits[store_id] = visit
        if zone is not None:
            self.emit("enter", store_id, visit, at, "beacon", zone)
        self.out.changed = True


def _too_fast(a: LastFix, b: FixEvidence) -> bool:
    speed = speed_mps(a.lat, a.lon, a.at, b.lat, b.lon, b.at, slack_m=a.accuracy_m + b.accuracy_m)
    return speed > MAX_PLAUSIBLE_SPEED_MPS


def _last_fix(fix: FixEvidence) -> LastFix:
    return LastFix(lat=fix.lat, lon=fix.lon, accuracy_m=fix.accuracy_m, at=fix.at)


def _signed_distance(entry: FenceEntry, lat: float, lon: float, centre_m: float | None) -> float:
    """Metres to the fence edge (negative inside); ``centre_m`` saves a circle's haversine."""
    if entry.polygon is not None:
        return signed_distance_m(entry.polygon, lat, lon)
    if centre_m is None:
        centre_m = haversine_m(entry.lat, entry.lon, lat, lon)
    return centre_m - entry.reach_m


class PresenceEngine:
    def __init__(self, new_visit_id: Callable[[], str]) -> None:
        self._new_visit_id = new_visit_id

    def _run(
        self, state: PresenceState, fences: FenceLookup, eligibility: Eligibility, now: float
    ) -> _Run:
        return _Run(state, fences, eligibility, now, self._new_visit_id)

    # --- location fixes -------------------------------------------------------------------

    def locate(
        self,
        state: PresenceState,
        fixes: Sequence[FixEvidence],
        fences: FenceLookup,
        eligibility: Eligibility,
        now: float,
    ) -> Outcome:
        run = self._run(state, fences, eligibility, now)
        for fix in sorted(fixes, key=lambda f: f.at) if len(fixes) > 1 else fixes:
            if run.too_old_or_future(fix.at):
                continue
            if self._accept_fix(run, fix):
                self._evaluate_fix(run, fix)
        return run.out

    @staticmethod
    def _accept_fix(run: _Run, fix: FixEvidence) -> bool:
        state = run.state
        last = state.fix
        if last is not None and fix.at <= last.at:
            run.out.ignored.stale += 1
            return False
        if last is not None and _too_fast(last, fix):
            jump = state.jump
            if jump is None or fix.at <= jump.at or _too_fast(jump, fix):
                # Not (yet) confirmed: hold the newest implausible fix as the jump candidate.
                if jump is None or fix.at > jump.at:
                    state.jump = _last_fix(fix)
                    run.out.changed = True
                run.out.ignored.too_fast += 1
                return False
        state.fix = _last_fix(fix)
        state.jump = None
        run.out.changed = True
        return True

    @staticmethod
    def _evaluate_fix(run: _Run, fix: FixEvidence) -> None:
        found = run.fences.containing(fix.lat, fix.lon)
        if run.state.visits:
            PresenceEngine._follow_visits(run, fix, found)
        for entry, centre_m in found:
            if entry.store_id in run.state.visits:  # the current dict: a change copies it
                continue
            distance = _signed_distance(entry, fix.lat, fix.lon, centre_m)
            if classify(distance, fix.accuracy_m, entry.size_m, entry.exit_margin_m) != "inside":
                continue
            if run.eligibility.allows(entry.issuer_id):
                run.enter(entry, fix.at, "location")

    @staticmethod
    def _follow_visits(
        run: _Run, fix: FixEvidence, found: Sequence[tuple[FenceEntry, float | None]]
    ) -> None:
        """Exit or dwell for each open visit."""
        visits = run.state.visits
        # An open visit's fence usually holds the fix: reuse what was found there.
        near = {held[0].store_id: held for held in found}
        for store_id in list(visits):
            held = near.get(store_id)
            if held is None:
                entry, centre_m = run.fences.get(store_id), None
                if entry is None:
                    run.forget(store_id)
                    continue
                if entry.polygon is None and PresenceEngine._stays(entry, fix, run.fences):
                    run.dwell_if_due(store_id, fix.at, "location")
                    continue
            else:
                entry, centre_m = held
                if entry.polygon is None:
                    # A circle whose radius holds the fix: never "outside" (the distance is
                    # <= 0), so only the dwell can change; this is most of a dense city's
                    # open visits, on every fix.
                    if fix.at >= visits[store_id].dwell_at:
                        run.dwell_if_due(store_id, fix.at, "location")
                    continue
            distance = _signed_distance(entry, fix.lat, fix.lon, centre_m)
            if classify(distance, fix.accuracy_m, entry.size_m, entry.exit_margin_m) == "outside":
                if run.still_evaluated(store_id):
                    run.exit(store_id, fix.at, "location")
            else:
                run.dwell_if_due(store_id, fix.at, "location")

    @staticmethod
    def _stays(entry: FenceEntry, fix: FixEvidence, fences: FenceLookup) -> bool:
        """True when a circle's visit cannot end on this fix, known without measuring: even
        at the farthest the fix can be from the centre, it is not "outside" (walking out of
        a store, the exit margin keeps the visit open for several fixes)."""
        farthest = fences.farthest_m(entry)
        if farthest is None:
            return False
        edge_m = farthest - entry.reach_m
        return classify(edge_m, fix.accuracy_m, entry.size_m, entry.exit_margin_m) != "outside"

    # --- beacon sightings -----------------------------------------------------------------

    def sight(
        self,
        state: PresenceState,
        sightings: Sequence[SightingEvidence],
        fences: FenceLookup,
        eligibility: Eligibility,
        now: float,
    ) -> Outcome:
        """Sightings with the same ``recorded_at`` are one ranging pass: the nearest known,
        evaluated beacon of the pass decides (immediate > near > far, then stronger RSSI)."""
        run = self._run(state, fences, eligibility, now)
        ordered = sorted(sightings, key=lambda s: s.at)
        for at, group in groupby(ordered, key=lambda s: s.at):
            batch = list(group)
            if run.too_old_or_future(at, len(batch)):
                continue
            if at <= run.state.beacon_at:
                run.out.ignored.stale += len(batch)
                continue
            run.state.beacon_at = at
            run.out.changed = True
            best = self._nearest_known(run, batch)
            if best is not None:
                self._apply_sighting(run, *best, at)
        return run.out

    @staticmethod
    def _nearest_known(
        run: _Run, batch: list[SightingEvidence]
    ) -> tuple[FenceEntry, str, Proximity] | None:
        known: list[tuple[tuple[int, int], FenceEntry, str, Proximity]] = []
        for sighting in batch:
            found = run.fences.beacon(sighting.uuid.lower(), sighting.major, sighting.minor)
            if found is None:
                run.out.ignored.unknown += 1
                continue
            entry, zone = found
            if not run.eligibility.allows(entry.issuer_id):
                continue
            rank = (_PROXIMITY_RANK[sighting.proximity], -(sighting.rssi or -200))
            known.append((rank, entry, zone, sighting.proximity))
        if not known:
            return None
        _, entry, zone, proximity = min(known, key=lambda k: k[0])
        return entry, zone, proximity

    @staticmethod
    def _apply_sighting(
        run: _Run, entry: FenceEntry, zone: str, proximity: Proximity, at: float
    ) -> None:
        store_id = entry.store_id
        visit = run.state.visits.get(store_id)
        if proximity == "far":
            # Up to ~50 m away: not evidence of being inside, but of having left the zone.
            if visit is not None and visit.zone == zone:
                run.set_zone(store_id, None, at)
            return
        if visit is None:
            run.enter(entry, at, "beacon")
        else:
            run.dwell_if_due(store_id, at, "beacon")
        if store_id in run.state.visits:
            run.set_zone(store_id, zone, at)

    # --- the phone's own region monitoring ------------------------------------------------

    def region_event(
        self,
        state: PresenceState,
        region_id: str,
        event: str,
        at: float,
        fences: FenceLookup,
        eligibility: Eligibility,
        now: float,
    ) -> Outcome:
        """Trusted as evidence for geofence regions; beacon UUID regions only tell the phone
        to start ranging, so they change nothing here."""
        run = self._run(state, fences, eligibility, now)
        if run.too_old_or_future(at):
            return run.out
        mark = run.state.region
        if at < mark.at or (at == mark.at and region_id in mark.region_ids):
            run.out.ignored.stale += 1
            return run.out
        ids = [*mark.region_ids, region_id] if at == mark.at else [region_id]
        run.state.region = RegionMark(at=at, region_ids=ids)
        run.out.changed = True
        if region_id.startswith(BEACON_REGION_PREFIX):
            return run.out
        entry = fences.get(region_id)
        if entry is None:
            run.out.ignored.unknown += 1
            return run.out
        inside = region_id in run.state.visits
        if event == "enter" and not inside:
            if eligibility.allows(entry.issuer_id):
                run.enter(entry, at, "region")
        elif event == "enter":
            run.dwell_if_due(region_id, at, "region")
        elif inside and run.still_evaluated(region_id):
            run.exit(region_id, at, "region")
        return run.out
