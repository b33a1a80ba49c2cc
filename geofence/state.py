"""One user's presence state and what an evaluation produces (plain data, no rules)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from geofence.index import FenceEntry
from geofence.models import (
    ClosedVisit,
    ConsentRecord,
    EvidenceSource,
    Ignored,
    LastFix,
    OpenVisit,
    Proximity,
    RegionMark,
    TransitionType,
)


class MembershipNeeded(Exception):
    """Raised by ``Undecided``: the caller fetches the user's programs and runs again."""


class Eligibility(Protocol):
    def allows(self, issuer_id: str) -> bool: ...


class Everyone:
    """Discovery on: every program is evaluated."""

    def allows(self, issuer_id: str) -> bool:
        return True


class HeldPrograms:
    def __init__(self, issuer_ids: Iterable[str]) -> None:
        self._ids = frozenset(issuer_ids)

    def allows(self, issuer_id: str) -> bool:
        return issuer_id in self._ids


class Undecided:
    """Programs not fetched yet: most evidence emits nothing, so it is fetched lazily."""

    def allows(self, issuer_id: str) -> bool:
        raise MembershipNeeded


class FenceLookup(Protocol):
    def get(self, store_id: str) -> FenceEntry | None: ...

    def containing(self, lat: float, lon: float) -> Sequence[tuple[FenceEntry, float | None]]:
        """(fence, metres from its centre, or None where not measured) for each fence whose
        bounding circle holds the point."""

    def beacon(self, uuid: str, major: int, minor: int) -> tuple[FenceEntry, str] | None: ...

    def farthest_m(self, entry: FenceEntry) -> float | None:
        """At most how far the point last asked ``containing`` is from the fence's centre,
        when that is known without measuring; else None."""


class FixEvidence(NamedTuple):
    lat: float
    lon: float
    accuracy_m: float
    at: float


class SightingEvidence(NamedTuple):
    uuid: str
    major: int
    minor: int
    proximity: Proximity
    rssi: int | None
    at: float


@dataclass(slots=True)
class PresenceState:
    """One user's presence as stored (``version`` guards the write-back)."""

    version: int = 0
    consent: ConsentRecord = field(default_factory=ConsentRecord)
    fix: LastFix | None = None
    jump: LastFix | None = None
    beacon_at: float = 0.0
    region: RegionMark = field(default_factory=RegionMark)
    visits: dict[str, OpenVisit] = field(default_factory=dict)
    pending_dwell: dict[str, str] = field(default_factory=dict)
    """store_id -> visit_id of open visits whose dwell has not fired yet."""


class TransitionEvent(NamedTuple):
    type: TransitionType
    store_id: str
    issuer_id: str
    at: float
    visit_id: str
    source: EvidenceSource
    zone: str | None = None


class DwellTimer(NamedTuple):
    store_id: str
    visit_id: str
    issuer_id: str
    due: float


@dataclass(slots=True)
class Outcome:
    state: PresenceState
    transitions: list[TransitionEvent] = field(default_factory=list)
    closed: list[ClosedVisit] = field(default_factory=list)
    timers_set: list[DwellTimer] = field(default_factory=list)
    timers_cleared: list[DwellTimer] = field(default_factory=list)
    ignored: Ignored = field(default_factory=Ignored)
    changed: bool = False
