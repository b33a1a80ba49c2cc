"""Synthetic stores for the presence benchmark: a dense city and a country.

- city: 100,000 stores in Paris, two thirds in a dense core (Gaussian, sigma 2.5 km) and the
  rest spread over a 24 km square: up to ~1,500 stores per km^2 in the centre.
- country: 1,000,000 stores over metropolitan France around 3,000 towns whose sizes follow
  Zipf's law (a few cities hold most stores, like real retail); a town's stores spread so
  that its centre holds 50 (a village) to 300 (the largest city) stores per km^2.

Fences follow the place, as partners draw them: in the city 90 % circles of 25-80 m, 8.5 %
of 80-200 m, 1 % of 200-500 m (stations, malls), 0.5 % polygons (rectangles of 40-200 m a
side); in the country 85 % of 30-120 m, 12.5 % of 120-300 m, 2 % of 300-800 m
(hypermarkets), 0.5 % polygons of 40-300 m. 5 % of stores carry two beacons. Everything is
derived from a seed, so every run (and the PostGIS side) sees the same stores.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

from issuers.stores.models import Beacon, GeoJsonPolygon, StoreRecord
from kernel.ids import new_id

M_PER_DEG = 111_195.0
ISSUERS = 200


@dataclass(frozen=True)
class Region:
    name: str
    count: int
    seed: int


CITY = Region("city", 100_000, 1)
COUNTRY = Region("country", 1_000_000, 2)
PARIS = (48.8566, 2.3522)
FRANCE = (43.0, 50.5, -1.5, 7.5)  # south, north, west, east


def _issuers(rng: random.Random) -> list[tuple[str, str]]:
    """(issuer id, its beacon uuid)."""
    return [
        (new_id("iss"), f"{rng.getrandbits(32):08x}-0000-4000-8000-{rng.getrandbits(48):012x}")
        for _ in range(ISSUERS)
    ]


def _city_point(rng: random.Random) -> tuple[float, float]:
    if rng.random() < 2 / 3:
        east, north = rng.gauss(0, 2500), rng.gauss(0, 2500)
    else:
        east, north = rng.uniform(-12_000, 12_000), rng.uniform(-12_000, 12_000)
    lat = PARIS[0] + north / M_PER_DEG
    return lat, PARIS[1] + east / (M_PER_DEG * math.cos(math.radians(lat)))


class _Towns:
    def __init__(self, rng: random.Random, count: int = 3000) -> None:
        south, north, west, east = FRANCE
        self.centres = [(rng.uniform(south, north), rng.uniform(west, east)) for _ in range(count)]
        weights = [1 / (rank + 1) for rank in range(count)]
        total = sum(weights)
        self.cumulative = list(_running(w / total for w in weights))
        share = [w / total * 1_000_000 for w in weights]  # stores per town at 1M
        density_km2 = [50 + 250 * math.sqrt(w / weights[0]) for w in weights]
        self.spread_m = [
            1000 * math.sqrt(n / (2 * math.pi * d)) for n, d in zip(share, density_km2, strict=True)
        ]

    def point(self, rng: random.Random) -> tuple[float, float]:
        town = _bisect(self.cumulative, rng.random())
        lat0, lon0 = self.centres[town]
        spread = self.spread_m[town]
        lat = lat0 + rng.gauss(0, spread) / M_PER_DEG
        return lat, lon0 + rng.gauss(0, spread) / (M_PER_DEG * math.cos(math.radians(lat)))


def _running(values: Iterator[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def _bisect(cumulative: list[float], x: float) -> int:
    lo, hi = 0, len(cumulative) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _rectangle(lat: float, lon: float, rng: random.Random, half_max: float) -> GeoJsonPolygon:
    half_e, half_n = rng.uniform(20, half_max), rng.uniform(20, half_max)
    dlat = half_n / M_PER_DEG
    dlon = half_e / (M_PER_DEG * math.cos(math.radians(lat)))
    ring = [
        [lon - dlon, lat - dlat],
        [lon + dlon, lat - dlat],
        [lon + dlon, lat + dlat],
        [lon - dlon, lat + dlat],
        [lon - dlon, lat - dlat],
    ]
    return GeoJsonPolygon(type="Polygon", coordinates=[ring])


_CITY_FENCES = ((0.90, 25, 80), (0.985, 80, 200), (0.995, 200, 500))
_COUNTRY_FENCES = ((0.85, 30, 120), (0.975, 120, 300), (0.995, 300, 800))


def _fence(rng: random.Random, city: bool) -> tuple[float | None, bool]:
    """(radius, is_polygon)."""
    roll = rng.random()
    for upto, smallest, largest in _CITY_FENCES if city else _COUNTRY_FENCES:
        if roll < upto:
            return rng.uniform(smallest, largest), False
    return None, True


def stores(region: Region, batch: int = 1000) -> Iterator[tuple[str, list[StoreRecord]]]:
    """(issuer id, records) batches; the same seed gives the same stores."""
    rng = random.Random(region.seed)
    issuers = _issuers(rng)
    towns = _Towns(rng) if region.name == COUNTRY.name else None
    now = time.time()
    pending: dict[int, list[StoreRecord]] = {}
    for i in range(region.count):
        lat, lon = _city_point(rng) if towns is None else towns.point(rng)
        lat = max(-85.0, min(85.0, lat))
        owner = rng.randrange(ISSUERS)
        issuer_id, uuid = issuers[owner]
        radius, is_polygon = _fence(rng, towns is None)
        beacons = []
        if rng.random() < 0.05:
            beacons = [
                Beacon(uuid=uuid, major=i // 65536, minor=i % 65536, zone="entrance"),
                Beacon(uuid=uuid, major=1000 + i // 65536, minor=i % 65536, zone="checkout"),
            ]
        record = StoreRecord(
            store_id=new_id("sto"),
            issuer_id=issuer_id,
            name=f"Store {i}",
            lat=lat,
            lon=lon,
            timezone="Europe/Paris",
            created_at=now + i * 1e-6,
            updated_at=now,
            radius_m=radius,
            polygon=_rectangle(lat, lon, rng, 100 if towns is None else 150)
            if is_polygon
            else None,
            beacons=beacons,
        )
        group = pending.setdefault(owner, [])
        group.append(record)
        if len(group) >= batch:
            yield issuer_id, pending.pop(owner)
    for owner, group in pending.items():
        yield issuers[owner][0], group
