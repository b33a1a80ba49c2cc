"""Geometry for the presence engine: distances, fences, and the inside/outside decision.

Pure and synchronous: no I/O, no clock. The engine evaluates tens of candidate fences per
location fix, so everything a fence needs per call is computed once when it is built.

Fences are frozen msgspec Structs forming the tagged union ``Fence = Circle | Polygon``
(``{"type": "circle", ...}`` / ``{"type": "polygon", ...}``), so the same value travels in
request bodies, is stored in Redis, and is evaluated directly.

Polygons are evaluated in a local equirectangular projection centred on their bounding box
(metres east/north of the centre, longitudes unwrapped across the antimeridian). Its only
error is the east-west scale, taken at the centre latitude: a point ``dlat`` radians north
or south of the centre has its east-west offsets off by about ``tan(lat0) * dlat``, i.e.
0.1 % at 45 deg and 0.5 % at 80 deg for points 6 km from the centre, negligible against fix
accuracy. Polygons are capped at ``MAX_POLYGON_RADIUS_M`` to keep it so. Fences beyond
Redis GEO's latitude limit (+-85.05112878 deg) are rejected: the geo index cannot hold them,
and no polygon here can contain a pole.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Annotated, Final, Literal, TypeAlias, cast

import msgspec

EARTH_RADIUS_M: Final = 6_371_008.8
"""Mean Earth radius (IUGG). Redis GEO uses 6_372_797.560856 m: its distances read 0.03 %
longer than ours, well inside the 0.5 % error it documents for its own haversine."""

MAX_GEO_LAT: Final = 85.05112878
"""Redis GEO (web-mercator geohash) rejects latitudes beyond this."""

MIN_CIRCLE_RADIUS_M: Final = 20.0
MAX_CIRCLE_RADIUS_M: Final = 5000.0
MAX_POLYGON_RADIUS_M: Final = 25_000.0
"""Bounding radius cap for polygons: bounds the projection error and the geo-index fan-out."""
MAX_POLYGON_POSITIONS: Final = 200
"""Each position costs ~0.3 us per evaluation; 200 keeps even a large outline near 65 us."""

MAX_PLAUSIBLE_SPEED_MPS: Final = 300 / 3.6
"""300 km/h: faster than this between two fixes is a bad fix or a spoofed one."""

INSIDE_ACCURACY_FACTOR: Final = 0.5
"""Inside needs the fix at least this many accuracy radii inside the boundary."""
MAX_ACCURACY_TO_RADIUS: Final = 1 / INSIDE_ACCURACY_FACTOR
"""A fix whose accuracy exceeds 2x the fence radius is never evidence of being inside."""
MIN_EXIT_MARGIN_M: Final = 50.0
EXIT_MARGIN_RADIUS_FRACTION: Final = 0.5

Presence: TypeAlias = Literal["inside", "outside", "unknown"]

_DEG: Final = math.pi / 180
_M_PER_DEG: Final = EARTH_RADIUS_M * _DEG
_MIN_RING_AREA_M2: Final = 1.0
_ON_BOUNDARY_M: Final = 0.01

Latitude = Annotated[
    float,
    msgspec.Meta(
        ge=-MAX_GEO_LAT, le=MAX_GEO_LAT, description="Degrees north; Redis GEO's +-85.05 limit."
    ),
]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180, description="Degrees east.")]
CircleRadius = Annotated[
    float,
    msgspec.Meta(ge=MIN_CIRCLE_RADIUS_M, le=MAX_CIRCLE_RADIUS_M, description="Metres."),
]
Position = tuple[Longitude, Latitude]
Ring = Annotated[list[Position], msgspec.Meta(min_length=4)]


# --- distances ------------------------------------------------------------------------------


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres on the mean-radius sphere."""
    phi1 = lat1 * _DEG
    phi2 = lat2 * _DEG
    s_lat = math.sin((phi2 - phi1) * 0.5)
    # sin^2 of half the longitude difference is 360-periodic: the antimeridian needs no care.
    s_lon = math.sin((lon2 - lon1) * (_DEG * 0.5))
    h = s_lat * s_lat + math.cos(phi1) * math.cos(phi2) * s_lon * s_lon
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(h, 1.0)))


def speed_mps(
    lat1: float,
    lon1: float,
    t1: float,
    lat2: float,
    lon2: float,
    t2: float,
    *,
    slack_m: float = 0.0,
) -> float:
    """Speed between two fixes (times in seconds), ignoring the first ``slack_m`` metres.

    Pass the two fixes' accuracies as ``slack_m`` so that jitter within them does not read as
    movement. Order does not matter; a move in zero time is infinitely fast.
    """
    distance = haversine_m(lat1, lon1, lat2, lon2) - slack_m
    if distance <= 0.0:
        return 0.0
    elapsed = abs(t2 - t1)
    return distance / elapsed if elapsed > 0.0 else math.inf


