"""Presence through the HTTP API: partners with stores, users with consent, fixes by metres."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, cast

import redis
from litestar import Litestar
from litestar.testing import TestClient

from tests.conftest import ADMIN, bearer
from tests.geofence.fences import PARIS, offset

Client = TestClient[Litestar]
Headers = dict[str, str]
Json = dict[str, Any]


def stamp(seconds_ago: float) -> str:
    """RFC 3339 time ``seconds_ago`` before now."""
    return datetime.fromtimestamp(time.time() - seconds_ago, UTC).isoformat()


def new_partner(client: Client, name: str = "Corner Shop") -> tuple[str, Headers]:
    response = client.post("/v1/admin/issuers", json={"name": name}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()["issuer"]["issuer_id"], bearer(response.json()["api_key"])


def new_store(
    client: Client, partner: Headers, east_m: float = 0.0, north_m: float = 0.0, **fields: Any
) -> Json:
    lat, lon = offset(*PARIS, east_m, north_m)
    body = {"name": "Shop", "lat": lat, "lon": lon, "timezone": "Europe/Paris", "radius_m": 50}
    response = client.post("/v1/partner/stores", json={**body, **fields}, headers=partner)
    assert response.status_code == 201, response.text
    store: Json = response.json()
    wait_until_indexed(client, store["id"])
    return store


def wait_until_indexed(client: Client, store_id: str, present: bool = True) -> float:
    """Seconds until the app's fence index (kept by its follower task) shows the change."""
    index = client.app.state.services.fence_index
    started = time.monotonic()
    while (index.index.get(store_id) is not None) != present:
        assert time.monotonic() - started < 5, "the fence index did not pick up the change"
        time.sleep(0.01)
    return time.monotonic() - started


def new_user(client: Client, *, location: bool = True, discovery: bool = True) -> Headers:
    response = client.post("/v1/users", json={})
    assert response.status_code == 201, response.text
    headers = bearer(response.json()["token"])
    consent = {"location": location, "discovery": discovery}
    assert client.put("/v1/me/consent", json=consent, headers=headers).status_code == 200
    return headers


def fix_body(
    east_m: float, north_m: float = 0.0, ago_s: float = 0.0, accuracy_m: float = 10
) -> Json:
    lat, lon = offset(*PARIS, east_m, north_m)
    return {"lat": lat, "lon": lon, "accuracy_m": accuracy_m, "recorded_at": stamp(ago_s)}


def locate(client: Client, user: Headers, body: Json) -> Json:
    response = client.post("/v1/me/location", json=body, headers=user)
    assert response.status_code == 200, response.text
    result: Json = response.json()
    return result


def kinds(result: Json) -> list[tuple[str, str]]:
    return [(t["type"], t["store_id"]) for t in result["transitions"]]


def wait_until_index_holds(client: Client, count: int) -> None:
    index = client.app.state.services.fence_index
    started = time.monotonic()
    while len(index.index) < count:
        assert time.monotonic() - started < 5, "the fence index did not pick up the import"
        time.sleep(0.01)


def transitions(redis_client: redis.Redis, key_prefix: str) -> list[dict[bytes, bytes]]:
    """Every entry of the transitions stream, oldest first."""
    rows = redis_client.xrange(f"{key_prefix}:presence:{{transitions}}")
    return [fields for _, fields in cast(list[tuple[bytes, dict[bytes, bytes]]], rows)]
