"""The in-memory fence index each worker process keeps (``follower.py`` keeps it fresh).

Two questions are asked of it:

- ``containing(lat, lon)``: which fences can contain this point (centre within the fence's
  bounding radius)? Asked for every location fix, so it is a hash lookup per *size class*:
  fences are grouped by bounding radius (25 m, 50 m, ... 25.6 km) and each class has a grid
  whose cells are twice as wide as its largest radius (as wide as its widest circle), with
  a fence listed in every cell its bounding circle touches (at most 2x2 away from the
  poles). A point is then looked up in one cell per non-empty class; each fence listed there
  goes through a cheap planar bound and, if it survives, one haversine. Cells are kept
  sorted by latitude; a dense cell (a city centre) also keeps its coordinates packed in
  arrays, so a lookup bisects to the fences within reach north and south and reads
  contiguous numbers rather than scattered objects. Cells as wide as the radius would
  halve the candidates but more than double the grid's memory (docs/benchmarks.md,
  presence).
- ``near(lat, lon, radius_m)``: which fences have their edge within ``radius_m``? Asked by
  region sync; fences are also listed by centre in three coarse grids (by size), scanned
  over the circle grown by the largest fence of that grid.

Entries are immutable tuples (``FenceEntry``): an edit replaces the entry. Everything runs on
the event loop thread, so a request never sees a half-applied edit.
"""

from __future__ import annotations

import itertools
import logging
import math
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from typing import Final, NamedTuple

from geofence.geometry import (
    EARTH_RADIUS_M,
    MAX_CIRCLE_RADIUS_M,
    MAX_GEO_LAT,
    MIN_CIRCLE_RADIUS_M,
    Circle,
    Polygon,
    bounding_radius_m,
    centre_of,
    equivalent_radius_m,
    haversine_m,
)
from geofence.grid import M_PER_DEG, Grid
from issuers.stores.models import StoreRecord

log = logging.getLogger("wallet.presence.index")

SIZE_CLASSES_M: Final = tuple(25.0 * 2**i for i in range(11))
"""Upper bounding radius of each size class: 25 m ... 25.6 km (the polygon limit)."""
NEAR_CLASSES_M: Final = ((250.0, 500.0), (2_000.0, 4_000.0), (SIZE_CLASSES_M[-1], 50_000.0))
"""(largest bounding radius, cell size) of the coarse grids region sync scans."""

BeaconKey = tuple[str, int, int]
_GENERATIONS: Final = itertools.count(1)
_TWO_R: Final = 2 * EARTH_RADIUS_M
_SHARED_INTS: dict[int, int] = {}
"""One object per distinct dwell time (ints above 256 are not shared by CPython): 28 bytes
a store at a million stores."""


class FenceEntry(NamedTuple):
    """One store as the engine evaluates it. ``size_m``: the radius ``classify`` compares
    accuracy against (a polygon's area-equivalent radius); ``reach_m``: bounding radius."""

    lat: float
    lon: float
    reach_m: float
    size_m: float
    exit_margin_m: float | None
    dwell_s: int
    store_id: str
    issuer_id: str
    polygon: Polygon | None
    beacons: tuple[tuple[str, int, int, str], ...]


def entry_from_record(record: StoreRecord) -> FenceEntry:
    """ValueError when the record holds no usable fence."""
    polygon: Polygon | None = None
    if record.polygon is not None:
        polygon = Polygon.from_geojson(record.polygon.coordinates)
        lat, lon = centre_of(polygon)
        reach, size = bounding_radius_m(polygon), equivalent_radius_m(polygon)
    elif record.radius_m is not None:
        lat, lon, reach = record.lat, record.lon, record.radius_m
        if not (-MAX_GEO_LAT <= lat <= MAX_GEO_LAT and -180.0 <= lon <= 180.0):
            Circle(lat=lat, lon=lon, radius_m=reach)  # raises, saying what is wrong
        if not MIN_CIRCLE_RADIUS_M <= reach <= MAX_CIRCLE_RADIUS_M:
            Circle(lat=lat, lon=lon, radius_m=reach)
        size = reach
    else:
        raise ValueError("store has neither radius_m nor polygon")
    beacons: tuple[tuple[str, int, int, str], ...] = ()
    if record.beacons:
        beacons = tuple(
            (b.uuid.lower(), b.major, b.minor, sys.intern(b.zone)) for b in record.beacons
        )
    return FenceEntry(
        lat,
        lon,
        reach,
        size,
        record.exit_margin_m,
        _SHARED_INTS.setdefault(record.dwell_s, record.dwell_s),
        record.store_id,
        sys.intern(record.issuer_id),
        polygon,
        beacons,
    )