def check_geo_latitude(lat: float) -> None:
    """Raise ValueError for a latitude Redis GEO cannot index (beyond +-85.05112878)."""
    if not -MAX_GEO_LAT <= lat <= MAX_GEO_LAT:
        raise ValueError(
            f"latitude {lat} is beyond +-{MAX_GEO_LAT} deg, the limit of the geo index "
            "(Redis GEO); fences this close to a pole are not supported"
        )


def _check_position(lon: float, lat: float, where: str) -> None:
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise ValueError(f"{where}: longitude {lon} is outside [-180, 180]")
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise ValueError(f"{where}: latitude {lat} is outside [-90, 90]")
    try:
        check_geo_latitude(lat)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


# --- fences ---------------------------------------------------------------------------------


class Circle(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="circle"):
    """A circular geofence: centre and radius (20-5000 m)."""

    lat: Latitude
    lon: Longitude
    radius_m: CircleRadius

    def __post_init__(self) -> None:
        # msgspec applies the Meta constraints when decoding only; direct construction
        # (tests, migrations, issuer imports) goes through the same checks here.
        _check_position(self.lon, self.lat, "circle centre")
        if not MIN_CIRCLE_RADIUS_M <= self.radius_m <= MAX_CIRCLE_RADIUS_M:
            raise ValueError(
                f"circle radius {self.radius_m} m is outside "
                f"[{MIN_CIRCLE_RADIUS_M:g}, {MAX_CIRCLE_RADIUS_M:g}] m"
            )


class Polygon(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="polygon", dict=True
):
    """A polygonal geofence: GeoJSON Polygon rings of (lon, lat), the first one the outer
    boundary, the others holes (even-odd rule). Rings may cross the antimeridian.

    The projected edges are computed once, in ``__post_init__`` (which msgspec also runs
    when decoding), and kept in the instance ``__dict__``: msgspec documents ``dict=True``
    for private runtime state, so it is never encoded and one type serves storage, the API
    and evaluation. Do not mutate ``rings`` in place; build a new Polygon instead.
    """

    rings: list[Ring]

    def __post_init__(self) -> None:
        self.__dict__["_frame"] = _PolygonFrame(self.rings)

    @classmethod
    def from_geojson(cls, coordinates: Sequence[Sequence[Sequence[float]]]) -> Polygon:
        """Build from a GeoJSON Polygon ``coordinates`` array; ValueError says what is wrong.

        Positions may carry an altitude (RFC 7946); it is dropped.
        """
        rings: list[list[tuple[float, float]]] = []
        for r, ring in enumerate(coordinates):
            if isinstance(ring, str | bytes) or not isinstance(ring, Sequence):
                raise ValueError(f"ring {r}: expected an array of positions")
            rings.append([_position(p, f"ring {r}, position {i}") for i, p in enumerate(ring)])
        return cls(rings=rings)


Fence: TypeAlias = Circle | Polygon


def _position(raw: Sequence[float], where: str) -> tuple[float, float]:
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence) or len(raw) not in (2, 3):
        raise ValueError(f"{where}: expected [longitude, latitude] or [lon, lat, altitude]")
    lon, lat = raw[0], raw[1]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lon, lat)):
        raise ValueError(f"{where}: longitude and latitude must be numbers")
    return (float(lon), float(lat))


# An edge as the hot loop wants it: start (ax, ay), end y (by), direction (ex, ey),
# 1/|e|^2 for the projection onto it, and ex/ey for the even-odd crossing test.
_Edge: TypeAlias = tuple[float, float, float, float, float, float, float]


