"""Presence over HTTP: consent, the request/response contract, validation, tenant isolation."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgspec
import pytest
import redis
from litestar.testing import TestClient

from tests.conftest import ADMIN, bearer
from tests.geofence.fences import PARIS, offset
from tests.geofence.presence_api import (
    Client,
    fix_body,
    kinds,
    locate,
    new_partner,
    new_store,
    new_user,
    stamp,
    transitions,
    wait_until_index_holds,
)
from tests.redis_proxy import redis_proxy
from wallet_api.app import create_app
from wallet_api.settings import Settings

UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"


def presence_keys(redis_client: redis.Redis, key_prefix: str) -> list[bytes]:
    return [
        k
        for k in redis_client.scan_iter(match=f"{key_prefix}:presence:*", count=1000)
        if b"{usr_" in k and not k.endswith(b":consent")
    ]


def test_consent_starts_off_and_can_be_granted(client: Client, user_token: str) -> None:
    user = bearer(user_token)
    assert client.get("/v1/me/consent", headers=user).json() == {
        "location": False,
        "discovery": False,
    }
    granted = client.put(
        "/v1/me/consent", json={"location": True, "discovery": False}, headers=user
    )
    assert granted.status_code == 200
    assert granted.json()["location"] is True
    body = client.get("/v1/me/consent", headers=user).json()
    assert (body["location"], body["discovery"]) == (True, False)
    assert "updated_at" in body


@pytest.mark.parametrize(
    "body",
    [
        {"location": True},
        {"location": "yes", "discovery": False},
        {"location": True, "discovery": True, "x": 1},
    ],
)
def test_consent_body_is_validated(client: Client, user_token: str, body: dict[str, Any]) -> None:
    response = client.put("/v1/me/consent", json=body, headers=bearer(user_token))
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


def test_without_location_consent_every_presence_route_is_403_and_nothing_is_stored(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    _, partner = new_partner(client)
    new_store(client, partner)
    user = new_user(client, location=False, discovery=True)
    calls = [
        client.post("/v1/me/location", json=fix_body(0), headers=user),
        client.post(
            "/v1/me/beacons",
            json={
                "sightings": [
                    {
                        "uuid": UUID,
                        "major": 1,
                        "minor": 1,
                        "proximity": "near",
                        "recorded_at": stamp(0),
                    }
                ]
            },
            headers=user,
        ),
        client.post(
            "/v1/me/regions/events",
            json={"region_id": "sto_x", "event": "enter", "recorded_at": stamp(0)},
            headers=user,
        ),
        client.get(f"/v1/me/regions?lat={PARIS[0]}&lon={PARIS[1]}&platform=ios", headers=user),
        client.get("/v1/me/visits", headers=user),
    ]
    for response in calls:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "consent_required"
    stream = redis_client.xlen(f"{key_prefix}:presence:{{transitions}}")
    assert stream == 0
    assert presence_keys(redis_client, key_prefix) == []


def test_one_fix_answers_its_transitions(client: Client) -> None:
    issuer_id, partner = new_partner(client)
    store = new_store(client, partner)
    user = new_user(client)
    far = locate(client, user, fix_body(800, ago_s=60))
    assert far == {
        "transitions": [],
        "ignored": {"stale": 0, "too_old": 0, "too_fast": 0, "future": 0, "unknown": 0},
    }
    result = locate(client, user, fix_body(5, ago_s=10))
    [enter] = result["transitions"]
    assert enter["type"] == "enter"
    assert (enter["store_id"], enter["issuer_id"]) == (store["id"], issuer_id)
    assert enter["at"].endswith("Z") or "+00:00" in enter["at"]
    assert "zone" not in enter


def test_a_batch_is_applied_in_time_order_and_reports_what_it_ignored(client: Client) -> None:
    _, partner = new_partner(client)
    store = new_store(client, partner)
    user = new_user(client)
    batch = [fix_body(300, ago_s=200), fix_body(0, ago_s=100), fix_body(400, ago_s=300)]
    batch += [fix_body(0, ago_s=4000), fix_body(0, ago_s=-600)]
    result = locate(client, user, {"fixes": batch})
    assert kinds(result) == [("enter", store["id"])]
    assert result["ignored"] == {"stale": 0, "too_old": 1, "too_fast": 0, "future": 1, "unknown": 0}
    again = locate(client, user, {"fixes": batch[:3]})
    assert again["transitions"] == []
    assert again["ignored"]["stale"] == 3


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"lat": 48.8, "lon": 2.3, "accuracy_m": 10}, "invalid_location_report", "recorded_at"),
        ({**fix_body(0), "fixes": [fix_body(0)]}, "invalid_location_report", "fixes"),
        ({"fixes": []}, "validation_error", "fixes"),
        ({"fixes": [fix_body(0)] * 101}, "validation_error", "fixes"),
        ({**fix_body(0), "lat": 91}, "validation_error", "lat"),
        ({**fix_body(0), "accuracy_m": -1}, "validation_error", "accuracy_m"),
        ({**fix_body(0), "recorded_at": "2024-01-01T10:00:00"}, "validation_error", "recorded_at"),
        ({**fix_body(0), "speed": 3}, "validation_error", "speed"),
    ],
)
def test_location_reports_are_validated(
    client: Client, body: dict[str, Any], code: str, field: str
) -> None:
    user = new_user(client)
    response = client.post("/v1/me/location", json=body, headers=user)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == code
    assert any(field in error["field"] for error in problem["errors"]), problem


def test_beacon_sightings_answer_zone_transitions(client: Client) -> None:
    _, partner = new_partner(client)
    beacon = {"uuid": UUID, "major": 3, "minor": 9, "zone": "dairy"}
    store = new_store(client, partner, beacons=[beacon])
    user = new_user(client)
    sighting = {"uuid": UUID.upper(), "major": 3, "minor": 9, "proximity": "near", "rssi": -60}
    body = {"sightings": [{**sighting, "recorded_at": stamp(5)}]}
    response = client.post("/v1/me/beacons", json=body, headers=user)
    assert response.status_code == 200, response.text
    got = [(t["type"], t["store_id"], t.get("zone")) for t in response.json()["transitions"]]
    assert got == [("enter", store["id"], None), ("enter", store["id"], "dairy")]
    retry = client.post("/v1/me/beacons", json=body, headers=user).json()
    assert retry["transitions"] == []
    bad = {"sightings": [{**sighting, "proximity": "inside", "recorded_at": stamp(1)}]}
    assert client.post("/v1/me/beacons", json=bad, headers=user).status_code == 422


def test_region_events_enter_and_exit_once(client: Client) -> None:
    _, partner = new_partner(client)
    store = new_store(client, partner)
    user = new_user(client)

    def event(kind: str, ago: float) -> dict[str, Any]:
        body = {"region_id": store["id"], "event": kind, "recorded_at": stamp(ago)}
        response = client.post("/v1/me/regions/events", json=body, headers=user)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    assert kinds(event("enter", 100)) == [("enter", store["id"])]
    assert kinds(event("enter", 100)) == []
    assert kinds(event("exit", 50)) == [("exit", store["id"])]
    assert kinds(event("exit", 40)) == []
    assert event("enter", 30)["ignored"]["stale"] == 0
    assert event("enter", 31)["ignored"]["stale"] == 1


def test_without_discovery_only_programs_with_a_card_are_evaluated(client: Client) -> None:
    issuer_id, partner = new_partner(client)
    store = new_store(client, partner)
    user = new_user(client, discovery=False)
    assert locate(client, user, fix_body(0, ago_s=100))["transitions"] == []
    card = {"number": "1234567890", "issuer_id": issuer_id}
    assert client.post("/v1/me/cards", json=card, headers=user).status_code == 201
    assert kinds(locate(client, user, fix_body(2, ago_s=50))) == [("enter", store["id"])]
    regions = client.get(
        f"/v1/me/regions?lat={PARIS[0]}&lon={PARIS[1]}&platform=android", headers=user
    ).json()["regions"]
    assert [r["store_id"] for r in regions] == [store["id"]]


def test_users_never_see_each_others_presence(client: Client) -> None:
    _, partner = new_partner(client)
    store = new_store(client, partner)
    alice, bob = new_user(client), new_user(client)
    assert kinds(locate(client, alice, fix_body(0, ago_s=100))) == [("enter", store["id"])]
    # Bob elsewhere neither ends Alice's visit nor sees it.
    assert locate(client, bob, fix_body(1000, ago_s=50))["transitions"] == []
    assert client.get("/v1/me/visits", headers=bob).json()["items"] == []
    alice_visits = client.get("/v1/me/visits", headers=alice).json()["items"]
    assert [v["store_id"] for v in alice_visits] == [store["id"]]
    assert client.get("/v1/me/export", headers=bob).json()["presence"]["visits"] == []
    # And Bob entering the same store is his own enter, not a duplicate of Alice's.
    assert kinds(locate(client, bob, fix_body(0, ago_s=10))) == [("enter", store["id"])]


def test_visits_page_newest_first(client: Client) -> None:
    _, partner = new_partner(client)
    store = new_store(client, partner)
    user = new_user(client)
    for i in range(3):
        base = 1800 - i * 400
        locate(client, user, fix_body(0, ago_s=base))
        locate(client, user, fix_body(600, ago_s=base - 100))
    locate(client, user, fix_body(0, ago_s=100))  # a fourth visit, still open
    first = client.get("/v1/me/visits?limit=2", headers=user).json()
    assert "exited_at" not in first["items"][0]
    assert all(v["store_id"] == store["id"] for v in first["items"])
    second = client.get(f"/v1/me/visits?limit=2&cursor={first['next_cursor']}", headers=user).json()
    assert second["next_cursor"] is None
    items = first["items"] + second["items"]
    assert len({v["visit_id"] for v in items}) == 4
    ended = [v["exited_at"] for v in items[1:]]
    assert ended == sorted(ended, reverse=True)
    bad = client.get("/v1/me/visits?cursor=%21%21", headers=user)
    assert bad.status_code == 422


def test_withdrawing_consent_and_deleting_the_user_erase_presence(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    _, partner = new_partner(client)
    new_store(client, partner)
    user = new_user(client)
    locate(client, user, fix_body(0, ago_s=100))
    locate(client, user, fix_body(500, ago_s=50))
    export = client.get("/v1/me/export", headers=user).json()["presence"]
    assert export["consent"]["location"] is True
    assert export["last_fix"]["accuracy_m"] == 10
    assert len(export["visits"]) == 1
    off = {"location": False, "discovery": True}
    assert client.put("/v1/me/consent", json=off, headers=user).status_code == 200
    export = client.get("/v1/me/export", headers=user).json()["presence"]
    assert "last_fix" not in export
    assert export["visits"] == []
    on = {"location": True, "discovery": True}
    client.put("/v1/me/consent", json=on, headers=user)
    locate(client, user, fix_body(0, ago_s=10))
    assert presence_keys(redis_client, key_prefix) != []
    assert client.delete("/v1/me", headers=user).status_code == 204
    assert presence_keys(redis_client, key_prefix) == []


def test_region_sync_limits_orders_and_sizes_the_bubble(client: Client) -> None:
    _, partner = new_partner(client)
    rows = []
    for i in range(30):
        lat, lon = offset(*PARIS, 100 + i * 150, 0)
        rows.append({"external_id": f"s{i}", "name": f"S{i}", "lat": lat, "lon": lon,
                     "timezone": "Europe/Paris", "radius_m": 50})  # fmt: skip
    response = client.post("/v1/partner/stores/import", json=rows, headers=partner)
    assert response.status_code in (200, 201), response.text
    wait_until_index_holds(client, 30)
    user = new_user(client)
    ios = client.get(f"/v1/me/regions?lat={PARIS[0]}&lon={PARIS[1]}&platform=ios", headers=user)
    assert ios.status_code == 200, ios.text
    body = ios.json()
    regions = body["regions"]
    assert len(regions) == 19
    distances = [r["distance_m"] for r in regions]
    assert distances == sorted(distances)
    assert distances[0] == pytest.approx(50, abs=1)
    assert body["refresh"]["radius_m"] == pytest.approx(distances[-1], abs=0.2)
    assert {r["kind"] for r in regions} == {"geofence"}
    android = client.get(
        f"/v1/me/regions?lat={PARIS[0]}&lon={PARIS[1]}&platform=android", headers=user
    ).json()
    assert len(android["regions"]) == 30
    assert android["refresh"]["radius_m"] >= 30 * 150
    bad = client.get(f"/v1/me/regions?lat=91&lon={PARIS[1]}&platform=ios", headers=user)
    assert bad.status_code in (400, 422)
    bad = client.get("/v1/me/regions?lat=1&lon=1&platform=symbian", headers=user)
    assert bad.status_code in (400, 422)


def test_beacon_regions_count_towards_the_ios_limit(client: Client) -> None:
    _, partner = new_partner(client)
    for i in range(20):
        beacons = [{"uuid": f"f7826da6-4fa2-4e98-8024-bc5b71e089{i:02d}", "major": 1, "minor": 1,
                    "zone": "door"}]  # fmt: skip
        new_store(client, partner, east_m=100 + 100 * i, beacons=beacons)
    user = new_user(client)
    body = client.get(
        f"/v1/me/regions?lat={PARIS[0]}&lon={PARIS[1]}&platform=ios", headers=user
    ).json()
    regions = body["regions"]
    assert len(regions) == 19
    assert [r["kind"] for r in regions[:4]] == ["geofence", "beacon", "geofence", "beacon"]
    assert regions[1]["region_id"] == f"beacon:{regions[1]['uuid']}"


async def test_concurrent_requests_for_one_user_emit_one_enter(
    aclient: httpx.AsyncClient, redis_client: redis.Redis, key_prefix: str
) -> None:
    response = await aclient.post("/v1/admin/issuers", json={"name": "Shop"}, headers=ADMIN)
    partner = bearer(response.json()["api_key"])
    lat, lon = PARIS
    store = await aclient.post(
        "/v1/partner/stores",
        json={"name": "S", "lat": lat, "lon": lon, "timezone": "Europe/Paris", "radius_m": 50},
        headers=partner,
    )
    assert store.status_code == 201
    user = bearer((await aclient.post("/v1/users", json={})).json()["token"])
    await aclient.put("/v1/me/consent", json={"location": True, "discovery": True}, headers=user)
    await asyncio.sleep(0.3)  # let the fence index follower see the new store
    body = fix_body(0, ago_s=5)
    responses = await asyncio.gather(
        *(aclient.post("/v1/me/location", json=body, headers=user) for _ in range(12))
    )
    assert all(r.status_code == 200 for r in responses)
    enters = [t for r in responses for t in r.json()["transitions"]]
    assert [t["type"] for t in enters] == ["enter"]
    assert [f[b"type"] for f in transitions(redis_client, key_prefix)] == [b"enter"]


def test_only_the_last_fix_is_kept_and_visits_expire_after_90_days(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    _, partner = new_partner(client)
    new_store(client, partner)
    user = new_user(client)
    user_id = client.get("/v1/me", headers=user).json()["user_id"]
    for i, east in enumerate([0, 5, 10, 700]):
        locate(client, user, fix_body(east, ago_s=400 - i * 60))
    state = redis_client.hgetall(f"{key_prefix}:presence:{{{user_id}}}")
    assert [k for k in state if b"fix" in k] == [b"fix"]  # one fix, not a track
    assert 6 * 86400 < redis_client.ttl(f"{key_prefix}:presence:{{{user_id}}}") <= 7 * 86400
    visits = f"{key_prefix}:presence:{{{user_id}}}:visits"
    assert redis_client.zcard(visits) == 1
    assert 89 * 86400 < redis_client.ttl(visits) <= 90 * 86400


def test_a_token_a_worker_knows_is_refused_as_soon_as_the_user_is_erased(
    client: Client, settings: Settings, redis_client: redis.Redis, key_prefix: str
) -> None:
    """Location reports admit a token this worker resolved before without looking it up;
    the state's read or write-back checks it instead, so erasure still takes effect at once,
    on this worker and on another one holding the user's state in memory."""
    _, partner = new_partner(client)
    new_store(client, partner)
    user, other = new_user(client), new_user(client)
    user_id = client.get("/v1/me", headers=user).json()["user_id"].encode()
    with TestClient(create_app(settings)) as second_worker:
        wait_until_index_holds(second_worker, 1)
        for worker in (client, second_worker):
            locate(worker, user, fix_body(800, ago_s=60))
            locate(worker, other, fix_body(800, ago_s=60))
        locate(second_worker, user, fix_body(790, ago_s=30))  # its state hint is current
        assert client.delete("/v1/me", headers=user).status_code == 204
        for worker in (client, second_worker, second_worker):
            response = worker.post("/v1/me/location", json=fix_body(5, ago_s=5), headers=user)
            assert (response.status_code, response.json()["code"]) == (401, "invalid_token")
        assert locate(second_worker, other, fix_body(5, ago_s=5))["transitions"] != []
    # Nothing of the erased user was written back by the refused reports.
    assert [k for k in presence_keys(redis_client, key_prefix) if user_id in k] == []


