"""Geometry of the presence engine: distances, fences, and the inside/outside decision."""

from __future__ import annotations

import copy
import math
import random
from itertools import pairwise

import msgspec
import pytest

from geofence.geometry import (
    EARTH_RADIUS_M,
    MAX_GEO_LAT,
    MAX_PLAUSIBLE_SPEED_MPS,
    MAX_POLYGON_POSITIONS,
    Circle,
    Fence,
    Polygon,
    Presence,
    bounding_radius_m,
    centre_of,
    check_geo_latitude,
    classify,
    default_exit_margin_m,
    equivalent_radius_m,
    haversine_m,
    signed_distance_m,
    speed_mps,
)

M_PER_DEG = EARTH_RADIUS_M * math.pi / 180
PARIS = (48.8566, 2.3522)


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """(lat, lon) of the point east_m / north_m from (lat, lon)."""
    return (lat + north_m / M_PER_DEG, lon + east_m / (M_PER_DEG * math.cos(math.radians(lat))))


def ring_m(lat: float, lon: float, corners: list[tuple[float, float]]) -> list[list[float]]:
    """A closed GeoJSON ring from (east_m, north_m) corners around (lat, lon)."""
    ring = []
    for east, north in [*corners, corners[0]]:
        plat, plon = offset(lat, lon, east, north)
        ring.append([plon, plat])
    return ring


def square(half_m: float) -> list[tuple[float, float]]:
    return [(-half_m, -half_m), (half_m, -half_m), (half_m, half_m), (-half_m, half_m)]


def distance_at(fence: Fence, east_m: float, north_m: float) -> float:
    lat, lon = offset(*centre_of(fence), east_m, north_m)
    return signed_distance_m(fence, lat, lon)


# --- distances --------------------------------------------------------------------------------


def test_haversine_paris_london_is_343_5_km() -> None:
    distance = haversine_m(*PARIS, 51.5074, -0.1278)
    assert distance == pytest.approx(343_500, rel=0.005)


def test_haversine_one_degree_of_equator() -> None:
    assert haversine_m(0.0, 10.0, 0.0, 11.0) == pytest.approx(111_194.9, abs=1.0)
    assert haversine_m(0.0, 10.0, 0.0, 10.0) == 0.0


def test_haversine_across_the_antimeridian_is_short() -> None:
    assert haversine_m(0.0, 179.95, 0.0, -179.95) == pytest.approx(0.1 * M_PER_DEG, rel=1e-9)


def test_speed_between_fixes() -> None:
    north = offset(*PARIS, 0.0, 1000.0)
    assert speed_mps(*PARIS, 0.0, *north, 60.0) == pytest.approx(1000 / 60, rel=1e-6)
    assert speed_mps(*north, 60.0, *PARIS, 0.0) == pytest.approx(1000 / 60, rel=1e-6)
    assert speed_mps(*PARIS, 0.0, *north, 60.0, slack_m=400.0) == pytest.approx(10.0, rel=1e-6)
    assert speed_mps(*PARIS, 0.0, *north, 60.0, slack_m=1500.0) == 0.0
    assert speed_mps(*PARIS, 5.0, *north, 5.0) == math.inf
    assert speed_mps(*PARIS, 5.0, *PARIS, 5.0) == 0.0
    assert pytest.approx(83.333, abs=0.001) == MAX_PLAUSIBLE_SPEED_MPS


# --- circles ----------------------------------------------------------------------------------


