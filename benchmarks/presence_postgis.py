"""The same containment query on PostgreSQL + PostGIS, for comparison.

Stores go into a table with a GiST-indexed geography point (the fence centre), the circle
radius, and the polygon for polygon stores. The query is the fast one: an index-using
``ST_DWithin`` prefilter at the largest fence reach, then each fence's own test (its radius,
or ``ST_Covers`` for polygons), as a prepared statement on one connection.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from geofence.index import FenceEntry

SCHEMA = "presence_bench"
DSN = os.environ.get("WALLET_BENCH_POSTGRES", "host=127.0.0.1 port=5432 dbname=test user=postgres")

_QUERY = f"""
SELECT store_id FROM {SCHEMA}.stores
WHERE ST_DWithin(centre, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography,
                 %(reach)s, false)
  AND CASE WHEN fence IS NULL
      THEN ST_DWithin(centre, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography,
                      radius, false)
      ELSE ST_Covers(fence, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography)
  END
"""


@dataclass(frozen=True)
class PostgisRun:
    queries_per_s: float
    p50_ms: float
    p99_ms: float
    load_s: float
    matches: int


def unavailable() -> str | None:
    """Why the PostGIS column cannot be measured here, or None."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    try:
        with psycopg.connect(DSN, connect_timeout=3) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (
            f"PostGIS is not available at {DSN} ({first}); "
            "install it with apt-get install postgresql-15-postgis-3"
        )
    return None


def _polygon_wkt(entry: FenceEntry) -> str | None:
    if entry.polygon is None:
        return None
    rings = ", ".join(
        "(" + ", ".join(f"{lon} {lat}" for lon, lat in ring) + ")" for ring in entry.polygon.rings
    )
    return f"SRID=4326;POLYGON({rings})"


def load(entries: Iterable[FenceEntry]) -> float:
    """(Re)create the table from the index entries; returns seconds spent."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
        conn.execute(
            f"CREATE TABLE {SCHEMA}.stores (store_id text PRIMARY KEY, centre geography(Point)"
            " NOT NULL, radius double precision NOT NULL, fence geography(Polygon))"
        )
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY {SCHEMA}.stores (store_id, centre, radius, fence) FROM STDIN") as copy,
        ):
            for e in entries:
                copy.write_row(
                    (e.store_id, f"SRID=4326;POINT({e.lon} {e.lat})", e.reach_m, _polygon_wkt(e))
                )
        conn.execute(f"CREATE INDEX ON {SCHEMA}.stores USING gist (centre)")
        conn.execute(f"ANALYZE {SCHEMA}.stores")
    return time.perf_counter() - started


def query(points: Sequence[tuple[float, float]], max_reach_m: float, load_s: float) -> PostgisRun:
    import psycopg

    latencies: list[float] = []
    matches = 0
    with psycopg.connect(DSN, autocommit=True) as conn, conn.cursor() as cur:
        for lat, lon in points[:200]:  # warm the plan cache and the buffers
            cur.execute(_QUERY, {"lat": lat, "lon": lon, "reach": max_reach_m}, prepare=True)
            cur.fetchall()
        started = time.perf_counter()
        for lat, lon in points:
            t0 = time.perf_counter()
            cur.execute(_QUERY, {"lat": lat, "lon": lon, "reach": max_reach_m}, prepare=True)
            matches += len(cur.fetchall())
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
    latencies.sort()
    return PostgisRun(
        queries_per_s=len(points) / elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
        load_s=load_s,
        matches=matches,
    )


def drop() -> None:
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