class _PolygonFrame:
    """A polygon in metres east/north of its bounding-box centre, ready to evaluate."""

    __slots__ = ("area_m2", "bounding_radius_m", "edges", "kx", "lat0", "lon0")

    def __init__(self, rings: Sequence[Sequence[tuple[float, float]]]) -> None:
        _check_rings(rings)
        outer = _unwrap(rings[0], rings[0][0][0], 0)
        lats = [lat for _, lat in rings[0]]
        lat0 = (min(lats) + max(lats)) / 2
        lon0_unwrapped = (min(outer) + max(outer)) / 2
        self.lat0 = lat0
        self.lon0 = _wrap180(lon0_unwrapped)
        self.kx = _M_PER_DEG * math.cos(lat0 * _DEG)
        xy = [self._project_ring(rings[0], outer, lon0_unwrapped)]
        for r, ring in enumerate(rings[1:], start=1):
            unwrapped = _unwrap(ring, lon0_unwrapped, r)
            xy.append(self._project_ring(ring, unwrapped, lon0_unwrapped))
        self.area_m2 = _check_areas(xy)
        outer_edges = _edges(xy[0])
        _check_holes_inside(outer_edges, xy[1:])
        self.edges = tuple(edge for ring_xy in xy for edge in _edges(ring_xy))
        self.bounding_radius_m = self._bounding_radius(rings[0], xy[0])

    def _project_ring(
        self, ring: Sequence[tuple[float, float]], lons: list[float], lon0: float
    ) -> list[tuple[float, float]]:
        return [
            ((lon - lon0) * self.kx, (lat - self.lat0) * _M_PER_DEG)
            for lon, (_, lat) in zip(lons, ring, strict=True)
        ]

    def _bounding_radius(
        self, ring: Sequence[tuple[float, float]], xy: list[tuple[float, float]]
    ) -> float:
        # The farthest point of an edge from the centre is one of its ends, so vertices
        # suffice; taking the larger of the planar and great-circle distance covers both the
        # region this module evaluates and the one the geo index measures.
        radius = max(
            max(math.hypot(x, y), haversine_m(self.lat0, self.lon0, lat, lon))
            for (lon, lat), (x, y) in zip(ring, xy, strict=True)
        )
        if radius > MAX_POLYGON_RADIUS_M:
            raise ValueError(
                f"polygon is too large: it reaches {radius:.0f} m from its centre "
                f"(at most {MAX_POLYGON_RADIUS_M:g} m)"
            )
        return radius

    def signed_distance_m(self, lat: float, lon: float) -> float:
        dlon = lon - self.lon0
        if dlon >= 180.0:
            dlon -= 360.0
        elif dlon < -180.0:
            dlon += 360.0
        return _signed_distance_xy(self.edges, dlon * self.kx, (lat - self.lat0) * _M_PER_DEG)


def _check_rings(rings: Sequence[Sequence[tuple[float, float]]]) -> None:
    if not rings:
        raise ValueError("polygon needs at least one ring (its outer boundary)")
    total = sum(len(ring) for ring in rings)
    if total > MAX_POLYGON_POSITIONS:
        raise ValueError(f"polygon has {total} positions (at most {MAX_POLYGON_POSITIONS})")
    for r, ring in enumerate(rings):
        if len(ring) < 4:
            raise ValueError(f"ring {r} has {len(ring)} positions; a closed ring needs >= 4")
        for i, (lon, lat) in enumerate(ring):
            _check_position(lon, lat, f"ring {r}, position {i}")
        if ring[0] != ring[-1]:
            raise ValueError(f"ring {r} is not closed: its first and last positions differ")


def _wrap180(lon: float) -> float:
    """Longitude into [-180, 180)."""
    return (lon + 180.0) % 360.0 - 180.0


def _unwrap(ring: Sequence[tuple[float, float]], near_lon: float, r: int) -> list[float]:
    """Longitudes made continuous (no 360 deg jumps), starting nearest ``near_lon``."""
    lons = [near_lon + _wrap180(ring[0][0] - near_lon)]
    for (prev, _), (lon, _) in pairwise(ring):
        lons.append(lons[-1] + _wrap180(lon - prev))
    if abs(lons[-1] - lons[0]) > 1e-9:
        # Closed in raw coordinates but not once unwrapped: the ring goes round a pole.
        raise ValueError(f"ring {r} encircles a pole; split it or use a circle")
    return lons


def _ring_area(xy: list[tuple[float, float]]) -> float:
    """Absolute shoelace area; either winding order is accepted (RFC 7946 says 'should')."""
    twice = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in pairwise(xy))
    return abs(twice) / 2


def _check_areas(xy: list[list[tuple[float, float]]]) -> float:
    areas = [_ring_area(ring) for ring in xy]
    for r, area in enumerate(areas):
        if area < _MIN_RING_AREA_M2:
            raise ValueError(f"ring {r} is degenerate: its positions enclose no area")
    return areas[0] - sum(areas[1:])


def _edges(xy: list[tuple[float, float]]) -> list[_Edge]:
    edges: list[_Edge] = []
    for (ax, ay), (bx, by) in pairwise(xy):
        ex, ey = bx - ax, by - ay
        length2 = ex * ex + ey * ey
        if length2 == 0.0:
            continue  # a repeated position adds no boundary
        edges.append((ax, ay, by, ex, ey, 1.0 / length2, ex / ey if ey else 0.0))
    return edges