def test_circle_signed_distance() -> None:
    circle = Circle(lat=PARIS[0], lon=PARIS[1], radius_m=100.0)
    assert signed_distance_m(circle, *PARIS) == pytest.approx(-100.0, abs=1e-6)
    assert distance_at(circle, 0.0, 150.0) == pytest.approx(50.0, abs=0.01)
    assert distance_at(circle, -60.0, 0.0) == pytest.approx(-40.0, abs=0.01)
    assert centre_of(circle) == PARIS
    assert bounding_radius_m(circle) == equivalent_radius_m(circle) == 100.0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"lat": 10.0, "lon": 10.0, "radius_m": 19.9}, "radius"),
        ({"lat": 10.0, "lon": 10.0, "radius_m": 5000.1}, "radius"),
        ({"lat": 10.0, "lon": 180.5, "radius_m": 100.0}, "longitude"),
        ({"lat": -89.0, "lon": 10.0, "radius_m": 100.0}, "85.05"),
        ({"lat": math.nan, "lon": 10.0, "radius_m": 100.0}, "latitude"),
    ],
)
def test_circle_validation(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Circle(**fields)


def test_fences_round_trip_as_a_tagged_union() -> None:
    circle = Circle(lat=1.0, lon=2.0, radius_m=50.0)
    polygon = Polygon.from_geojson([ring_m(*PARIS, square(100.0))])
    encoded = msgspec.json.encode([circle, polygon])
    assert b'"type":"circle"' in encoded
    assert b'"type":"polygon"' in encoded
    assert b"_frame" not in encoded
    decoded = msgspec.json.decode(encoded, type=list[Fence])
    assert decoded == [circle, polygon]
    packed = msgspec.msgpack.decode(msgspec.msgpack.encode(polygon), type=Fence)
    assert signed_distance_m(packed, *PARIS) == pytest.approx(-100.0, abs=0.01)


def test_decoding_applies_the_same_validation() -> None:
    with pytest.raises(msgspec.ValidationError, match="radius_m"):
        msgspec.json.decode(b'{"type":"circle","lat":1,"lon":2,"radius_m":5}', type=Fence)
    open_ring = b'{"type":"polygon","rings":[[[0,0],[0.01,0],[0.01,0.01],[0,0.01]]]}'
    with pytest.raises(msgspec.ValidationError, match="not closed"):
        msgspec.json.decode(open_ring, type=Fence)


# --- the decision -----------------------------------------------------------------------------


def test_default_exit_margin() -> None:
    assert default_exit_margin_m(20.0) == 50.0
    assert default_exit_margin_m(100.0) == 50.0
    assert default_exit_margin_m(400.0) == 200.0


@pytest.mark.parametrize(
    ("distance", "accuracy", "radius", "margin", "expected"),
    [
        (-5.0, 10.0, 100.0, None, "inside"),  # half the accuracy inside the boundary
        (-4.99, 10.0, 100.0, None, "unknown"),
        (0.0, 0.0, 100.0, None, "inside"),  # a perfect fix on the boundary
        (60.0, 10.0, 100.0, None, "unknown"),  # 50 m default margin + 10 m accuracy
        (60.01, 10.0, 100.0, None, "outside"),
        (210.0, 10.0, 400.0, None, "unknown"),  # margin is half of a 400 m radius
        (210.01, 10.0, 400.0, None, "outside"),
        (20.0, 10.0, 100.0, 10.0, "unknown"),  # the store's own margin
        (20.01, 10.0, 100.0, 10.0, "outside"),
        (0.5, 10.0, 100.0, 0.0, "unknown"),
        (-20.0, 40.0, 20.0, None, "inside"),  # accuracy exactly 2x radius, at the centre
        (2000.0, 1000.0, 20.0, None, "outside"),  # a vague fix far away still means outside
    ],
)
def test_classify_boundaries(
    distance: float, accuracy: float, radius: float, margin: float | None, expected: Presence
) -> None:
    assert classify(distance, accuracy, radius, margin) == expected


@pytest.mark.parametrize("accuracy", [40.01, 50.0, 100.0, 1000.0])
@pytest.mark.parametrize("distance", [-20.0, -10.0, 0.0])
def test_an_accuracy_circle_much_larger_than_the_fence_is_never_inside(
    accuracy: float, distance: float
) -> None:
    assert classify(distance, accuracy, 20.0, None) == "unknown"
    # Even when the caller's radius understates how deep the fix is.
    assert classify(-accuracy, accuracy, 20.0, None) == "unknown"
    # The same fix is inside a fence large enough for its accuracy.
    assert classify(distance - accuracy, accuracy, 1000.0, None) == "inside"


@pytest.mark.parametrize("accuracy", [-1.0, math.nan])
def test_an_invalid_accuracy_decides_nothing(accuracy: float) -> None:
    assert classify(-50.0, accuracy, 100.0, None) == "unknown"
    assert classify(5000.0, accuracy, 100.0, None) == "unknown"


def test_classify_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="margin"):
        classify(0.0, 10.0, 100.0, -1.0)
    with pytest.raises(ValueError, match="radius"):
        classify(0.0, 10.0, 0.0, None)


def test_a_walk_that_jitters_across_the_boundary_never_flips() -> None:
    circle = Circle(lat=PARIS[0], lon=PARIS[1], radius_m=100.0)
    rng = random.Random(7)
    walk: list[tuple[float, float]] = [(n, 10.0) for n in range(400, -1, -20)]  # walk in
    walk += [(100.0 + rng.uniform(-40.0, 40.0), rng.uniform(5.0, 40.0)) for _ in range(500)]
    walk += [(n, 10.0) for n in range(100, 401, 20)]  # and away again
    state: Presence = "outside"
    transitions: list[Presence] = []
    naive_flips = 0
    previous_distance = 300.0
    for north, accuracy in walk:
        distance = distance_at(circle, 0.0, north)
        naive_flips += (distance <= 0) != (previous_distance <= 0)
        previous_distance = distance
        decided = classify(distance, accuracy, circle.radius_m, None)
        if decided != "unknown" and decided != state:
            state = decided
            transitions.append(decided)
    assert naive_flips > 100  # the walk really does straddle the boundary
    assert transitions == ["inside", "outside"]