def _size_class(reach_m: float) -> int:
    level = 0 if reach_m <= SIZE_CLASSES_M[0] else math.ceil(math.log2(reach_m / SIZE_CLASSES_M[0]))
    if level >= len(SIZE_CLASSES_M):
        raise ValueError(f"fence reaches {reach_m:.0f} m, beyond the largest size class")
    if level and reach_m <= SIZE_CLASSES_M[level - 1]:  # log2 rounding at a class boundary
        level -= 1
    return level


_LAT: Final = itemgetter(0)
_LON: Final = itemgetter(1)
_REACH: Final = itemgetter(2)
_SLACK: Final = itemgetter(0)
_PACK_FROM: Final = 8
"""Cells with at least this many fences also keep their coordinates packed (below, a plain
scan costs less than a bisect, and arrays would cost more memory than they save time)."""


class _Packed(NamedTuple):
    """A dense cell's latitudes, longitudes and bounding radii, in the cell's order: a
    lookup bisects ``lats`` and reads contiguous doubles instead of touching every entry
    tuple and its float objects (scattered in memory: cache misses, measured ~20 % of a
    dense-city lookup)."""

    lats: array[float]
    lons: array[float]
    reaches: array[float]


def _packed(cell: list[FenceEntry]) -> _Packed:
    # From lists, not iterators: array() then sizes itself once instead of growing per item
    # (with map(itemgetter) this was ~2,800 instructions a fence, most of FenceSet.of).
    return _Packed(
        array("d", [e.lat for e in cell]),
        array("d", [e.lon for e in cell]),
        array("d", [e.reach_m for e in cell]),
    )


class _Layer:
    """One grid and the fences listed in its cells, each cell sorted by latitude.  A lookup
    in a dense cell bisects to the entries within ``reach_deg`` (the layer's largest radius)
    north or south of the point: about half of a size-class cell."""

    __slots__ = ("cells", "count", "grid", "packed", "reach_deg")

    def __init__(self, cell_m: float, reach_m: float) -> None:
        self.grid = Grid(cell_m)
        self.reach_deg = reach_m / M_PER_DEG
        self.cells: dict[int, list[FenceEntry]] = {}
        self.packed: dict[int, _Packed] = {}
        self.count = 0

    def add(self, entry: FenceEntry, keys: Iterable[int]) -> None:
        for key in keys:
            cell = self.cells.get(key)
            if cell is None:
                self.cells[key] = [entry]
                continue
            at = bisect_right(cell, entry.lat, key=_LAT)
            cell.insert(at, entry)
            packed = self.packed.get(key)
            if packed is not None:
                packed.lats.insert(at, entry.lat)
                packed.lons.insert(at, entry.lon)
                packed.reaches.insert(at, entry.reach_m)
            elif len(cell) >= _PACK_FROM:
                self.packed[key] = _packed(cell)
        self.count += 1

    def rows(self, key: int, lat: float, band_deg: float) -> Iterator[Row] | None:
        """The rows of cell ``key`` whose latitude is within ``band_deg`` of ``lat`` (all
        of them in a cell too small to be packed); None for an empty cell."""
        cell = self.cells.get(key)
        if cell is None:
            return None
        packed = self.packed.get(key) if len(cell) >= _PACK_FROM else None
        if packed is None:
            return _rows(cell)
        lo = bisect_left(packed.lats, lat - band_deg)
        hi = bisect_right(packed.lats, lat + band_deg, lo)
        return zip(
            packed.lats[lo:hi], packed.lons[lo:hi], packed.reaches[lo:hi], cell[lo:hi],
            strict=True,
        )  # fmt: skip

    def remove(self, entry: FenceEntry, keys: Iterable[int]) -> None:
        for key in keys:
            cell = self.cells[key]
            at = cell.index(entry)
            del cell[at]
            if not cell:
                del self.cells[key]
            packed = self.packed.get(key)
            if packed is None:
                continue
            if len(cell) < _PACK_FROM:
                del self.packed[key]
            else:
                del packed.lats[at], packed.lons[at], packed.reaches[at]
        self.count -= 1


