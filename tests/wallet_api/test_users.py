from __future__ import annotations

import redis
from litestar import Litestar
from litestar.testing import TestClient

from tests.conftest import ADMIN, bearer

Client = TestClient[Litestar]


def test_create_user_returns_id_and_token_once(client: Client, redis_client: redis.Redis) -> None:
    response = client.post("/v1/users", json={"locale": "fr-FR", "timezone": "Europe/Paris"})
    assert response.status_code == 201
    body = response.json()
    assert body["user_id"].startswith("usr_")
    assert body["token"].startswith("wut_") and len(body["token"]) >= 40
    me = client.get("/v1/me", headers=bearer(body["token"])).json()
    assert me["user_id"] == body["user_id"]
    assert me["locale"] == "fr-FR" and me["timezone"] == "Europe/Paris"
    assert me["created_at"].endswith("Z")
    assert body["token"] not in client.get("/v1/me/export", headers=bearer(body["token"])).text


def test_token_is_stored_only_as_a_hash(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    token = client.post("/v1/users", json={}).json()["token"]
    for key in redis_client.scan_iter(match=f"{key_prefix}:*"):
        assert token.encode() not in key
        if redis_client.type(key) == b"string":
            assert token.encode() not in (redis_client.get(key) or b"")


def test_create_user_without_body(client: Client) -> None:
    assert client.post("/v1/users").status_code == 201


def test_patch_me_changes_only_given_fields_and_null_clears(client: Client) -> None:
    token = client.post("/v1/users", json={"locale": "en-GB", "timezone": "Europe/London"}).json()[
        "token"
    ]
    changed = client.patch("/v1/me", json={"timezone": "Asia/Tokyo"}, headers=bearer(token))
    assert changed.status_code == 200
    assert changed.json()["timezone"] == "Asia/Tokyo" and changed.json()["locale"] == "en-GB"
    cleared = client.patch("/v1/me", json={"locale": None}, headers=bearer(token)).json()
    assert "locale" not in cleared and cleared["timezone"] == "Asia/Tokyo"


def test_delete_me_erases_everything_and_revokes_the_token(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    created = client.post("/v1/users", json={"timezone": "UTC"}).json()
    assert client.delete("/v1/me", headers=bearer(created["token"])).status_code == 204
    assert client.get("/v1/me", headers=bearer(created["token"])).status_code == 401
    leftovers = [k for k in redis_client.scan_iter(match=f"{key_prefix}:*") if b":rl:" not in k]
    assert leftovers == []


def test_export_lists_every_registered_part(client: Client, user_token: str) -> None:
    export = client.get("/v1/me/export", headers=bearer(user_token))
    assert export.status_code == 200
    registry = client.app.state.services.personal_data
    assert set(export.json()) == {part.name for part in registry.parts}
    assert export.json()["account"]["user_id"].startswith("usr_")


def test_one_user_never_sees_another(client: Client) -> None:
    a = client.post("/v1/users", json={}).json()
    b = client.post("/v1/users", json={}).json()
    assert client.get("/v1/me", headers=bearer(a["token"])).json()["user_id"] == a["user_id"]
    assert client.get("/v1/me", headers=bearer(b["token"])).json()["user_id"] == b["user_id"]


def test_admin_token_is_not_a_user(client: Client) -> None:
    response = client.get("/v1/me", headers=ADMIN)
    assert response.status_code == 403
    assert response.json()["code"] == "wrong_principal"


def test_user_creation_is_rate_limited_per_client(client: Client) -> None:
    limit = client.app.state.services.settings.users_create_per_minute
    statuses = [client.post("/v1/users", json={}).status_code for _ in range(limit + 1)]
    assert statuses[:limit] == [201] * limit
    last = client.post("/v1/users", json={})
    assert last.status_code == 429
    assert last.json()["code"] == "rate_limited"
    assert 1 <= int(last.headers["retry-after"]) <= 60
