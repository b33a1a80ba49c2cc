"""The dwell sweep fires dwell for visits whose phone went quiet, exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import cast

import httpx
import pytest
import redis
from litestar import Litestar
from redis.asyncio import Redis

from geofence.store import PresenceStore
from geofence.sweep import DwellSweeper, VisitRetention
from kernel.clock import SystemClock
from kernel.direct_redis import DirectRedis
from kernel.keys import KeySpace
from tests.conftest import ADMIN, bearer
from tests.geofence.fences import PARIS
from tests.geofence.presence_api import Headers, Json, fix_body, transitions

AClient = httpx.AsyncClient


@pytest.fixture
async def sweeper(redis_url: str, key_prefix: str) -> AsyncIterator[DwellSweeper]:
    """A sweeper of its own, on this test's event loop (as a separate worker would be)."""
    client = Redis.from_url(redis_url)
    direct = DirectRedis(client, name=f"{key_prefix}-direct")
    yield DwellSweeper(PresenceStore(client, direct, KeySpace(key_prefix)), SystemClock())
    await direct.aclose()
    await client.aclose()


async def setup_store(aclient: AClient, app: Litestar, dwell_s: int = 300) -> tuple[Json, Headers]:
    response = await aclient.post("/v1/admin/issuers", json={"name": "Shop"}, headers=ADMIN)
    partner = bearer(response.json()["api_key"])
    body = {"name": "S", "lat": PARIS[0], "lon": PARIS[1], "timezone": "Europe/Paris"}
    response = await aclient.post(
        "/v1/partner/stores", json={**body, "radius_m": 50, "dwell_s": dwell_s}, headers=partner
    )
    assert response.status_code == 201, response.text
    store: Json = response.json()
    index = app.state.services.fence_index
    for _ in range(500):
        if index.index.get(store["id"]) is not None:
            break
        await asyncio.sleep(0.01)
    user = bearer((await aclient.post("/v1/users", json={})).json()["token"])
    consent = {"location": True, "discovery": True}
    assert (await aclient.put("/v1/me/consent", json=consent, headers=user)).status_code == 200
    return store, user


async def locate(aclient: AClient, user: Headers, body: Json) -> list[str]:
    response = await aclient.post("/v1/me/location", json=body, headers=user)
    assert response.status_code == 200, response.text
    return [t["type"] for t in response.json()["transitions"]]


stream = transitions


async def test_a_quiet_phone_gets_its_dwell_from_the_sweep_once(
    aclient: AClient,
    app: Litestar,
    sweeper: DwellSweeper,
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    store, user = await setup_store(aclient, app)
    assert await locate(aclient, user, fix_body(0, ago_s=20 * 60)) == ["enter"]
    # Twice, concurrently, as two workers would: the dwell still fires once.
    fired = await asyncio.gather(sweeper.sweep_once(), sweeper.sweep_once())
    assert sum(fired) == 1
    assert await sweeper.sweep_once() == 0
    entries = stream(redis_client, key_prefix)
    assert [e[b"type"] for e in entries] == [b"enter", b"dwell"]
    dwell = entries[1]
    assert dwell[b"source"] == b"timer"
    assert dwell[b"store_id"].decode() == store["id"]
    assert dwell[b"visit_id"] == entries[0][b"visit_id"]
    # A later fix inside does not dwell again; the visit records that it dwelled.
    assert await locate(aclient, user, fix_body(3, ago_s=60)) == []
    visits = (await aclient.get("/v1/me/visits", headers=user)).json()["items"]
    assert visits[0]["dwelled"] is True


async def test_no_dwell_for_a_visit_that_ended_before_the_threshold(
    aclient: AClient,
    app: Litestar,
    sweeper: DwellSweeper,
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    _, user = await setup_store(aclient, app)
    assert await locate(aclient, user, fix_body(0, ago_s=30 * 60)) == ["enter"]
    assert await locate(aclient, user, fix_body(800, ago_s=29 * 60)) == ["exit"]
    assert await sweeper.sweep_once() == 0
    assert [e[b"type"] for e in stream(redis_client, key_prefix)] == [b"enter", b"exit"]
    assert redis_client.zcard(f"{key_prefix}:presence:{{dwell}}") == 0


async def test_a_timer_not_due_yet_waits(
    aclient: AClient, app: Litestar, sweeper: DwellSweeper
) -> None:
    _, user = await setup_store(aclient, app, dwell_s=3600)
    assert await locate(aclient, user, fix_body(0, ago_s=60)) == ["enter"]
    assert await sweeper.sweep_once() == 0


async def test_dwell_from_evidence_and_the_sweep_never_both_fire(
    aclient: AClient,
    app: Litestar,
    sweeper: DwellSweeper,
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    _, user = await setup_store(aclient, app)
    assert await locate(aclient, user, fix_body(0, ago_s=20 * 60)) == ["enter"]
    results = await asyncio.gather(
        locate(aclient, user, fix_body(2, ago_s=10 * 60)), sweeper.sweep_once()
    )
    types = [e[b"type"] for e in stream(redis_client, key_prefix)]
    assert types == [b"enter", b"dwell"], results


@pytest.fixture
async def retention(redis_url: str, key_prefix: str) -> AsyncIterator[tuple[VisitRetention, Redis]]:
    client = Redis.from_url(redis_url)
    direct = DirectRedis(client, name=f"{key_prefix}-direct")
    store = PresenceStore(client, direct, KeySpace(key_prefix))
    yield VisitRetention(store, SystemClock()), client
    await direct.aclose()
    await client.aclose()


async def test_visits_older_than_90_days_are_deleted_even_without_new_activity(
    aclient: AClient, app: Litestar, retention: tuple[VisitRetention, Redis], key_prefix: str
) -> None:
    sweeper, client = retention
    _, user = await setup_store(aclient, app)
    assert await locate(aclient, user, fix_body(0, ago_s=30 * 60)) == ["enter"]
    assert await locate(aclient, user, fix_body(800, ago_s=29 * 60)) == ["exit"]
    user_id = (await aclient.get("/v1/me", headers=user)).json()["user_id"]
    visits = f"{key_prefix}:presence:{{{user_id}}}:visits"
    schedule = f"{key_prefix}:presence:{{retention}}"
    [(_, due)] = cast(
        list[tuple[bytes, float]], await client.zrange(schedule, 0, -1, withscores=True)
    )
    assert due == pytest.approx(time.time() - 29 * 60 + 90 * 86400, abs=60)
    assert await sweeper.sweep_once() == 0  # not due yet
    # Pretend 90 days passed: make the visit and its schedule that old.
    [raw] = cast(list[bytes], await client.zrange(visits, 0, -1))
    old = time.time() - 91 * 86400
    await client.zadd(visits, {raw: old})
    await client.zadd(schedule, {user_id: old + 90 * 86400})
    assert await sweeper.sweep_once() == 1
    assert await client.zcard(visits) == 0
    assert await client.zcard(schedule) == 0
    assert (await aclient.get("/v1/me/visits", headers=user)).json()["items"] == []
