from __future__ import annotations

import asyncio

import httpx
import redis
from litestar import Litestar
from litestar.testing import TestClient

from tests.conftest import bearer, find_in_redis

Client = TestClient[Litestar]


def test_same_key_same_body_replays_the_first_response(client: Client) -> None:
    headers = {"Idempotency-Key": "signup-1"}
    first = client.post("/v1/users", json={"locale": "de-DE"}, headers=headers)
    again = client.post("/v1/users", json={"locale": "de-DE"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"


def test_same_key_other_body_is_422(client: Client) -> None:
    headers = {"Idempotency-Key": "signup-2"}
    assert client.post("/v1/users", json={"locale": "de-DE"}, headers=headers).status_code == 201
    reused = client.post("/v1/users", json={"locale": "fr-FR"}, headers=headers)
    assert reused.status_code == 422
    assert reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["code"] == "idempotency_key_reused"


def test_without_key_each_call_creates(client: Client) -> None:
    a = client.post("/v1/users", json={}).json()
    b = client.post("/v1/users", json={}).json()
    assert a["user_id"] != b["user_id"]


def test_keys_are_scoped_to_the_caller(client: Client) -> None:
    a = client.post("/v1/users", json={}, headers={"Idempotency-Key": "k"}).json()
    b = client.post(
        "/v1/users",
        json={},
        headers={"Idempotency-Key": "k", "Authorization": "Bearer someone-else"},
    )
    assert b.status_code == 201 and b.json()["user_id"] != a["user_id"]


def test_client_errors_are_replayed_too(client: Client) -> None:
    headers = {"Idempotency-Key": "bad-tz"}
    first = client.post("/v1/users", json={"timezone": "Nowhere/Land"}, headers=headers)
    again = client.post("/v1/users", json={"timezone": "Nowhere/Land"}, headers=headers)
    assert first.status_code == again.status_code == 422
    assert again.json()["code"] == "unknown_timezone"


def test_invalid_key_is_400(client: Client) -> None:
    response = client.post("/v1/users", json={}, headers={"Idempotency-Key": "x" * 300})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"


async def test_concurrent_retries_create_exactly_one_user(
    aclient: httpx.AsyncClient,
) -> None:
    headers = {"Idempotency-Key": "storm"}
    responses = await asyncio.gather(
        *(aclient.post("/v1/users", json={"locale": "it-IT"}, headers=headers) for _ in range(20))
    )
    created = {r.json()["user_id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    assert {r.status_code for r in responses} <= {201, 409}
    in_use = [r for r in responses if r.status_code == 409]
    assert all(r.json()["code"] == "idempotency_key_in_use" for r in in_use)


def test_stored_responses_keep_no_secret_in_clear(
    client: Client, user_token: str, redis_client: redis.Redis, key_prefix: str
) -> None:
    number = "7391846205117"
    headers = {"Idempotency-Key": "add-card", **bearer(user_token)}
    body = {"number": number, "barcode_format": "code128"}
    first = client.post("/v1/me/cards", json=body, headers=headers)
    assert first.status_code == 201
    replay = client.post("/v1/me/cards", json=body, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["number"] == number
    assert find_in_redis(redis_client, key_prefix, [number]) == []