Row = tuple[float, float, float, FenceEntry]


def _rows(entries: list[FenceEntry]) -> Iterator[Row]:
    """(lat, lon, bounding radius, entry) of each entry."""
    return zip(map(_LAT, entries), map(_LON, entries), map(_REACH, entries), entries, strict=True)


def _holding(
    rows: Iterable[Row],
    lat: float,
    lon: float,
    margin_m: float,
    found: list[tuple[FenceEntry, float]],
) -> None:
    """Append (fence, metres from its centre) for each row whose bounding circle, grown by
    ``margin_m``, holds the point.  The engine's innermost loop, hence the inlining.

    The planar bound only rejects: it measures east-west with the cosine of the most
    poleward latitude a candidate can have (no fence reaches 0.25 deg), so it never
    overstates the distance by more than the 1 % + 1 m it is given as slack.

    The distance itself is planar at the two points' mean latitude (equirectangular): one
    cosine instead of haversine's five trigonometric calls, and in a dense city most
    candidates hold the point, so this is most of a lookup.  It never reads shorter than
    the great circle (by more than ~1e-9 m) and reads longer by at most 1.1 mm up to 2 km
    below 85 deg (Redis GEO's limit); only the largest fences near the pole read more (2 cm
    at 5 km).  Within a metre of the limit haversine decides, so a longer reading can only
    send a candidate there, never wrongly in or out."""
    sin, cos, radians, sqrt, m_per_deg = math.sin, math.cos, math.radians, math.sqrt, M_PER_DEG
    phi = radians(lat)
    cos_phi = cos(phi)
    k = m_per_deg * cos(radians(min(90.0, abs(lat) + 0.25)))
    for e_lat, e_lon, reach, entry in rows:
        limit = reach + margin_m
        dy = (e_lat - lat) * m_per_deg
        if dy > limit or -dy > limit:
            continue
        dlon = e_lon - lon
        if dlon > 180.0:
            dlon -= 360.0
        elif dlon < -180.0:
            dlon += 360.0
        dx = dlon * k
        slack = limit * 1.01 + 1.0
        if dx * dx + dy * dy > slack * slack:
            continue
        dx = dlon * m_per_deg * cos(radians((e_lat + lat) * 0.5))
        distance = sqrt(dx * dx + dy * dy)
        if distance < limit - 1.0:
            found.append((entry, distance))
            continue
        s_lat = sin((radians(e_lat) - phi) * 0.5)
        s_lon = sin(radians(e_lon - lon) * 0.5)
        h = s_lat * s_lat + cos_phi * cos(radians(e_lat)) * s_lon * s_lon
        distance = _TWO_R * math.asin(math.sqrt(h if h < 1.0 else 1.0))
        if distance <= limit:
            found.append((entry, distance))


SURE_MARGIN_M: Final = 0.01
"""How far from its limit a fence must stay to be decided by the triangle inequality alone
(more than the distances' rounding: planar readings are within 1.1 mm of the great circle
up to 2 km; farther, near the pole, they read up to 15 mm long at 5 km, so the distances of
larger fences are measured on the great circle when gathered)."""
_PLANAR_WITHIN_MM_M: Final = 2_000.0
"""Up to this distance a planar reading is within 1.1 mm of the great circle."""