# --- polygons ---------------------------------------------------------------------------------


def test_polygon_with_a_hole() -> None:
    polygon = Polygon.from_geojson(
        [ring_m(45.0, 5.0, square(200.0)), ring_m(45.0, 5.0, square(50.0))]
    )
    assert distance_at(polygon, 0.0, 0.0) == pytest.approx(50.0, abs=0.1)  # in the hole
    assert distance_at(polygon, 0.0, 30.0) == pytest.approx(20.0, abs=0.1)
    assert distance_at(polygon, 100.0, 0.0) == pytest.approx(-50.0, abs=0.1)
    assert distance_at(polygon, 0.0, -180.0) == pytest.approx(-20.0, abs=0.1)
    assert distance_at(polygon, 250.0, 0.0) == pytest.approx(50.0, abs=0.1)
    assert equivalent_radius_m(polygon) == pytest.approx(math.sqrt(150_000 / math.pi), rel=1e-3)


def test_concave_polygon() -> None:
    # A U: a 300 x 200 m block with a 100 m wide notch cut into it from the north.
    u_shape = [(-150, -100), (150, -100), (150, 100), (50, 100), (50, -20), (-50, -20)]
    u_shape += [(-50, 100), (-150, 100)]
    polygon = Polygon.from_geojson([ring_m(45.0, 5.0, [(float(e), float(n)) for e, n in u_shape])])
    assert distance_at(polygon, 0.0, 50.0) == pytest.approx(50.0, abs=0.1)  # in the notch
    assert distance_at(polygon, -100.0, 50.0) == pytest.approx(-50.0, abs=0.1)  # left arm
    assert distance_at(polygon, 100.0, 60.0) == pytest.approx(-40.0, abs=0.1)  # right arm
    assert distance_at(polygon, 0.0, -60.0) == pytest.approx(-40.0, abs=0.1)  # the base
    assert distance_at(polygon, -100.0, 200.0) == pytest.approx(100.0, abs=0.1)


def test_polygon_distance_matches_haversine_outside() -> None:
    polygon = Polygon.from_geojson([ring_m(*PARIS, square(100.0))])
    lat, lon = offset(*PARIS, 0.0, 100.0 + 250.0)
    top_edge = offset(*PARIS, 0.0, 100.0)
    assert signed_distance_m(polygon, lat, lon) == pytest.approx(
        haversine_m(*top_edge, lat, lon), abs=0.5
    )


@pytest.mark.parametrize("start", [0, 1, 2])
def test_polygon_across_the_antimeridian(start: int) -> None:
    corners = [[179.9, -0.05], [-179.9, -0.05], [-179.9, 0.05], [179.9, 0.05]]
    corners = corners[start:] + corners[:start]  # whichever side the ring starts on
    polygon = Polygon.from_geojson([[*corners, corners[0]]])
    assert signed_distance_m(polygon, 0.0, 179.95) < 0
    assert signed_distance_m(polygon, 0.0, -179.95) < 0
    # At 180 deg the nearest edges are the north and south ones, 0.05 deg away.
    assert signed_distance_m(polygon, 0.0, 180.0) == pytest.approx(-0.05 * M_PER_DEG, abs=1.0)
    assert signed_distance_m(polygon, 0.0, -180.0) == pytest.approx(-0.05 * M_PER_DEG, abs=1.0)
    assert signed_distance_m(polygon, 0.0, -179.8) == pytest.approx(0.1 * M_PER_DEG, abs=1.0)
    assert signed_distance_m(polygon, 0.0, 0.0) > 10_000_000
    lat, lon = centre_of(polygon)
    assert lat == pytest.approx(0.0, abs=1e-9)
    assert abs(lon) == pytest.approx(180.0, abs=1e-9)
    assert bounding_radius_m(polygon) >= haversine_m(lat, lon, 0.05, 179.9)


def test_antimeridian_polygon_with_a_hole() -> None:
    outer = [[179.9, -0.05], [-179.9, -0.05], [-179.9, 0.05], [179.9, 0.05], [179.9, -0.05]]
    hole = [[179.99, -0.01], [-179.99, -0.01], [-179.99, 0.01], [179.99, 0.01], [179.99, -0.01]]
    polygon = Polygon.from_geojson([outer, hole])
    assert signed_distance_m(polygon, 0.0, 180.0) > 0
    assert signed_distance_m(polygon, 0.0, 179.95) < 0


