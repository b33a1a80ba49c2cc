"""The fences around each device, kept between its fixes.

A phone's next fix is usually close to its last one: it stands in a shop, or walks a few
metres.  So instead of asking the whole index for every fix, a worker keeps, per user, the
fences whose bounding circle comes within ``NEARBY_M`` of where they were gathered; while
the user's fixes stay within ``NEARBY_M`` of that point, the fences holding a fix are among
them (``FenceIndex.around``).  Their distances from that point were measured when they
were gathered, so a fix ``moved`` metres away measures only the fences whose edge lies
within ``moved`` of it; the others cannot have changed sides (``FenceSet``).  A fix farther
away, or any edit of the index since (its ``generation``), gathers them again.  In a dense
city a phone standing in a shop then measures almost nothing per fix, and a walking one a
handful of the few dozen fences around it (docs/benchmarks.md, presence).
"""

from __future__ import annotations

from typing import Final, NamedTuple

from geofence.geometry import haversine_m
from geofence.index import SURE_MARGIN_M, FenceEntry, FenceIndex, FenceSet
from kernel.lru import LRU

NEARBY_M: Final = 50.0
"""How far a device may move before its fences are gathered again.  A larger radius is
gathered less often, and costs more to gather; the fences measured per fix are those whose
edge the phone may have crossed since, whatever the radius.  50 m beat 25 and 100 m for
walkers in the dense city (callgrind, docs/benchmarks.md)."""


class _Gathered(NamedTuple):
    lat: float
    lon: float
    generation: int
    fences: FenceSet


class NearbyCache:
    """LRU, per user, of the fences gathered around their last fixes."""

    def __init__(self, size: int) -> None:
        self._items: LRU[str, _Gathered] = LRU(size)
        self._index: FenceIndex | None = None

    def fences_for(self, index: FenceIndex, user_id: str) -> DeviceFences:
        if index is not self._index:
            # A reload swapped the index: let the replaced one (and its entries) go at once,
            # rather than one user at a time as their fixes arrive.
            self._items.clear()
            self._index = index
        return DeviceFences(index, self, user_id)

    def get(self, user_id: str) -> _Gathered | None:
        return self._items.get(user_id)

    def put(self, user_id: str, gathered: _Gathered) -> None:
        self._items.put(user_id, gathered)

    def drop(self, user_id: str) -> None:
        self._items.drop(user_id)


class DeviceFences:
    """The index as one user's evaluation sees it (a ``FenceLookup``)."""

    __slots__ = ("_cache", "_gathered", "_index", "_moved", "_user_id")

    def __init__(self, index: FenceIndex, cache: NearbyCache, user_id: str) -> None:
        self._index = index
        self._cache = cache
        self._user_id = user_id
        self._gathered: _Gathered | None = None
        self._moved = 0.0

    def get(self, store_id: str) -> FenceEntry | None:
        return self._index.get(store_id)

    def beacon(self, uuid: str, major: int, minor: int) -> tuple[FenceEntry, str] | None:
        return self._index.beacon(uuid, major, minor)

    def containing(self, lat: float, lon: float) -> list[tuple[FenceEntry, float | None]]:
        index = self._index
        gathered = self._cache.get(self._user_id)
        moved = 0.0
        if gathered is not None and gathered.generation == index.generation:
            moved = haversine_m(gathered.lat, gathered.lon, lat, lon)
        if gathered is None or gathered.generation != index.generation or moved > NEARBY_M:
            gathered = _Gathered(lat, lon, index.generation, index.around(lat, lon, NEARBY_M))
            self._cache.put(self._user_id, gathered)
            moved = 0.0
        self._gathered, self._moved = gathered, moved
        return gathered.fences.containing(lat, lon, moved)

    def farthest_m(self, entry: FenceEntry) -> float | None:
        """At most how many metres the point last asked ``containing`` is from the fence's
        centre (triangle inequality, from where the fences were gathered); None when the
        fence is not among them."""
        if self._gathered is None:
            return None
        centre_m = self._gathered.fences.centre_m(entry)
        return None if centre_m is None else centre_m + self._moved + SURE_MARGIN_M
