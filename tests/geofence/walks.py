"""A scripted walk through the pure engine: a phone's fixes, sightings and region events."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from geofence.engine import PresenceEngine
from geofence.index import FenceIndex
from geofence.models import ConsentRecord, Ignored, Proximity
from geofence.state import (
    Eligibility,
    Everyone,
    FixEvidence,
    Outcome,
    PresenceState,
    SightingEvidence,
)
from tests.geofence.fences import offset

T0 = 1_700_000_000.0
Seen = tuple[str, str, str | None, float]
"""(type, store_id, zone, seconds after T0) of one transition."""


class Walk:
    """Keeps the state between steps, like the store does; times are seconds after T0."""

    def __init__(
        self, index: FenceIndex, origin: tuple[float, float], eligibility: Eligibility | None = None
    ) -> None:
        counter = itertools.count(1)
        self.engine = PresenceEngine(lambda: f"vis_{next(counter)}")
        self.index = index
        self.origin = origin
        self.eligibility: Eligibility = eligibility or Everyone()
        self.state = PresenceState(consent=ConsentRecord(location=True, discovery=True))
        self.now = T0
        self.last: Outcome | None = None
        self.transitions: list[Seen] = []

    def _keep(self, outcome: Outcome) -> list[Seen]:
        self.last = outcome
        self.state = outcome.state
        got: list[Seen] = [(t.type, t.store_id, t.zone, t.at - T0) for t in outcome.transitions]
        self.transitions += got
        return got

    def point(self, east_m: float, north_m: float) -> tuple[float, float]:
        return offset(*self.origin, east_m, north_m)

    def fix(
        self,
        at: float,
        east_m: float,
        north_m: float = 0.0,
        accuracy_m: float = 10.0,
        now: float | None = None,
    ) -> list[Seen]:
        return self.fixes([(at, east_m, north_m, accuracy_m)], now)

    def fixes(
        self, fixes: Sequence[tuple[float, float, float, float]], now: float | None = None
    ) -> list[Seen]:
        """``now`` (seconds after T0): the server clock; default: the newest fix."""
        evidence = [FixEvidence(*self.point(e, n), acc, T0 + at) for at, e, n, acc in fixes]
        self.now = T0 + now if now is not None else max(self.now, *(f.at for f in evidence))
        return self._keep(
            self.engine.locate(self.state, evidence, self.index, self.eligibility, self.now)
        )

    def sight(
        self, at: float, uuid: str, major: int, minor: int, proximity: Proximity
    ) -> list[Seen]:
        sighting = SightingEvidence(uuid, major, minor, proximity, -60, T0 + at)
        self.now = max(self.now, T0 + at)
        return self._keep(
            self.engine.sight(self.state, [sighting], self.index, self.eligibility, self.now)
        )

    def region(self, at: float, region_id: str, event: str) -> list[Seen]:
        self.now = max(self.now, T0 + at)
        return self._keep(
            self.engine.region_event(
                self.state, region_id, event, T0 + at, self.index, self.eligibility, self.now
            )
        )

    @property
    def ignored(self) -> Ignored:
        assert self.last is not None
        return self.last.ignored
