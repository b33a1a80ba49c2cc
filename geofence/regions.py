"""Region sync: the nearest regions a phone should monitor, and the bubble around it.

The phone, not the server, watches regions, and the OS caps how many: 20 per app on iOS
(geofences and beacon regions together), 100 on Android. We hand out 19 / 99 so that the
refresh bubble fits too. Regions come nearest edge first: a store's circle (a polygon's
bounding circle: the OS only watches circles), followed by the beacon UUID regions of that
store not handed out yet.

The bubble is centred on the phone and reaches the edge of the farthest store handed out:
every store not handed out has its edge at least that far, so the phone cannot be inside
one before it leaves the bubble and asks again. When fewer stores than the limit exist
within ``MAX_SEARCH_M``, the bubble is the whole searched circle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from geofence.index import FenceEntry, FenceIndex
from geofence.models import BeaconRegion, GeofenceRegion, Platform, RefreshBubble, RegionSet

REGION_LIMITS: Final[dict[str, int]] = {"ios": 19, "android": 99}
FIRST_SEARCH_M: Final = 250.0
MAX_SEARCH_M: Final = 50_000.0
MIN_BUBBLE_M: Final = 100.0
"""Below about 100 m the OSes report region crossings late or not at all."""

Region = GeofenceRegion | BeaconRegion


def _regions_from(
    nearest: list[tuple[float, FenceEntry]], limit: int
) -> tuple[list[Region], float]:
    """Regions in order, and the edge distance of the last store handed out."""
    regions: list[Region] = []
    uuids: set[str] = set()
    last = 0.0
    for distance, entry in nearest:
        if len(regions) >= limit:
            break
        rounded = round(distance, 1)
        regions.append(
            GeofenceRegion(
                region_id=entry.store_id,
                store_id=entry.store_id,
                issuer_id=entry.issuer_id,
                lat=entry.lat,
                lon=entry.lon,
                radius_m=round(entry.reach_m, 1),
                distance_m=rounded,
            )
        )
        last = distance
        for uuid, _, _, _ in entry.beacons:
            if uuid not in uuids and len(regions) < limit:
                uuids.add(uuid)
                regions.append(
                    BeaconRegion(region_id=f"beacon:{uuid}", uuid=uuid, distance_m=rounded)
                )
    return regions, last


def region_set(
    index: FenceIndex,
    lat: float,
    lon: float,
    platform: Platform,
    allows: Callable[[str], bool],
) -> RegionSet:
    limit = REGION_LIMITS[platform]
    radius = FIRST_SEARCH_M
    while True:
        nearest = index.near(lat, lon, radius, allows)
        nearest.sort(key=lambda found: (found[0], found[1].store_id))
        regions, last = _regions_from(nearest, limit)
        if len(regions) >= limit or radius >= MAX_SEARCH_M:
            break
        radius = min(radius * 2, MAX_SEARCH_M)
    bubble = last if len(regions) >= limit else radius
    return RegionSet(
        regions=regions,
        refresh=RefreshBubble(lat=lat, lon=lon, radius_m=round(max(bubble, MIN_BUBBLE_M), 1)),
    )
