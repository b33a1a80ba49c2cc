"""The in-memory fence index finds exactly the fences a brute-force scan finds."""

from __future__ import annotations

import random

import pytest

from geofence.geometry import haversine_m
from geofence.grid import Grid
from geofence.index import FenceIndex, entry_from_record
from tests.geofence.fences import PARIS, entry, offset, record, ring_m


def brute_force(index: FenceIndex, lat: float, lon: float) -> set[str]:
    return {e.store_id for e in index.entries() if haversine_m(lat, lon, e.lat, e.lon) <= e.reach_m}


def found(index: FenceIndex, lat: float, lon: float) -> set[str]:
    return {e.store_id for e, _ in index.containing(lat, lon)}


@pytest.mark.parametrize(
    ("centre_lat", "centre_lon", "spread_deg"),
    [
        pytest.param(48.85, 2.35, 0.05, id="city"),
        pytest.param(0.0, 179.99, 0.05, id="antimeridian"),
        pytest.param(-16.5, -179.98, 0.05, id="antimeridian-fiji"),
        pytest.param(84.9, 30.0, 0.3, id="near-north-limit"),
        pytest.param(-84.95, -120.0, 0.1, id="near-south-limit"),
    ],
)
def test_containing_matches_a_brute_force_scan(
    centre_lat: float, centre_lon: float, spread_deg: float
) -> None:
    rng = random.Random(f"{centre_lat}:{centre_lon}")
    index = FenceIndex()
    for i in range(600):
        lat = max(-85.0, min(85.0, centre_lat + rng.uniform(-spread_deg, spread_deg)))
        lon = (centre_lon + rng.uniform(-spread_deg, spread_deg) + 180) % 360 - 180
        radius = rng.choice([20, 35, 60, 150, 400, 1200, 4800])
        index.put(entry(f"sto_{i}", lat, lon, radius_m=radius))
    for _ in range(1500):
        lat = max(-85.0, min(85.0, centre_lat + rng.uniform(-spread_deg, spread_deg) * 1.1))
        lon = (centre_lon + rng.uniform(-spread_deg, spread_deg) * 1.1 + 180) % 360 - 180
        assert found(index, lat, lon) == brute_force(index, lat, lon)


def test_dense_cells_stay_exact_through_edits() -> None:
    """Stores crowded into a few cells (sorted and packed there) are added, moved and
    removed, across the packing threshold both ways; lookups match a brute-force scan."""
    rng = random.Random(11)
    index = FenceIndex()

    def place(i: int) -> None:
        lat, lon = offset(*PARIS, rng.uniform(-60, 60), rng.uniform(-60, 60))
        index.put(entry(f"sto_{i}", lat, lon, radius_m=rng.choice([20, 30, 45])))

    def check() -> None:
        for _ in range(300):
            lat, lon = offset(*PARIS, rng.uniform(-120, 120), rng.uniform(-120, 120))
            assert found(index, lat, lon) == brute_force(index, lat, lon)

    for i in range(40):
        place(i)
    check()
    for i in rng.sample(range(40), 20):
        place(i)  # moved: replaced in place of the old entry
    check()
    for i in range(37):
        index.remove(f"sto_{i}")  # down to 3 stores: below the packing threshold
    check()
    for i in range(40, 60):
        place(i)
    check()


def test_a_store_straddling_the_antimeridian_is_found_from_both_sides() -> None:
    index = FenceIndex()
    index.put(entry("sto_dateline", 0.0, 179.9995, radius_m=200))
    east_side = offset(0.0, 179.9995, 150, 0)  # lands at about -179.9991
    assert east_side[1] < 0
    assert found(index, *east_side) == {"sto_dateline"}
    assert found(index, 0.0, 179.9990) == {"sto_dateline"}
    assert found(index, *offset(0.0, 179.9995, 250, 0)) == set()


def test_grid_cells_have_a_minimum_width_and_one_column_at_the_pole() -> None:
    grid = Grid(1000)
    assert grid.columns(grid.row_of(89.999)) == 1
    assert grid.columns(grid.row_of(0.0)) == 40_030
    # Every cell a 900 m circle near the pole touches is listed, and a point in it is found.
    keys = set(grid.circle_cells(89.99, 10.0, 900))
    assert grid.key(89.99, -170.0) in keys


def test_edits_replace_and_remove_entries() -> None:
    index = FenceIndex()
    index.put_record(record("sto_1", *PARIS, radius_m=50))
    assert found(index, *PARIS) == {"sto_1"}
    index.put_record(record("sto_1", *offset(*PARIS, 500, 0), radius_m=50))
    assert found(index, *PARIS) == set()
    assert found(index, *offset(*PARIS, 500, 0)) == {"sto_1"}
    index.remove("sto_1")
    assert len(index) == 0
    assert found(index, *offset(*PARIS, 500, 0)) == set()


def test_polygons_are_indexed_by_their_bounding_circle() -> None:
    square = ring_m(*PARIS, [(-100, -100), (100, -100), (100, 100), (-100, 100)])
    index = FenceIndex()
    assert index.put_record(record("sto_poly", *PARIS, polygon=[square]))
    assert found(index, *offset(*PARIS, 95, 95)) == {"sto_poly"}
    assert found(index, *offset(*PARIS, 150, 0)) == set()


def test_beacons_map_to_their_store_and_zone() -> None:
    uuid = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"
    index = FenceIndex()
    index.put_record(record("sto_b", *PARIS, beacons=[(uuid.upper(), 1, 2, "dairy")]))
    hit = index.beacon(uuid, 1, 2)
    assert hit is not None
    assert (hit[0].store_id, hit[1]) == ("sto_b", "dairy")
    index.remove("sto_b")
    assert index.beacon(uuid, 1, 2) is None


def test_a_store_beyond_the_geo_latitude_limit_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match=r"85\.05"):
        entry_from_record(record("sto_pole", 86.0, 0.0))
    index = FenceIndex()
    assert not index.put_record(record("sto_pole", 86.0, 0.0))
    assert len(index) == 0
    # A phone near the pole is fine: there is simply nothing there.
    assert found(index, 89.9, 0.0) == set()


def test_near_lists_fences_by_edge_distance_within_the_radius() -> None:
    index = FenceIndex()
    index.put_record(record("sto_near", *offset(*PARIS, 300, 0), radius_m=100))
    index.put_record(record("sto_far", *offset(*PARIS, 3000, 0), radius_m=100))
    index.put_record(record("sto_other", *offset(*PARIS, 100, 0), issuer_id="iss_b"))
    near = index.near(*PARIS, 1000, lambda issuer: issuer == "iss_a")
    assert [(round(d), e.store_id) for d, e in near] == [(200, "sto_near")]
