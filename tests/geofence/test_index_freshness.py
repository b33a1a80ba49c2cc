"""Every worker's fence index follows store edits made through the partner API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from geofence.errors import PresenceIndexLoading
from geofence.follower import LiveIndex
from geofence.models import LocationReport
from geofence.service import PresenceService
from geofence.store import PresenceStore
from issuers.stores.models import CreateStore
from issuers.stores.service import StoreService
from issuers.stores.store import StoreStore
from kernel.clock import SystemClock
from kernel.direct_redis import DirectRedis
from kernel.keys import KeySpace
from tests.geofence.fences import PARIS, offset
from tests.geofence.presence_api import (
    Client,
    fix_body,
    kinds,
    locate,
    new_partner,
    new_user,
    wait_until_indexed,
)
from wallet_api.services import GeometryFences


def test_a_new_store_edit_and_delete_reach_the_engine_within_a_second(client: Client) -> None:
    _, partner = new_partner(client)
    user = new_user(client)
    locate(client, user, fix_body(2000, ago_s=300))
    response = client.post(
        "/v1/partner/stores",
        json={"name": "New", "lat": PARIS[0], "lon": PARIS[1], "timezone": "Europe/Paris",
              "radius_m": 60},
        headers=partner,
    )  # fmt: skip
    store_id = response.json()["id"]
    assert wait_until_indexed(client, store_id) < 1.0
    assert kinds(locate(client, user, fix_body(0, ago_s=200))) == [("enter", store_id)]

    lat, lon = offset(*PARIS, 2000, 0)
    moved = client.patch(
        f"/v1/partner/stores/{store_id}", json={"lat": lat, "lon": lon}, headers=partner
    )
    assert moved.status_code == 200, moved.text
    live = client.app.state.services.fence_index
    started = time.monotonic()
    while (entry := live.index.get(store_id)) is None or entry.lon != pytest.approx(lon):
        assert time.monotonic() - started < 1.0, "the move did not reach the index in 1 s"
        time.sleep(0.01)
    # The visit ends where the store used to be, and starts again where it now is.
    assert kinds(locate(client, user, fix_body(0, ago_s=150))) == [("exit", store_id)]
    assert kinds(locate(client, user, fix_body(2000, ago_s=20))) == [("enter", store_id)]

    assert client.delete(f"/v1/partner/stores/{store_id}", headers=partner).status_code == 204
    assert wait_until_indexed(client, store_id, present=False) < 1.0


@pytest.fixture
async def stores(redis_url: str, key_prefix: str) -> AsyncIterator[tuple[StoreService, StoreStore]]:
    client = Redis.from_url(redis_url)
    store = StoreStore(client, KeySpace(key_prefix))
    yield StoreService(store, SystemClock(), GeometryFences()), store
    await client.aclose()


async def test_a_follower_that_missed_trimmed_changes_reloads_everything(
    stores: tuple[StoreService, StoreStore], redis_url: str, key_prefix: str
) -> None:
    service, feed = stores
    live = LiveIndex(feed)
    issuer = "iss_" + "a" * 25

    async def add(i: int) -> str:
        lat, lon = offset(*PARIS, 500 * i, 0)
        data = CreateStore(name=f"S{i}", lat=lat, lon=lon, timezone="Europe/Paris", radius_m=50)
        return (await service.create(issuer, data)).id

    first = await add(0)
    await live.load()
    assert live.index.get(first) is not None
    later = [await add(i) for i in range(1, 4)]
    async with Redis.from_url(redis_url) as raw:
        # The stream keeps the newest changes only: drop all but the last one.
        await raw.xtrim(f"{key_prefix}:stores:{{changes}}", maxlen=1, approximate=False)
    await live.poll_once()
    assert all(live.index.get(store_id) is not None for store_id in [first, *later])
    assert len(live.index) == 4


async def test_presence_is_unavailable_until_the_stores_are_loaded() -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0")
    keys = KeySpace("unused")
    live = LiveIndex(StoreStore(unreachable, keys))
    assert not await live.try_load()
    store = PresenceStore(unreachable, DirectRedis(unreachable, name="unused"), keys)
    presence = PresenceService(store, live, NoCards(), SystemClock())
    report = LocationReport(lat=PARIS[0], lon=PARIS[1], accuracy_m=5, recorded_at=datetime.now(UTC))
    with pytest.raises(PresenceIndexLoading):
        await presence.report_location("usr_x", report)
    await unreachable.aclose()


class NoCards:
    async def issuer_ids_of(self, user_id: str) -> set[str]:
        return set()