def _refusals(client: Client, user: dict[str, str]) -> list[tuple[int, str]]:
    """(status, code) of location reports that fail before any presence script runs."""
    whole = fix_body(5, ago_s=5)
    bodies: list[tuple[bytes, dict[str, str]]] = [
        (b'{"lat": 48.8', {"content-type": "application/json"}),  # malformed JSON
        (b'{"lat": 91, "lon": 2.35, "accuracy_m": 10, "recorded_at": "x"}', {}),
        (httpx.Request("POST", "/", json={**whole, "fixes": [whole]}).content, {}),
        (b'{"fixes": [' + b"0," * 40_000 + b"0]}", {}),  # beyond the route's 64 KB
    ]
    answers = []
    for content, extra in bodies:
        headers = {**user, "content-type": "application/json", **extra}
        response = client.post("/v1/me/location", content=content, headers=headers)
        answers.append((response.status_code, response.json()["code"]))
    return answers


def test_every_answer_to_an_erased_users_remembered_token_is_401(client: Client) -> None:
    """A remembered token skips its lookup only while the answer is a success: every report
    the fast path cannot answer goes to the route, which looks the token up first, so an
    erased user's phone is told to sign in again (401), not that its body was malformed,
    too large or invalid."""
    _, partner = new_partner(client)
    new_store(client, partner)
    user, other = new_user(client), new_user(client)
    for headers in (user, other):
        locate(client, headers, fix_body(800, ago_s=60))  # the worker now knows both tokens
    expected = [
        (400, "malformed_json"),
        (422, "validation_error"),
        (422, "invalid_location_report"),
        (413, "body_too_large"),
    ]
    assert _refusals(client, other) == expected
    assert client.delete("/v1/me", headers=user).status_code == 204
    assert _refusals(client, user) == [(401, "invalid_token")] * len(expected)
    assert _refusals(client, other) == expected
    assert locate(client, other, fix_body(5, ago_s=5))["transitions"] != []


