"""Turning a partner's fields into a valid ``StoreRecord``: the one path for the store routes
and every import row, so both report the same errors with the same codes.

Geometry lives in ``geofence`` (which depends on this package, not the other way round): the
service is handed a ``FenceChecker`` that validates a polygon and returns its centre.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Final, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from issuers.stores.errors import (
    CoordinatesRequired,
    DuplicateBeacon,
    FenceConflict,
    FenceRequired,
    InvalidPolygon,
    LatitudeOutOfRange,
    UnknownTimeZone,
)
from issuers.stores.models import Beacon, CreateStore, GeoJsonPolygon, StoreFields, StoreRecord

MAX_GEO_LAT: Final = 85.05112878
"""Redis GEO (web-mercator geohash) cannot index latitudes beyond this."""

# Names zoneinfo resolves that are not IANA zones a partner could mean.
_NOT_ZONES: Final = frozenset({"localtime", "posixrules", "Factory"})


class FenceChecker(Protocol):
    def check(self, coordinates: list[list[list[float]]]) -> tuple[float, float]:
        """The polygon's centre as (lat, lon); ValueError says what is wrong with it."""
        ...


@lru_cache(maxsize=4096)
def _is_zone(name: str) -> bool:
    if name in _NOT_ZONES:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def check_timezone(name: str) -> None:
    if not _is_zone(name):
        raise UnknownTimeZone(f"{name!r} is not an IANA time zone", field="timezone")


def check_latitude(lat: float, field: str) -> None:
    if not -MAX_GEO_LAT <= lat <= MAX_GEO_LAT:
        raise LatitudeOutOfRange(
            f"latitude {lat} is beyond +-{MAX_GEO_LAT} deg, the limit of the geo index; "
            "stores this close to a pole are not supported",
            field=field,
        )


def normalized_beacons(beacons: list[Beacon]) -> list[Beacon]:
    """Beacons with lower-case uuids; the same uuid/major/minor twice is an error."""
    seen: dict[tuple[str, int, int], int] = {}
    result = []
    for i, beacon in enumerate(beacons):
        uuid = beacon.uuid.lower()
        triple = (uuid, beacon.major, beacon.minor)
        if triple in seen:
            raise DuplicateBeacon(
                f"beacon {uuid}/{beacon.major}/{beacon.minor} is listed twice "
                f"(beacons[{seen[triple]}] and beacons[{i}])",
                field=f"beacons[{i}]",
            )
        seen[triple] = i
        result.append(beacon if uuid == beacon.uuid else msgspec.structs.replace(beacon, uuid=uuid))
    return result


def _polygon_centre(polygon: GeoJsonPolygon, fences: FenceChecker) -> tuple[float, float]:
    for ring in polygon.coordinates:
        for position in ring:
            lat = position[1] if len(position) >= 2 else 0.0
            if math.isfinite(lat) and MAX_GEO_LAT < abs(lat) <= 90:
                check_latitude(lat, "polygon")
    try:
        return fences.check(polygon.coordinates)
    except ValueError as exc:
        raise InvalidPolygon(str(exc), field="polygon") from None


def _with_fence(record: StoreRecord, fences: FenceChecker) -> StoreRecord:
    if record.radius_m is None and record.polygon is None:
        raise FenceRequired("a store needs radius_m (a circle) or a polygon", field="radius_m")
    if record.polygon is None:
        check_latitude(record.lat, "lat")
        return record
    if record.radius_m is not None:
        raise FenceConflict("give either radius_m or polygon, not both", field="polygon")
    lat, lon = _polygon_centre(record.polygon, fences)
    return msgspec.structs.replace(record, lat=lat, lon=lon)


def apply_fields(current: StoreRecord, fields: StoreFields, fences: FenceChecker) -> StoreRecord:
    """``current`` with the fields that were sent applied and checked (PATCH semantics)."""
    changes = {
        name: value
        for name in fields.__struct_fields__
        if (value := getattr(fields, name)) is not msgspec.UNSET
    }
    # Setting one kind of fence replaces the other.
    if changes.get("polygon") is not None and "radius_m" not in changes:
        changes["radius_m"] = None
    if changes.get("radius_m") is not None and "polygon" not in changes:
        changes["polygon"] = None
    if isinstance(fields.timezone, str):
        check_timezone(fields.timezone)
    if isinstance(fields.beacons, list):
        changes["beacons"] = normalized_beacons(fields.beacons)
    return _with_fence(msgspec.structs.replace(current, **changes), fences)


def new_record(
    fields: CreateStore, issuer_id: str, store_id: str, now: float, fences: FenceChecker
) -> StoreRecord:
    """A checked record for a new store (or an import row, before its id is known)."""
    circle = not isinstance(fields.polygon, GeoJsonPolygon)
    if circle and (fields.lat is msgspec.UNSET or fields.lon is msgspec.UNSET):
        missing = "lat" if fields.lat is msgspec.UNSET else "lon"
        raise CoordinatesRequired(
            "a circular store needs lat and lon (or give a polygon)", field=missing
        )
    base = StoreRecord(
        store_id=store_id,
        issuer_id=issuer_id,
        name=fields.name,
        lat=0.0,
        lon=0.0,
        timezone=fields.timezone,
        created_at=now,
        updated_at=now,
    )
    return apply_fields(base, fields, fences)
