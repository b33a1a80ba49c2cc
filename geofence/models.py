"""Shapes of the presence engine: what the phone sends, what it gets back, what is stored.

Request bodies forbid unknown fields; timestamps are RFC 3339 with an offset (a fix without
one cannot be ordered against another). Stored records are msgpack maps (every later field
gets a default).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from kernel.structs import ApiModel, Record, RequestModel

TransitionType = Literal["enter", "exit", "dwell"]
Proximity = Literal["immediate", "near", "far"]
Platform = Literal["ios", "android"]
EvidenceSource = Literal["location", "beacon", "region", "timer"]

FixLatitude = Annotated[float, msgspec.Meta(ge=-90, le=90, description="Degrees north.")]
FixLongitude = Annotated[float, msgspec.Meta(ge=-180, le=180, description="Degrees east.")]
AccuracyM = Annotated[
    float,
    msgspec.Meta(
        ge=0, le=100_000, description="Horizontal accuracy (radius of the 68 % circle), metres."
    ),
]
RecordedAt = Annotated[
    datetime,
    msgspec.Meta(tz=True, description="When the phone observed it (RFC 3339 with an offset)."),
]
BeaconUuid = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
        description="iBeacon proximity UUID",
    ),
]
Uint16 = Annotated[int, msgspec.Meta(ge=0, le=65535)]
MAX_BATCH = 100


# --- consent --------------------------------------------------------------------------------


class ConsentUpdate(RequestModel, kw_only=True):
    location: bool
    discovery: bool


class Consent(ApiModel, kw_only=True):
    """``location``: presence is evaluated at all. ``discovery``: also for programs the user
    holds no card of (otherwise only for held programs)."""

    location: bool
    discovery: bool
    updated_at: datetime | None = None


class ConsentRecord(Record, kw_only=True):
    location: bool = False
    discovery: bool = False
    updated_at: float = 0.0


# --- evidence -------------------------------------------------------------------------------


class Fix(RequestModel, kw_only=True):
    lat: FixLatitude
    lon: FixLongitude
    accuracy_m: AccuracyM
    recorded_at: RecordedAt


class LocationReport(RequestModel, kw_only=True):
    """One fix (``lat``, ``lon``, ``accuracy_m``, ``recorded_at``) or ``fixes``: up to 100,
    in any order; they are applied in time order."""

    lat: FixLatitude | None = None
    lon: FixLongitude | None = None
    accuracy_m: AccuracyM | None = None
    recorded_at: RecordedAt | None = None
    fixes: Annotated[list[Fix], msgspec.Meta(min_length=1, max_length=MAX_BATCH)] | None = None


class Sighting(RequestModel, kw_only=True):
    uuid: BeaconUuid
    major: Uint16
    minor: Uint16
    proximity: Proximity
    rssi: Annotated[int, msgspec.Meta(ge=-127, le=20)] | None = None
    recorded_at: RecordedAt


class BeaconReport(RequestModel, kw_only=True):
    sightings: Annotated[list[Sighting], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class RegionEvent(RequestModel, kw_only=True):
    """The phone's own region monitoring: ``region_id`` as ``GET /v1/me/regions`` gave it."""

    region_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    event: Literal["enter", "exit"]
    recorded_at: RecordedAt


# --- answers --------------------------------------------------------------------------------


class Transition(ApiModel, kw_only=True):
    """``zone`` is set for in-store zone changes (beacons); store-level transitions have none."""

    type: TransitionType
    store_id: str
    issuer_id: str
    zone: str | None = None
    at: datetime


class Ignored(msgspec.Struct, kw_only=True):
    """Evidence the engine did not use, by reason (always present, zeros included)."""

    stale: int = 0
    too_old: int = 0
    too_fast: int = 0
    future: int = 0
    unknown: int = 0


class PresenceResult(ApiModel, kw_only=True):
    transitions: list[Transition]
    ignored: Ignored


class GeofenceRegion(ApiModel, kw_only=True, tag_field="kind", tag="geofence"):
    """A circle for the OS to monitor (a polygon store is handed its bounding circle)."""

    region_id: str
    store_id: str
    issuer_id: str
    lat: float
    lon: float
    radius_m: float
    distance_m: float


class BeaconRegion(ApiModel, kw_only=True, tag_field="kind", tag="beacon"):
    """An iBeacon UUID region (every major/minor); on enter, range and post sightings."""

    region_id: str
    uuid: str
    distance_m: float


class RefreshBubble(ApiModel, kw_only=True):
    """Monitor this circle too: leaving it means "call GET /v1/me/regions again"."""

    lat: float
    lon: float
    radius_m: float


class RegionSet(ApiModel, kw_only=True):
    regions: list[GeofenceRegion | BeaconRegion]
    refresh: RefreshBubble


class Visit(ApiModel, kw_only=True):
    """A stay in a store; ``exited_at`` is absent while it lasts."""

    visit_id: str
    store_id: str
    issuer_id: str
    entered_at: datetime
    exited_at: datetime | None = None
    dwelled: bool


class PresenceExport(ApiModel, kw_only=True):
    consent: Consent
    last_fix: Fix | None = None
    visits: list[Visit]


# --- stored ---------------------------------------------------------------------------------


class LastFix(Record, kw_only=True):
    lat: float
    lon: float
    accuracy_m: float
    at: float


class OpenVisit(Record, kw_only=True):
    visit_id: str
    issuer_id: str
    entered_at: float
    dwell_at: float
    zone: str | None = None


class ClosedVisit(Record, kw_only=True):
    visit_id: str
    store_id: str
    issuer_id: str
    entered_at: float
    exited_at: float
    dwelled: bool


class RegionMark(Record, kw_only=True):
    """The newest region event time and the regions reported at exactly that time."""

    at: float = 0.0
    region_ids: list[str] = msgspec.field(default_factory=list)


class CredentialCheck(msgspec.Struct, frozen=True):
    """A precondition the caller hands the presence scripts: the msgpack map stored at
    ``key`` (in the user's slot) must still hold ``value`` in ``field``.  The service lets
    a per-process cache of credentials skip its own lookup and have the state's read or
    write-back check the credential in the same round trip."""

    key: str
    field: str
    value: str
