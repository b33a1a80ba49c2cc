"""Issue 5's figures: the presence engine against PostGIS, and POST /v1/me/location over HTTP.

    .venv/bin/python -m benchmarks.presence [--sizes 100000 1000000] [--queries 20000]
        [--seconds 10] [--rounds 3] [--no-http] [--no-postgis]

For each size (100,000 stores = a dense city, 1,000,000 = a country; benchmarks/presence_data)
it loads the stores into Redis through the store layer's bulk path under its own key prefix,
then prints:

- Redis memory per store (used_memory delta) and, from a fresh process, the fence index's
  load time and memory per store per worker process (RSS delta);
- (a) engine evaluations/s and p50/p99 for one location update, in memory (the index lookup,
  the accuracy-aware decision and the state machine), and the containment lookup alone;
  beside it, on one connection each, the same containment query on PostGIS (GiST,
  ST_DWithin prefilter at the largest reach, then each fence's own test) and Redis
  GEOSEARCH; and a full update through PresenceService with its Redis read and write-back;
- (b) POST /v1/me/location requests/s against the production server (wrk, 1,000 users
  walking into stores), as a ratio to the one-Redis-round-trip baseline of the same run;
  rounds alternate the baseline and the scenarios, and the medians are compared.

Every key it wrote is deleted at the end, and the PostGIS schema dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from redis.asyncio import Redis

from benchmarks import presence_postgis as postgis
from benchmarks.harness import delete_prefix, redis_url
from benchmarks.presence_data import CITY, COUNTRY, Region, stores
from benchmarks.presence_http import http_figures
from geofence.engine import PresenceEngine
from geofence.follower import LiveIndex
from geofence.index import FenceEntry, FenceIndex
from geofence.models import ConsentRecord, ConsentUpdate, LocationReport
from geofence.regions import region_set
from geofence.service import PresenceService
from geofence.state import Everyone, FixEvidence, PresenceState
from geofence.store import PresenceStore
from issuers.stores.models import StoreRecord
from issuers.stores.store import StoreStore
from kernel.clock import SystemClock
from kernel.direct_redis import DirectRedis
from kernel.keys import KeySpace

Point = tuple[float, float]
SMALL_PREFILTER_M = 150.0
"""PostGIS's speed follows its prefilter radius: this row shows it as if no fence were
larger than most are, an upper bound for PostGIS on the same points."""


@dataclass(frozen=True)
class Timing:
    per_s: float
    p50_ms: float
    p99_ms: float

    def row(self, name: str) -> str:
        rate = f"{self.per_s:>10,.0f}/s"
        return f"{name:<58} {rate}  p50 {self.p50_ms:7.3f} ms  p99 {self.p99_ms:7.3f} ms"


def timing(latencies: list[float], elapsed: float) -> Timing:
    ordered = sorted(latencies)
    return Timing(
        per_s=len(ordered) / elapsed,
        p50_ms=ordered[len(ordered) // 2] * 1000,
        p99_ms=ordered[int(len(ordered) * 0.99)] * 1000,
    )


# --- loading ----------------------------------------------------------------------------------


async def _write(url: str, prefix: str, region: Region) -> int:
    client = Redis.from_url(url)
    store = StoreStore(client, KeySpace(prefix))
    gate = asyncio.Semaphore(3)  # overlap building the next batch with Redis running one

    async def one(issuer_id: str, batch: list[StoreRecord]) -> int:
        async with gate:
            outcomes = await store.write(issuer_id, [(r, None) for r in batch])
        return sum(o.status == "created" for o in outcomes)

    tasks = [asyncio.create_task(one(issuer, list(batch))) for issuer, batch in stores(region)]
    written = sum(await asyncio.gather(*tasks))
    await client.aclose()
    return written


def load_stores(url: str, prefix: str, region: Region) -> None:
    with redis.Redis.from_url(url) as client:
        before = int(client.info("memory")["used_memory"])
        started = time.perf_counter()
        written = asyncio.run(_write(url, prefix, region))
        elapsed = time.perf_counter() - started
        after = int(client.info("memory")["used_memory"])
    assert written == region.count, f"wrote {written} of {region.count}"
    print(
        f"load into Redis (store layer bulk write, 1,000 stores per script): {written:,} stores "
        f"in {elapsed:.1f} s ({written / elapsed:,.0f}/s)"
    )
    print(f"Redis memory per store (used_memory delta): {(after - before) / written:,.0f} bytes")


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def _probe(url: str, prefix: str) -> None:
    """Run in a fresh process: what one worker spends loading the fence index."""
    client = Redis.from_url(url)
    live = LiveIndex(StoreStore(client, KeySpace(prefix)))
    gc.collect()
    before = _rss_bytes()
    started = time.perf_counter()
    await live.load()
    elapsed = time.perf_counter() - started
    gc.collect()
    print(json.dumps({"stores": len(live.index), "seconds": elapsed, "rss": _rss_bytes() - before}))
    await client.aclose()


async def _loaded_index(url: str, prefix: str) -> LiveIndex:
    async with Redis.from_url(url) as client:
        live = LiveIndex(StoreStore(client, KeySpace(prefix)))
        await live.load()
    return live


def index_memory(url: str, prefix: str) -> None:
    command = [sys.executable, "-m", "benchmarks.presence", "--probe-index", prefix, "--redis", url]
    probe = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    print(
        f"fence index per worker process: {probe['stores']:,} stores loaded in "
        f"{probe['seconds']:.1f} s, {probe['rss'] / probe['stores']:,.0f} bytes/store "
        f"(RSS delta {probe['rss'] / 2**20:,.0f} MiB)"
    )


# --- the engine and its rivals ----------------------------------------------------------------


def query_points(index: FenceIndex, count: int, seed: int = 5) -> list[Point]:
    """70 % near a store (within 1.5x its reach), 30 % anywhere in the stores' extent."""
    rng = random.Random(seed)
    entries = list(index.entries())
    lats = [e.lat for e in entries[:: max(1, len(entries) // 10_000)]]
    lons = [e.lon for e in entries[:: max(1, len(entries) // 10_000)]]
    points: list[Point] = []
    for _ in range(count):
        if rng.random() < 0.7:
            e = rng.choice(entries)
            distance = e.reach_m * 1.5 * math.sqrt(rng.random())
            bearing = rng.uniform(0, 2 * math.pi)
            lat = e.lat + distance * math.cos(bearing) / 111_195
            lon = e.lon + distance * math.sin(bearing) / (111_195 * math.cos(math.radians(lat)))
            points.append((lat, lon))
        else:
            points.append((rng.uniform(min(lats), max(lats)), rng.uniform(min(lons), max(lons))))
    return points


def engine_figures(index: FenceIndex, points: Sequence[Point]) -> tuple[Timing, Timing, Timing]:
    """(walking: the phone's previous fix 5 m west and 5 s earlier, as in steady use; first
    fix: no history, so every fence holding the point is entered; containment alone)."""
    engine = PresenceEngine(lambda: "vis_bench")
    everyone = Everyone()
    now = time.time()
    fresh = PresenceState(version=1, consent=ConsentRecord(location=True, discovery=True))
    before = []
    for lat, lon in points:
        west = lon - 5 / (111_195 * math.cos(math.radians(lat)))
        before.append(
            engine.locate(
                fresh, [FixEvidence(lat, west, 10.0, now - 5)], index, everyone, now
            ).state
        )
    timings = []
    for states in (before, [fresh] * len(points)):
        latencies: list[float] = []
        started = time.perf_counter()
        for (lat, lon), state in zip(points, states, strict=True):
            t0 = time.perf_counter()
            engine.locate(state, [FixEvidence(lat, lon, 10.0, now)], index, everyone, now)
            latencies.append(time.perf_counter() - t0)
        timings.append(timing(latencies, time.perf_counter() - started))
    latencies = []
    started = time.perf_counter()
    for lat, lon in points:
        t0 = time.perf_counter()
        index.containing(lat, lon)
        latencies.append(time.perf_counter() - t0)
    return timings[0], timings[1], timing(latencies, time.perf_counter() - started)


def region_figures(index: FenceIndex, points: Sequence[Point]) -> Timing:
    """GET /v1/me/regions' work for an iOS phone with discovery on (every program)."""
    latencies: list[float] = []
    started = time.perf_counter()
    for lat, lon in points:
        t0 = time.perf_counter()
        region_set(index, lat, lon, "ios", lambda issuer_id: True)
        latencies.append(time.perf_counter() - t0)
    return timing(latencies, time.perf_counter() - started)


async def geosearch_figures(
    url: str, prefix: str, index: FenceIndex, points: Sequence[Point], reach: float
) -> Timing:
    client = Redis.from_url(url)
    store = StoreStore(client, KeySpace(prefix))
    latencies: list[float] = []
    started = time.perf_counter()
    for lat, lon in points:
        t0 = time.perf_counter()
        found = await store.nearby(lat, lon, reach, 10_000)
        _ = [s for s, d in found if (e := index.get(s)) is not None and d <= e.reach_m]
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    await client.aclose()
    return timing(latencies, elapsed)


class _Everyone:
    async def issuer_ids_of(self, user_id: str) -> set[str]:
        return set()


async def service_figures(
    url: str, prefix: str, live: LiveIndex, starts: Sequence[FenceEntry], updates: int
) -> Timing:
    """Users walking east into stores, each update a full PresenceService call."""
    client = Redis.from_url(url)
    direct = DirectRedis(client, name=f"{prefix}-direct")
    service = PresenceService(
        PresenceStore(client, direct, KeySpace(prefix)), live, _Everyone(), SystemClock()
    )
    users = [f"usr_bench{secrets.token_hex(8)}" for _ in starts]
    for user in users:
        await service.update_consent(user, ConsentUpdate(location=True, discovery=True))
    base = time.time() - 600
    latencies: list[float] = []
    started = time.perf_counter()
    for i in range(updates):
        u = i % len(users)
        step = i // len(users) + 1
        e = starts[u]
        metres = step * 4.0 - e.reach_m - 40
        lon = e.lon + metres / (111_195 * math.cos(math.radians(e.lat)))
        report = LocationReport(
            lat=e.lat, lon=lon, accuracy_m=10, recorded_at=_utc(base + step * 0.05)
        )
        t0 = time.perf_counter()
        await service.report_location(users[u], report)
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    await direct.aclose()
    await client.aclose()
    return timing(latencies, elapsed)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# --- the run ----------------------------------------------------------------------------------


def run_size(url: str, region: Region, args: argparse.Namespace) -> None:
    prefix = "benchpres" + secrets.token_hex(4)
    print(f"\n=== {region.name}: {region.count:,} stores (key prefix {prefix}) ===")
    try:
        load_stores(url, prefix, region)
        index_memory(url, prefix)
        live = asyncio.run(_loaded_index(url, prefix))
        index = live.index
        points = query_points(index, args.queries)
        reach = max(e.reach_m for e in index.entries())
        engine, first, containing = engine_figures(index, points)
        print(engine.row("(a) engine, one location update (walking), in memory"))
        print(first.row("    the same, first fix (every fence holding it entered)"))
        print(containing.row("    containment lookup alone (FenceIndex.containing)"))
        geo = asyncio.run(geosearch_figures(url, prefix, index, points[:5000], reach))
        print(geo.row(f"    Redis GEOSEARCH {reach:,.0f} m + radius filter, 1 connection"))
        rng = random.Random(9)
        walkers = rng.sample(list(index.entries()), 1000)
        full = asyncio.run(service_figures(url, prefix, live, walkers[:200], 10_000))
        print(full.row("    PresenceService: read + engine + write-back, 1 connection"))
        print(
            region_figures(index, points[:2000]).row("region sync (19 nearest + bubble), in memory")
        )
        _postgis(args, index, points, reach, engine)
        if not args.no_http:
            http_figures(url, prefix, walkers, args.seconds, args.rounds)
    finally:
        delete_prefix(url, prefix)


def _postgis(
    args: argparse.Namespace,
    index: FenceIndex,
    points: Sequence[Point],
    reach: float,
    engine: Timing,
) -> None:
    why = "skipped (--no-postgis)" if args.no_postgis else postgis.unavailable()
    if why is not None:
        print(f"    PostGIS: {why}")
        return
    try:
        load_s = postgis.load(index.entries())
        run = postgis.query(points[:20_000], reach, load_s)
        small = postgis.query(points[:20_000], SMALL_PREFILTER_M, load_s)
    finally:
        postgis.drop()
    print(
        Timing(run.queries_per_s, run.p50_ms, run.p99_ms).row(
            f"    PostGIS ST_DWithin {reach:,.0f} m + own fence, 1 connection"
        )
        + f"  (table + GiST built in {run.load_s:.0f} s)"
    )
    print(
        Timing(small.queries_per_s, small.p50_ms, small.p99_ms).row(
            f"    PostGIS, prefilter {SMALL_PREFILTER_M:.0f} m (misses larger fences; reference)"
        )
    )
    ratio = engine.per_s / run.queries_per_s
    verdict = "meets" if ratio >= 5 and engine.p99_ms < 2 else "misses"
    p99 = f"{engine.p99_ms:.3f} ms"
    print(f"engine / PostGIS: {ratio:.1f}x, engine p99 {p99} ({verdict} the >= 5x, < 2 ms target)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[CITY.count, COUNTRY.count])
    parser.add_argument("--queries", type=int, default=50_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="HTTP rounds (medians)")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--no-postgis", action="store_true")
    parser.add_argument("--probe-index", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe_index:
        asyncio.run(_probe(args.redis, args.probe_index))
        return
    url = redis_url()
    for size in args.sizes:
        region = CITY if size <= CITY.count else COUNTRY
        run_size(url, Region(region.name, size, region.seed), args)


if __name__ == "__main__":
    main()
