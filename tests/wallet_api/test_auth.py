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


# Routes anyone may call; every other route must refuse a request without credentials.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/v1/users"),
}


def _every_route(app: Litestar) -> list[tuple[str, str]]:
    routes = []
    for route in app.routes:
        if route.path.startswith("/docs"):  # the OpenAPI document and its viewers
            continue
        # Path parameters get a value of the right shape; the request must fail before it
        # is looked up.
        path = route.path
        for name in route.path_parameters:
            path = path.replace("{" + name + ":str}", "x").replace("{" + name + "}", "x")
        for method in sorted(getattr(route, "methods", ())):
            if method not in {"HEAD", "OPTIONS"} and (method, route.path) not in PUBLIC:
                routes.append((method, path))
    return routes


def test_every_non_public_route_refuses_missing_and_forged_credentials(
    app: Litestar, client: Client
) -> None:
    """Authentication is a controller hook (wallet_api/dependencies.py); a handler that
    declared its own hook would silently replace it. This catches that on any route."""
    routes = _every_route(app)
    assert len(routes) > 40  # the walk found the API, not an empty list
    refused = {}
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer wut_forged"}):
            response = client.request(method, path, headers=headers, json={})
            refused[(method, path, bool(headers))] = response.status_code
    assert {key for key, status in refused.items() if status != 401} == set()
