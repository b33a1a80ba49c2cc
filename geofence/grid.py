"""A latitude/longitude grid whose cells are at least ``cell_m`` wide everywhere on Earth.

Rows are fixed bands of latitude. Each row has its own number of columns, chosen so that a
column is at least ``cell_m`` wide at the row's poleward edge: cells do not shrink towards
the poles, and a row near a pole has few columns (one at the pole itself). Column numbers
wrap modulo the row's count, so a range crossing the antimeridian is just a range.

``circle_cells`` lists every cell a circle can touch, exactly: a point within ``r`` metres
(great circle) of the centre is in a listed cell. It bounds the longitude span with the
haversine inequality ``sin(d/2R) >= cos(lat) * sin(dlon/2)`` at the circle's most poleward
latitude, so no approximation (and no fudge factor) is involved.
"""

from __future__ import annotations

import math
from typing import Final

from geofence.geometry import EARTH_RADIUS_M

M_PER_DEG: Final = EARTH_RADIUS_M * math.pi / 180
_COL_BITS: Final = 22
_EPSILON_M: Final = 0.01


class Grid:
    """Cell keys (ints) for one cell size."""

    __slots__ = ("_columns", "_dlat", "_per_deg", "_rows", "cell_m")

    def __init__(self, cell_m: float) -> None:
        if cell_m < 10:
            raise ValueError("cells narrower than 10 m would need too many columns")
        self.cell_m = cell_m
        self._dlat = cell_m / M_PER_DEG
        self._per_deg = 1.0 / self._dlat
        self._rows = math.ceil(180.0 / self._dlat)
        self._columns: dict[int, int] = {}

    def row_of(self, lat: float) -> int:
        row = int((lat + 90.0) * self._per_deg)
        return 0 if row < 0 else min(row, self._rows - 1)

    def columns(self, row: int) -> int:
        """Columns of a row (memoised: every lookup needs it, and rows in use are few)."""
        n = self._columns.get(row)
        if n is None:
            south = row * self._dlat - 90.0
            edge = max(abs(south), abs(south + self._dlat))
            width = 0.0 if edge >= 90.0 else 360.0 * M_PER_DEG * math.cos(math.radians(edge))
            n = self._columns[row] = max(1, int(width / self.cell_m))
        return n

    def key(self, lat: float, lon: float) -> int:
        """The cell holding the point."""
        row = self.row_of(lat)
        n = self._columns.get(row) or self.columns(row)
        return (row << _COL_BITS) | (int((lon + 180.0) / 360.0 * n) % n)

    def circle_cells(self, lat: float, lon: float, radius_m: float) -> list[int]:
        """Every cell a point within ``radius_m`` of (lat, lon) can be in (no repeats)."""
        reach = radius_m + _EPSILON_M
        dlat = reach / M_PER_DEG
        south, north = max(lat - dlat, -90.0), min(lat + dlat, 90.0)
        half = _half_span_deg(reach, max(-south, north))
        west, east = (lon - half + 180.0) / 360.0, (lon + half + 180.0) / 360.0
        cells: list[int] = []
        for row in range(self.row_of(south), self.row_of(north) + 1):
            n = self._columns.get(row) or self.columns(row)
            base = row << _COL_BITS
            first, last = math.floor(west * n), math.floor(east * n)
            if half < 180.0 and last - first < n:
                if first >= 0 and last < n:
                    cells += [base | col for col in range(first, last + 1)]
                else:
                    cells += [base | (col % n) for col in range(first, last + 1)]
            else:
                cells += [base | col for col in range(n)]
        return cells


def _half_span_deg(reach_m: float, poleward_lat: float) -> float:
    """Half the longitude span of a circle, from the haversine bound at its poleward edge."""
    if poleward_lat >= 90.0:
        return 180.0
    ratio = math.sin(reach_m / (2 * EARTH_RADIUS_M)) / math.cos(math.radians(poleward_lat))
    if ratio >= 1.0:
        return 180.0
    return math.degrees(2 * math.asin(ratio))