def test_near_the_pole_distances_and_bounding_radius_hold() -> None:
    lat0, lon0 = 84.5, 30.0
    polygon = Polygon.from_geojson([ring_m(lat0, lon0, square(3000.0))])
    assert distance_at(polygon, 0.0, 3100.0) == pytest.approx(100.0, rel=0.01)
    assert distance_at(polygon, 2900.0, 0.0) == pytest.approx(-100.0, rel=0.01)
    # Every boundary point (edges are straight in lon/lat) lies within the bounding radius.
    ring = polygon.rings[0]
    radius = bounding_radius_m(polygon)
    centre = centre_of(polygon)
    for (lon_a, lat_a), (lon_b, lat_b) in pairwise(ring):
        for step in range(11):
            f = step / 10
            point = (lat_a + f * (lat_b - lat_a), lon_a + f * (lon_b - lon_a))
            assert haversine_m(*centre, *point) <= radius
    assert radius < 3000.0 * math.sqrt(2) * 1.05


def test_geo_latitude_limit() -> None:
    check_geo_latitude(MAX_GEO_LAT)
    check_geo_latitude(-MAX_GEO_LAT)
    for lat in (85.06, -85.06, 90.0):
        with pytest.raises(ValueError, match=r"85\.05"):
            check_geo_latitude(lat)
    with pytest.raises(ValueError, match=r"85\.05"):
        Polygon.from_geojson([ring_m(85.05, 10.0, square(1000.0))])


def test_a_ring_round_the_pole_is_rejected() -> None:
    ring = [[0.0, 85.0], [90.0, 85.0], [180.0, 85.0], [-90.0, 85.0], [0.0, 85.0]]
    with pytest.raises(ValueError, match="encircles a pole"):
        Polygon.from_geojson([ring])


def test_positions_may_carry_an_altitude() -> None:
    ring = [[lon, lat, 35.0] for lon, lat in ring_m(*PARIS, square(100.0))]
    polygon = Polygon.from_geojson([ring])
    assert signed_distance_m(polygon, *PARIS) == pytest.approx(-100.0, abs=0.01)
    assert all(len(position) == 2 for position in polygon.rings[0])


def test_a_copied_polygon_still_evaluates() -> None:
    polygon = Polygon.from_geojson([ring_m(*PARIS, square(100.0))])
    assert signed_distance_m(copy.copy(polygon), *PARIS) == pytest.approx(-100.0, abs=0.01)


SQUARE = [[0.0, 0.0], [0.01, 0.0], [0.01, 0.01], [0.0, 0.01], [0.0, 0.0]]
HOLE_OUTSIDE = [[0.02, 0.02], [0.03, 0.02], [0.03, 0.03], [0.02, 0.03], [0.02, 0.02]]
MANY = [[0.01 * math.cos(a / 100), 0.01 * math.sin(a / 100)] for a in range(MAX_POLYGON_POSITIONS)]


@pytest.mark.parametrize(
    ("coordinates", "message"),
    [
        ([], "at least one ring"),
        ([SQUARE[:-1]], "ring 0 is not closed"),
        ([[[0.0, 0.0], [0.01, 0.0], [0.0, 0.0]]], "ring 0 has 3 positions"),
        ([[[0.0, 0.0], [181.0, 0.0], [0.0, 0.01], [0.0, 0.0]]], "position 1: longitude 181"),
        ([[[0.0, 0.0], [0.0, -91.0], [0.01, 0.0], [0.0, 0.0]]], "position 1: latitude -91"),
        ([[[0.0, 0.0], [math.nan, 0.0], [0.01, 0.0], [0.0, 0.0]]], "longitude nan"),
        ([[[0.0, 0.0], [0.01, 0.0], [0.02, 0.0], [0.0, 0.0]]], "ring 0 is degenerate"),
        ([[[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]], "ring 0 is degenerate"),
        ([SQUARE, HOLE_OUTSIDE], "ring 1 .* outside the outer ring"),
        ([[*MANY, MANY[0]]], "positions \\(at most"),
        ([[[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.0]]], "too large"),
        ([[[0.0, 0.0], "0,1", [0.01, 0.0], [0.0, 0.0]]], "position 1: expected"),
        ([[[0.0, 0.0], [True, 0.0], [0.01, 0.0], [0.0, 0.0]]], "must be numbers"),
        (["nope"], "ring 0: expected an array"),
    ],
)
def test_geojson_validation_errors(coordinates: list[list[list[float]]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Polygon.from_geojson(coordinates)