def test_a_remembered_token_gets_503_not_an_error_answer_when_redis_is_lost(
    settings: Settings, redis_url: str
) -> None:
    """A remembered token's bad report goes to the route, whose lookup of the token cannot
    tell with Redis gone: the phone is told to retry (503), not that its body was bad."""
    with redis_proxy(redis_url) as proxy:
        reachable_until_cut = msgspec.structs.replace(settings, redis_url=proxy.url)
        with TestClient(create_app(reachable_until_cut)) as worker:
            user = new_user(worker)
            assert worker.get("/v1/me", headers=user).status_code == 200  # token remembered
            proxy.cut()
            response = worker.post(
                "/v1/me/location",
                content=b'{"lat": 48.8',
                headers={**user, "content-type": "application/json"},
            )
            assert (response.status_code, response.json()["code"]) == (503, "redis_unavailable")


def test_the_location_body_limit_holds_however_the_body_arrives(client: Client) -> None:
    """The location fast path reads a known token's body itself and passes on what it cannot
    read whole: an announced length over the route's 64 KB, a chunked body that grows past
    it and a malformed length are refused as on every other route, and a body in several
    chunks is read whole."""
    user = new_user(client)
    json_ = {**user, "content-type": "application/json"}
    small = msgspec.json.encode(fix_body(5, ago_s=5))

    def chunks(body: bytes, size: int) -> Any:
        yield from (body[i : i + size] for i in range(0, len(body), size))

    announced = client.post(
        "/v1/me/location", content=small, headers={**json_, "content-length": "70000"}
    )
    assert (announced.status_code, announced.json()["code"]) == (413, "body_too_large")
    grown = client.post(
        "/v1/me/location", content=chunks(b"[" + b"0," * 40_000, 4096), headers=json_
    )
    assert (grown.status_code, grown.json()["code"]) == (413, "body_too_large")
    bad = client.post("/v1/me/location", content=small, headers={**json_, "content-length": "12x"})
    assert bad.status_code == 400
    whole = client.post("/v1/me/location", content=chunks(small, 7), headers=json_)
    assert whole.status_code == 200, whole.text
