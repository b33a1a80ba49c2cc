"""Terminals: keys shown once, stored as digests, bound to the program, revoked at once."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from litestar import Litestar
from litestar.testing import TestClient

from tests.conftest import ADMIN, bearer

Client = TestClient[Litestar]
Headers = dict[str, str]
STORE = {"name": "Till shop", "lat": 45.76, "lon": 4.83, "radius_m": 60, "timezone": "Europe/Paris"}


def new_partner(client: Client, name: str = "Bakery") -> tuple[Headers, str]:
    response = client.post("/v1/admin/issuers", json={"name": name}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return bearer(response.json()["api_key"]), response.json()["issuer"]["issuer_id"]


@pytest.fixture
def partner(client: Client) -> Headers:
    return new_partner(client)[0]


def new_terminal(client: Client, headers: Headers, **body: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/partner/terminals", json={"name": "Till 1", **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    terminal: dict[str, Any] = response.json()
    return terminal


def test_terminal_key_identifies_terminal_program_and_store(client: Client) -> None:
    headers, issuer_id = new_partner(client)
    store = client.post("/v1/partner/stores", json=STORE, headers=headers).json()
    terminal = new_terminal(client, headers, store_id=store["id"])
    assert terminal["id"].startswith("trm_") and terminal["key"].startswith("wtk_")
    assert terminal["store_id"] == store["id"] and terminal["name"] == "Till 1"
    me = client.get("/v1/pos/me", headers=bearer(terminal["key"]))
    assert me.status_code == 200
    assert me.json() == {
        "terminal_id": terminal["id"],
        "issuer_id": issuer_id,
        "store_id": store["id"],
        "name": "Till 1",
    }


def test_terminal_without_store(client: Client, partner: Headers) -> None:
    terminal = new_terminal(client, partner, name="Roaming till")
    assert "store_id" not in terminal
    me = client.get("/v1/pos/me", headers=bearer(terminal["key"])).json()
    assert "store_id" not in me and me["name"] == "Roaming till"


def test_list_shows_terminals_without_keys(client: Client, partner: Headers) -> None:
    made = [new_terminal(client, partner, name=f"Till {i}") for i in range(3)]
    page = client.get("/v1/partner/terminals", params={"limit": 2}, headers=partner).json()
    rest = client.get(
        "/v1/partner/terminals", params={"cursor": page["next_cursor"]}, headers=partner
    ).json()
    listed = page["items"] + rest["items"]
    assert [t["id"] for t in listed] == [t["id"] for t in made]
    assert all("key" not in t for t in listed)
    for terminal in made:
        assert terminal["key"] not in str(listed)


def test_key_is_stored_only_as_a_digest(
    client: Client, partner: Headers, redis_client: redis.Redis, key_prefix: str
) -> None:
    key = new_terminal(client, partner)["key"].encode()
    for name in redis_client.scan_iter(match=f"{key_prefix}:*"):
        assert key not in name
        if redis_client.type(name) == b"string":
            assert key not in (redis_client.get(name) or b"")
        elif redis_client.type(name) == b"hash":
            assert all(key not in v for v in redis_client.hvals(name))


def test_revoked_key_stops_working_at_once(client: Client, partner: Headers) -> None:
    terminal = new_terminal(client, partner)
    keep = new_terminal(client, partner, name="Till 2")
    path = f"/v1/partner/terminals/{terminal['id']}"
    assert client.delete(path, headers=partner).status_code == 204
    revoked = client.get("/v1/pos/me", headers=bearer(terminal["key"]))
    assert revoked.status_code == 401 and revoked.json()["code"] == "invalid_token"
    assert client.delete(path, headers=partner).json()["code"] == "terminal_not_found"
    listed = client.get("/v1/partner/terminals", headers=partner).json()["items"]
    assert [t["id"] for t in listed] == [keep["id"]]
    assert client.get("/v1/pos/me", headers=bearer(keep["key"])).status_code == 200


def test_store_must_belong_to_the_same_program(client: Client) -> None:
    a, _ = new_partner(client, "A")
    b, _ = new_partner(client, "B")
    theirs = client.post("/v1/partner/stores", json=STORE, headers=b).json()
    for store_id in (theirs["id"], "sto_doesnotexist0000000000000", "nonsense"):
        response = client.post(
            "/v1/partner/terminals", json={"name": "Till", "store_id": store_id}, headers=a
        )
        assert response.status_code == 404
        assert response.json()["code"] == "store_not_found"
    assert client.get("/v1/partner/terminals", headers=a).json()["items"] == []


def test_partner_cannot_revoke_or_see_another_programs_terminal(client: Client) -> None:
    a, _ = new_partner(client, "A")
    b, _ = new_partner(client, "B")
    theirs = new_terminal(client, b)
    response = client.delete(f"/v1/partner/terminals/{theirs['id']}", headers=a)
    assert response.status_code == 404
    assert client.get("/v1/partner/terminals", headers=a).json()["items"] == []
    assert client.get("/v1/pos/me", headers=bearer(theirs["key"])).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/partner/terminals"),
        ("GET", "/v1/partner/stores"),
        ("GET", "/v1/partner/issuer"),
        ("GET", "/v1/me"),
    ],
)
def test_terminal_key_is_refused_elsewhere(
    client: Client, partner: Headers, method: str, path: str
) -> None:
    key = new_terminal(client, partner)["key"]
    response = client.request(method, path, headers=bearer(key))
    assert response.status_code == 403
    assert response.json()["code"] == "wrong_principal"


def test_pos_route_is_for_terminals_only(client: Client, partner: Headers, user_token: str) -> None:
    for headers in (partner, bearer(user_token), ADMIN):
        response = client.get("/v1/pos/me", headers=headers)
        assert response.status_code == 403
        assert response.json()["code"] == "wrong_principal"
    assert client.get("/v1/pos/me").status_code == 401
    assert client.get("/v1/pos/me", headers=bearer("wtk_forged")).status_code == 401
