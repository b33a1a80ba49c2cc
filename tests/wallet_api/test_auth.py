"""Each kind of principal reaches only its own routes."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.conftest import ADMIN, bearer

Client = TestClient[Litestar]

USER_ROUTE = ("GET", "/v1/me")
PARTNER_ROUTE = ("GET", "/v1/partner/issuer")
ADMIN_ROUTE = ("POST", "/v1/admin/issuers")


@pytest.fixture
def tokens(client: Client, user_token: str) -> dict[str, dict[str, str]]:
    created = client.post("/v1/admin/issuers", json={"name": "Coffee Co"}, headers=ADMIN).json()
    return {"user": bearer(user_token), "partner": bearer(created["api_key"]), "admin": ADMIN}


@pytest.mark.parametrize(
    ("kind", "route"),
    [
        ("partner", USER_ROUTE),
        ("admin", USER_ROUTE),
        ("user", PARTNER_ROUTE),
        ("admin", PARTNER_ROUTE),
        ("user", ADMIN_ROUTE),
        ("partner", ADMIN_ROUTE),
    ],
)
def test_wrong_kind_is_403(
    client: Client, tokens: dict[str, dict[str, str]], kind: str, route: tuple[str, str]
) -> None:
    method, path = route
    response = client.request(method, path, headers=tokens[kind], json={"name": "x"})
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "wrong_principal"


@pytest.mark.parametrize("route", [USER_ROUTE, PARTNER_ROUTE, ADMIN_ROUTE])
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wpk_forged"}, {"Authorization": "Token abc"}],
)
def test_missing_or_garbled_is_401(
    client: Client, route: tuple[str, str], headers: dict[str, str]
) -> None:
    method, path = route
    response = client.request(method, path, headers=headers, json={"name": "x"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_right_kind_gets_in(client: Client, tokens: dict[str, dict[str, str]]) -> None:
    assert client.get("/v1/me", headers=tokens["user"]).status_code == 200
    assert client.get("/v1/partner/issuer", headers=tokens["partner"]).status_code == 200
    assert client.post("/v1/admin/issuers", json={"name": "B"}, headers=ADMIN).status_code == 201


def test_wrong_admin_token_is_401(client: Client) -> None:
    response = client.post("/v1/admin/issuers", json={"name": "x"}, headers=bearer("wadm_nope"))
    assert response.status_code == 401