class FenceSet(NamedTuple):
    """The fences around one point (where they were gathered), asked ``containing`` for
    points near it many times.

    Each fence's distance from that point was measured once, so for a point ``moved_m`` away
    its distance is known within ``moved_m`` (triangle inequality): a fence whose bounding
    circle's edge is farther than that from the gathering point cannot have changed sides.
    Fences are kept in order of that slack, so a lookup measures only the prefix whose slack
    is within ``moved_m`` and takes the fences certain to hold the point from a slice,
    unmeasured: a phone standing still measures almost nothing, a walking one the fences
    whose edge it may have crossed."""

    lats: array[float]
    lons: array[float]
    reaches: array[float]
    fences: list[FenceEntry]
    slacks: array[float]
    """|distance from the gathering point to the centre - bounding radius|, ascending."""
    centres: array[float]
    """Metres from the gathering point to each fence's centre."""
    positions: dict[str, int]
    """Each fence's position in these arrays, by store id (small ints: no object each)."""
    held_slacks: array[float]
    """The slacks of the fences whose bounding circle holds the gathering point, ascending."""
    held: list[FenceEntry]
    """Those fences, in the same order."""

    @classmethod
    def of(cls, measured: Iterable[tuple[FenceEntry, float]]) -> FenceSet:
        """From (fence, metres from the gathering point to its centre)."""
        # (slack, distance, fence), sorted by slack: a stable sort, ties in the given order.
        rows = sorted([(abs(d - e.reach_m), d, e) for e, d in measured], key=_SLACK)
        fences = [e for _, _, e in rows]
        held = [(e.reach_m - d, e) for _, d, e in rows if d <= e.reach_m]
        return cls(
            *_packed(fences),
            fences,
            array("d", [slack for slack, _, _ in rows]),
            array("d", [d for _, d, _ in rows]),
            {e.store_id: i for i, e in enumerate(fences)},
            array("d", [slack for slack, _ in held]),
            [e for _, e in held],
        )

    def containing(
        self, lat: float, lon: float, moved_m: float
    ) -> list[tuple[FenceEntry, float | None]]:
        """``FenceIndex.containing`` for a point ``moved_m`` (great circle) from the
        gathering point; the distance is None for fences certain to hold it."""
        sure = moved_m + SURE_MARGIN_M
        measured: list[tuple[FenceEntry, float]] = []
        unsure = bisect_right(self.slacks, sure)
        if unsure:
            rows = zip(
                self.lats[:unsure], self.lons[:unsure], self.reaches[:unsure],
                self.fences[:unsure], strict=True,
            )  # fmt: skip
            _holding(rows, lat, lon, 0.0, measured)
        # Built per lookup rather than kept: a few hundred bytes less per cached device.
        held: list[tuple[FenceEntry, float | None]] = [
            (entry, None) for entry in self.held[bisect_right(self.held_slacks, sure) :]
        ]
        return measured + held

    def centre_m(self, entry: FenceEntry) -> float | None:
        """Metres from the gathering point to the fence's centre; None if not gathered."""
        position = self.positions.get(entry.store_id)
        return None if position is None else self.centres[position]


