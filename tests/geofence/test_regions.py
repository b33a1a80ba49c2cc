"""Region sync: nearest regions within the OS limits, and a bubble nothing unseen is inside."""

from __future__ import annotations

import random

from geofence.geometry import haversine_m
from geofence.index import FenceIndex
from geofence.models import GeofenceRegion
from geofence.regions import MAX_SEARCH_M, MIN_BUBBLE_M, region_set
from tests.geofence.fences import PARIS, entry, offset


def everyone(issuer_id: str) -> bool:
    return True


def scattered(count: int, spread_m: float, seed: int = 1) -> FenceIndex:
    rng = random.Random(seed)
    index = FenceIndex()
    for i in range(count):
        lat, lon = offset(
            *PARIS, rng.uniform(-spread_m, spread_m), rng.uniform(-spread_m, spread_m)
        )
        issuer = "iss_a" if i % 3 else "iss_b"
        index.put(
            entry(f"sto_{i:04d}", lat, lon, radius_m=rng.choice([30, 80, 300]), issuer_id=issuer)
        )
    return index


def test_ios_gets_the_19_nearest_and_a_bubble_no_other_store_reaches_into() -> None:
    index = scattered(400, 3000)
    regions = region_set(index, *PARIS, "ios", everyone)
    assert len(regions.regions) == 19
    handed = {r.region_id for r in regions.regions}
    edges = sorted(
        (max(0.0, haversine_m(*PARIS, e.lat, e.lon) - e.reach_m), e.store_id)
        for e in index.entries()
    )
    assert handed == {store_id for _, store_id in edges[:19]}
    distances = [r.distance_m for r in regions.regions]
    assert distances == sorted(distances)
    bubble = regions.refresh.radius_m
    # The bubble's promise: every store not handed out has its edge at or beyond it.
    unseen = [d for d, store_id in edges if store_id not in handed]
    assert bubble <= min(unseen) + 0.1 or bubble == MIN_BUBBLE_M


def test_android_gets_99_and_only_evaluated_programs() -> None:
    index = scattered(400, 3000)
    regions = region_set(index, *PARIS, "android", lambda issuer: issuer == "iss_b")
    assert len(regions.regions) == 99
    assert {r.issuer_id for r in regions.regions if isinstance(r, GeofenceRegion)} == {"iss_b"}


def test_few_stores_give_all_of_them_and_the_searched_circle_as_bubble() -> None:
    index = FenceIndex()
    index.put(entry("sto_1", *offset(*PARIS, 1500, 0)))
    index.put(entry("sto_2", *offset(*PARIS, 0, 9000)))
    regions = region_set(index, *PARIS, "ios", everyone)
    assert [r.region_id for r in regions.regions] == ["sto_1", "sto_2"]
    assert regions.refresh.radius_m == MAX_SEARCH_M


def test_nothing_around_gives_an_empty_list_and_the_largest_bubble() -> None:
    regions = region_set(FenceIndex(), 89.5, 0.0, "ios", everyone)
    assert regions.regions == []
    assert (regions.refresh.lat, regions.refresh.radius_m) == (89.5, MAX_SEARCH_M)


def test_a_crowd_of_overlapping_stores_keeps_the_minimum_bubble() -> None:
    index = FenceIndex()
    for i in range(30):
        index.put(entry(f"sto_{i}", *offset(*PARIS, i, 0), radius_m=100))
    regions = region_set(index, *PARIS, "ios", everyone)
    assert len(regions.regions) == 19
    assert regions.refresh.radius_m == MIN_BUBBLE_M