def _check_holes_inside(
    outer_edges: Sequence[_Edge], holes: list[list[tuple[float, float]]]
) -> None:
    for h, hole in enumerate(holes, start=1):
        if any(_signed_distance_xy(outer_edges, x, y) > _ON_BOUNDARY_M for x, y in hole):
            raise ValueError(f"ring {h} (a hole) reaches outside the outer ring")


def _signed_distance_xy(edges: Sequence[_Edge], x: float, y: float) -> float:
    """Even-odd containment and distance to the nearest edge, in one pass over the edges."""
    inside = False
    best = math.inf
    for ax, ay, by, ex, ey, inv_length2, ex_per_ey in edges:
        if (ay > y) != (by > y) and x < ax + (y - ay) * ex_per_ey:
            inside = not inside
        t = ((x - ax) * ex + (y - ay) * ey) * inv_length2
        if t < 0.0:
            t = 0.0
        elif t > 1.0:
            t = 1.0
        dx = x - ax - t * ex
        dy = y - ay - t * ey
        d2 = dx * dx + dy * dy
        if d2 < best:
            best = d2
    distance = math.sqrt(best)
    return -distance if inside else distance


def _frame(polygon: Polygon) -> _PolygonFrame:
    frame = polygon.__dict__.get("_frame")
    if frame is None:
        # copy.copy() and friends skip __post_init__; rebuild rather than fail.
        frame = _PolygonFrame(polygon.rings)
        polygon.__dict__["_frame"] = frame
    return cast(_PolygonFrame, frame)


# --- queries on any fence -------------------------------------------------------------------


def signed_distance_m(fence: Fence, lat: float, lon: float) -> float:
    """Metres from (lat, lon) to the fence boundary: negative inside, positive outside."""
    if isinstance(fence, Circle):
        return haversine_m(fence.lat, fence.lon, lat, lon) - fence.radius_m
    return _frame(fence).signed_distance_m(lat, lon)


def centre_of(fence: Fence) -> tuple[float, float]:
    """(lat, lon) the geo index stores the fence under."""
    if isinstance(fence, Circle):
        return (fence.lat, fence.lon)
    frame = _frame(fence)
    return (frame.lat0, frame.lon0)


def bounding_radius_m(fence: Fence) -> float:
    """Radius around ``centre_of(fence)`` that contains the whole fence (for geo search)."""
    if isinstance(fence, Circle):
        return fence.radius_m
    return _frame(fence).bounding_radius_m


def equivalent_radius_m(fence: Fence) -> float:
    """Radius of the circle with the fence's area: the size ``classify`` compares against.

    Area, not extent, because the rule is about how much of the accuracy circle the fence
    can cover; a long thin polygon is a small fence.
    """
    if isinstance(fence, Circle):
        return fence.radius_m
    return math.sqrt(_frame(fence).area_m2 / math.pi)


# --- the decision ---------------------------------------------------------------------------


def default_exit_margin_m(radius_m: float) -> float:
    """Exit margin when the store sets none: the larger of 50 m and half the radius."""
    return max(MIN_EXIT_MARGIN_M, radius_m * EXIT_MARGIN_RADIUS_FRACTION)


def classify(
    distance_m: float,
    accuracy_m: float,
    fence_radius_m: float,
    exit_margin_m: float | None = None,
) -> Presence:
    """Decide inside / outside / unknown for one fix; on 'unknown' keep the previous state.

    - inside:  ``accuracy_m <= 2 * fence_radius_m`` and ``distance_m + accuracy_m / 2 <= 0``
      (the fix is at least half its accuracy radius inside the boundary). For a circle the
      second condition alone already fails beyond 2x the radius (no point is deeper than
      the radius); the explicit cap keeps the promise whatever radius the caller passes.
    - outside: ``distance_m > margin + accuracy_m`` with ``margin = exit_margin_m`` or
      ``default_exit_margin_m(fence_radius_m)``: the whole accuracy circle is past the margin.
    - unknown: anything between (the hysteresis band), and fixes with a negative or NaN
      accuracy (iOS reports an invalid fix as a negative horizontal accuracy).
    """
    if not accuracy_m >= 0.0:
        return "unknown"
    if fence_radius_m <= 0.0:
        raise ValueError(f"fence radius must be positive, got {fence_radius_m}")
    if exit_margin_m is None:
        margin = default_exit_margin_m(fence_radius_m)
    elif exit_margin_m >= 0.0:
        margin = exit_margin_m
    else:
        raise ValueError(f"exit margin must be >= 0 m, got {exit_margin_m}")
    if distance_m > margin + accuracy_m:
        return "outside"
    if (
        accuracy_m <= MAX_ACCURACY_TO_RADIUS * fence_radius_m
        and distance_m + INSIDE_ACCURACY_FACTOR * accuracy_m <= 0.0
    ):
        return "inside"
    return "unknown"