class FenceIndex:
    def __init__(self) -> None:
        self._by_id: dict[str, FenceEntry] = {}
        self._beacons: dict[BeaconKey, tuple[FenceEntry, str]] = {}
        self._sizes = [_Layer(2 * limit, limit) for limit in SIZE_CLASSES_M]
        self._near = [_Layer(cell, largest) for largest, cell in NEAR_CLASSES_M]
        self._active: tuple[_Layer, ...] = ()
        self.generation = next(_GENERATIONS)
        """Changes on every edit, and differs between indexes: a cached answer is only good
        for the index and generation it came from."""

    def __len__(self) -> int:
        return len(self._by_id)

    # --- edits ----------------------------------------------------------------------------

    def put(self, entry: FenceEntry) -> None:
        """Add or replace the store ``entry.store_id``."""
        if entry.store_id in self._by_id:
            self.remove(entry.store_id)
        layer = self._sizes[_size_class(entry.reach_m)]
        layer.add(entry, layer.grid.circle_cells(entry.lat, entry.lon, entry.reach_m))
        near = self._near_layer(entry.reach_m)
        near.add(entry, (near.grid.key(entry.lat, entry.lon),))
        for uuid, major, minor, zone in entry.beacons:
            self._beacons[(uuid, major, minor)] = (entry, zone)
        self._by_id[entry.store_id] = entry
        self.generation = next(_GENERATIONS)
        if layer.count == 1:
            self._refresh_active()

    def put_record(self, record: StoreRecord) -> bool:
        """Index a stored record; False (and a log line) when it holds no usable fence."""
        try:
            entry = entry_from_record(record)
        except ValueError as exc:
            self.remove(record.store_id)
            log.warning("store not indexed", extra={"store_id": record.store_id, "why": str(exc)})
            return False
        self.put(entry)
        return True

    def remove(self, store_id: str) -> None:
        entry = self._by_id.pop(store_id, None)
        if entry is None:
            return
        self.generation = next(_GENERATIONS)
        layer = self._sizes[_size_class(entry.reach_m)]
        layer.remove(entry, layer.grid.circle_cells(entry.lat, entry.lon, entry.reach_m))
        near = self._near_layer(entry.reach_m)
        near.remove(entry, (near.grid.key(entry.lat, entry.lon),))
        for uuid, major, minor, _ in entry.beacons:
            key = (uuid, major, minor)
            held = self._beacons.get(key)
            if held is not None and held[0] is entry:
                del self._beacons[key]
        if layer.count == 0:
            self._refresh_active()

    def _near_layer(self, reach_m: float) -> _Layer:
        if reach_m <= NEAR_CLASSES_M[0][0]:
            return self._near[0]
        return self._near[1] if reach_m <= NEAR_CLASSES_M[1][0] else self._near[2]

    def _refresh_active(self) -> None:
        self._active = tuple(layer for layer in self._sizes if layer.count)

    # --- lookups --------------------------------------------------------------------------

    def get(self, store_id: str) -> FenceEntry | None:
        return self._by_id.get(store_id)

    def beacon(self, uuid: str, major: int, minor: int) -> tuple[FenceEntry, str] | None:
        """The store and zone of a beacon (uuid in lower case)."""
        return self._beacons.get((uuid, major, minor))

    def farthest_m(self, entry: FenceEntry) -> float | None:
        """The index keeps no previous point to bound distances from (``DeviceFences`` does)."""
        return None

    def containing(self, lat: float, lon: float) -> list[tuple[FenceEntry, float]]:
        """(fence, metres from its centre) for every fence whose bounding circle holds the
        point: the engine's question, asked for every fix."""
        found: list[tuple[FenceEntry, float]] = []
        for layer in self._active:
            rows = layer.rows(layer.grid.key(lat, lon), lat, layer.reach_deg)
            if rows is not None:
                _holding(rows, lat, lon, 0.0, found)
        return found

    def around(self, lat: float, lon: float, margin_m: float) -> FenceSet:
        """Every fence whose bounding circle comes within ``margin_m`` of the point: a
        superset of ``containing`` for any point within ``margin_m`` of this one (the
        fence's circle then reaches a cell of the margin's circle, all of which are read)."""
        found: list[tuple[FenceEntry, float]] = []
        margin_deg = margin_m / M_PER_DEG
        for layer in self._active:
            for key in layer.grid.circle_cells(lat, lon, margin_m):
                rows = layer.rows(key, lat, layer.reach_deg + margin_deg)
                if rows is not None:
                    _holding(rows, lat, lon, margin_m, found)
        # A fence is listed in every cell its circle touches: each once.  The set bounds
        # distances by these, so none may read long by more than SURE_MARGIN_M: a fence
        # that may be gathered from farther than 2 km is measured again on the great circle.
        planar_reach = _PLANAR_WITHIN_MM_M - margin_m
        return FenceSet.of(
            {
                e.store_id: (
                    e,
                    d if e.reach_m <= planar_reach else haversine_m(lat, lon, e.lat, e.lon),
                )
                for e, d in found
            }.values()
        )

    def near(
        self, lat: float, lon: float, radius_m: float, allows: Callable[[str], bool]
    ) -> list[tuple[float, FenceEntry]]:
        """(edge distance, fence) for allowed fences whose edge is within ``radius_m``
        (0 when the point is inside the bounding circle); unordered."""
        found: list[tuple[float, FenceEntry]] = []
        for (largest, _), layer in zip(NEAR_CLASSES_M, self._near, strict=True):
            if not layer.count:
                continue
            for key in layer.grid.circle_cells(lat, lon, radius_m + largest):
                for entry in layer.cells.get(key, ()):
                    if not allows(entry.issuer_id):
                        continue
                    edge = haversine_m(lat, lon, entry.lat, entry.lon) - entry.reach_m
                    if edge <= radius_m:
                        found.append((max(edge, 0.0), entry))
        return found

    def entries(self) -> Iterable[FenceEntry]:
        return self._by_id.values()
