"""Building blocks for presence tests: points by metres, stores, a fence index."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from geofence.geometry import EARTH_RADIUS_M
from geofence.index import FenceEntry, FenceIndex, entry_from_record
from issuers.stores.models import Beacon, GeoJsonPolygon, StoreRecord

M_PER_DEG = EARTH_RADIUS_M * math.pi / 180
PARIS = (48.8566, 2.3522)


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """(lat, lon) of the point east_m / north_m from (lat, lon) (longitude wrapped)."""
    new_lon = lon + east_m / (M_PER_DEG * math.cos(math.radians(lat)))
    return (lat + north_m / M_PER_DEG, (new_lon + 180.0) % 360.0 - 180.0)


def record(
    store_id: str,
    lat: float,
    lon: float,
    *,
    radius_m: float | None = 50.0,
    issuer_id: str = "iss_a",
    dwell_s: int = 300,
    exit_margin_m: float | None = None,
    polygon: list[list[list[float]]] | None = None,
    beacons: list[tuple[str, int, int, str]] = (),  # type: ignore[assignment]
) -> StoreRecord:
    now = time.time()
    return StoreRecord(
        store_id=store_id,
        issuer_id=issuer_id,
        name=store_id,
        lat=lat,
        lon=lon,
        timezone="Europe/Paris",
        created_at=now,
        updated_at=now,
        radius_m=None if polygon is not None else radius_m,
        polygon=None if polygon is None else GeoJsonPolygon(type="Polygon", coordinates=polygon),
        dwell_s=dwell_s,
        exit_margin_m=exit_margin_m,
        beacons=[Beacon(uuid=u, major=ma, minor=mi, zone=z) for u, ma, mi, z in beacons],
    )


def entry(store_id: str, lat: float, lon: float, **fields: object) -> FenceEntry:
    return entry_from_record(record(store_id, lat, lon, **fields))  # type: ignore[arg-type]


def index_of(*records: StoreRecord) -> FenceIndex:
    index = FenceIndex()
    for r in records:
        assert index.put_record(r)
    return index


def ring_m(lat: float, lon: float, corners: Sequence[tuple[float, float]]) -> list[list[float]]:
    """A closed GeoJSON ring from (east_m, north_m) corners around (lat, lon)."""
    ring = []
    for east, north in [*corners, corners[0]]:
        plat, plon = offset(lat, lon, east, north)
        ring.append([plon, plat])
    return ring
