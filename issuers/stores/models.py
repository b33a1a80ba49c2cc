from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from kernel.structs import ApiModel, IanaTimeZone, Record, RequestModel

Latitude = Annotated[
    float,
    msgspec.Meta(
        ge=-90,
        le=90,
        description="Degrees north. The geo index holds +-85.05112878 at most; with a polygon "
        "the fence centre replaces any value given.",
    ),
]
Longitude = Annotated[
    float,
    msgspec.Meta(
        ge=-180, le=180, description="Degrees east; with a polygon the fence centre is used."
    ),
]
RadiusM = Annotated[float, msgspec.Meta(ge=20, le=5000, description="Geofence radius, metres")]
ExternalId = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=128, description="The partner's own store id (import key)."
    ),
]
StoreName = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
BeaconUuid = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
        description="iBeacon proximity UUID",
    ),
]
Uint16 = Annotated[int, msgspec.Meta(ge=0, le=65535)]
HhMm = Annotated[str, msgspec.Meta(pattern=r"^([01]\d|2[0-4]):[0-5]\d$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Beacon(ApiModel, RequestModel, kw_only=True):
    """An iBeacon region inside a store; ``zone`` names the place ("entrance", "dairy shelf")."""

    uuid: BeaconUuid
    major: Uint16
    minor: Uint16
    zone: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]


class GeoJsonPolygon(ApiModel, RequestModel, kw_only=True):
    type: Literal["Polygon"]
    coordinates: list[list[list[float]]]


class Address(ApiModel, RequestModel, kw_only=True):
    line1: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    line2: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    city: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    postal_code: Annotated[str, msgspec.Meta(max_length=20)] | None = None
    country: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")] | None = None


class OpeningPeriod(ApiModel, RequestModel, kw_only=True):
    day: Weekday
    opens: HhMm
    closes: HhMm


class StoreFields(RequestModel, kw_only=True):
    """Everything a partner may set on a store (all optional: PATCH semantics).

    A store has exactly one fence: ``radius_m`` (a circle around lat/lon) or ``polygon``.
    Setting one on an existing store replaces the other; lists are replaced whole.
    """

    external_id: ExternalId | msgspec.UnsetType | None = msgspec.UNSET
    name: StoreName | msgspec.UnsetType = msgspec.UNSET
    lat: Latitude | msgspec.UnsetType = msgspec.UNSET
    lon: Longitude | msgspec.UnsetType = msgspec.UNSET
    radius_m: RadiusM | msgspec.UnsetType | None = msgspec.UNSET
    polygon: GeoJsonPolygon | msgspec.UnsetType | None = msgspec.UNSET
    timezone: IanaTimeZone | msgspec.UnsetType = msgspec.UNSET
    address: Address | msgspec.UnsetType | None = msgspec.UNSET
    opening_hours: list[OpeningPeriod] | msgspec.UnsetType = msgspec.UNSET
    beacons: Annotated[list[Beacon], msgspec.Meta(max_length=50)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    dwell_s: Annotated[int, msgspec.Meta(ge=60, le=86400)] | msgspec.UnsetType = msgspec.UNSET
    exit_margin_m: Annotated[float, msgspec.Meta(ge=0, le=5000)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )


class CreateStore(StoreFields, kw_only=True):
    """A new store (also one import row): name, timezone and one fence are required."""

    name: StoreName
    timezone: IanaTimeZone


class StoreRecord(Record):
    """A store as kept in Redis.  ``lat``/``lon`` is the centre (for polygons, of the fence)."""

    store_id: str
    issuer_id: str
    name: str
    lat: float
    lon: float
    timezone: str
    created_at: float
    updated_at: float
    external_id: str | None = None
    radius_m: float | None = None
    polygon: GeoJsonPolygon | None = None
    address: Address | None = None
    opening_hours: list[OpeningPeriod] = msgspec.field(default_factory=list)
    beacons: list[Beacon] = msgspec.field(default_factory=list)
    dwell_s: int = 300
    exit_margin_m: float | None = None


class Store(ApiModel, kw_only=True):
    id: str
    issuer_id: str
    name: str
    lat: float
    lon: float
    timezone: str
    external_id: str | None = None
    radius_m: float | None = None
    polygon: GeoJsonPolygon | None = None
    address: Address | None = None
    opening_hours: list[OpeningPeriod]
    beacons: list[Beacon]
    dwell_s: int
    exit_margin_m: float | None = None
    created_at: datetime
    updated_at: datetime


class ImportRowError(ApiModel, kw_only=True):
    line: int
    code: str
    message: str


class ImportResult(ApiModel, kw_only=True):
    created: int
    updated: int
    errors: list[ImportRowError]


class StoreChange(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of the store change feed the presence engine follows."""

    change_id: str
    store_id: str
    issuer_id: str
    op: Literal["upsert", "delete"]
