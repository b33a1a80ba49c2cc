"""Every kind of bad input gets RFC 9457 problem+json with a stable code, and changes nothing."""

from __future__ import annotations

import msgspec
import pytest
import redis
from litestar import Litestar
from litestar.testing import TestClient

from tests.conftest import bearer
from tests.redis_proxy import redis_proxy
from wallet_api.app import create_app
from wallet_api.settings import Settings

Client = TestClient[Litestar]
PROBLEM = "application/problem+json"


def assert_problem(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == PROBLEM  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status
    assert body["code"] == code
    assert body["title"] and body["detail"]
    return body


def test_unknown_route(client: Client) -> None:
    assert_problem(client.get("/v1/does-not-exist"), 404, "route_not_found")


def test_wrong_method_lists_allowed_methods(client: Client) -> None:
    response = client.put("/healthz")
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


def test_malformed_json(client: Client) -> None:
    assert_problem(client.post("/v1/users", content=b'{"locale": '), 400, "malformed_json")


@pytest.mark.parametrize("path", ["/v1/me/location", "/v1/me/consent"])
def test_a_missing_body_is_named_as_such(client: Client, user_token: str, path: str) -> None:
    send = client.post if path.endswith("location") else client.put
    response = send(path, content=b"", headers=bearer(user_token))
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"] == [{"field": "body", "message": "a JSON body is required"}]


def test_wrong_type_names_the_field(client: Client) -> None:
    body = assert_problem(client.post("/v1/users", json={"timezone": 5}), 422, "validation_error")
    assert body["errors"] == [{"field": "timezone", "message": "Expected `str | null`, got `int`"}]


def test_unknown_field_is_rejected_and_named(client: Client) -> None:
    body = assert_problem(
        client.post("/v1/users", json={"timezon": "UTC"}), 422, "validation_error"
    )
    assert body["errors"][0]["field"] == "timezon"  # type: ignore[index]


def test_constraint_violation_names_the_field(client: Client) -> None:
    body = assert_problem(client.post("/v1/users", json={"locale": "!!"}), 422, "validation_error")
    assert body["errors"][0]["field"] == "locale"  # type: ignore[index]


def test_domain_validation_names_the_field(client: Client, user_token: str) -> None:
    response = client.patch("/v1/me", json={"timezone": "Mars/Olympus"}, headers=bearer(user_token))
    body = assert_problem(response, 422, "unknown_timezone")
    assert body["errors"] == [
        {"field": "timezone", "message": "'Mars/Olympus' is not an IANA time zone"}
    ]
    assert client.get("/v1/me", headers=bearer(user_token)).json().get("timezone") is None


def test_body_over_one_mebibyte(client: Client, redis_client: redis.Redis, key_prefix: str) -> None:
    huge = b'{"locale": "' + b"a" * (1024 * 1024 + 10) + b'"}'
    assert_problem(client.post("/v1/users", content=huge), 413, "body_too_large")
    assert list(redis_client.scan_iter(match=f"{key_prefix}:user:*")) == []


def test_unexpected_exception_is_500_without_internals(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    created = client.post("/v1/users", json={}).json()
    # A corrupted record (say, written by a buggy older release) makes decoding fail.
    redis_client.set(f"{key_prefix}:user:{{{created['user_id']}}}", b"\xc1garbage")
    response = client.get("/v1/me", headers=bearer(created["token"]))
    body = assert_problem(response, 500, "internal_error")
    assert "msgspec" not in response.text and "Traceback" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, bearer("wut_garbage")],
)
def test_missing_or_garbled_token(client: Client, headers: dict[str, str]) -> None:
    response = client.get("/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] in {"unauthenticated", "invalid_token"}


def test_redis_lost_is_503_on_every_kind_of_route(settings: Settings, redis_url: str) -> None:
    """Not 500: the client may retry once Redis is back (documented on every such route)."""
    with redis_proxy(redis_url) as proxy:
        cut_later = msgspec.structs.replace(settings, redis_url=proxy.url)
        with TestClient(create_app(cut_later)) as app:
            user = bearer(app.post("/v1/users", json={}).json()["token"])
            proxy.cut()
            assert_problem(app.get("/v1/me", headers=user), 503, "redis_unavailable")
            assert_problem(app.post("/v1/users", json={}), 503, "redis_unavailable")
            partner = bearer("wpk_unknown-key")
            assert_problem(app.get("/v1/partner/stores", headers=partner), 503, "redis_unavailable")
