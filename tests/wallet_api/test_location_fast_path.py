"""Location reports of a token the worker knows are answered outside Litestar
(``wallet_api/location_fast_path.py``): exactly as the Litestar route answers them, and
everything the fast path cannot answer in full reaches that route with its body intact."""

from __future__ import annotations

import re
from typing import Any

import httpx
import msgspec
from litestar.testing import TestClient

from tests.geofence.presence_api import (
    Client,
    Headers,
    fix_body,
    new_partner,
    new_store,
    new_user,
    wait_until_index_holds,
)
from tests.redis_proxy import redis_proxy
from wallet_api.app import create_app
from wallet_api.settings import Settings

_COUNTED = re.compile(r'^wallet_location_fast_path_total\{by="(\w+)"\} (\S+)$', re.M)


def _answered_by(client: Client) -> dict[str, float]:
    return {by: float(n) for by, n in _COUNTED.findall(client.get("/metrics").text)}


def _report(client: Client, user: Headers, body: Any) -> tuple[httpx.Response, dict[str, float]]:
    """The answer, and how many reports each side answered for it (metrics are global)."""
    before = _answered_by(client)
    response = client.post("/v1/me/location", json=body, headers=user)
    after = _answered_by(client)
    return response, {by: after[by] - before.get(by, 0.0) for by in after}


def _comparable(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in response.headers.items() if k != "x-request-id"}
    return response.status_code, headers, response.json()


def test_the_fast_path_answers_exactly_as_the_route(client: Client, settings: Settings) -> None:
    _, partner = new_partner(client)
    new_store(client, partner)
    # The same evidence for two users with the same (empty) state: an enter and a stale fix.
    inside = fix_body(5, ago_s=30)
    batch = {"fixes": [fix_body(800, ago_s=60), inside, inside]}
    known = new_user(client)  # signing up and consenting made this worker know the token
    fast, counted = _report(client, known, batch)
    assert counted == {"fast_path": 1.0, "route": 0.0}
    with TestClient(create_app(settings)) as second_worker:
        wait_until_index_holds(second_worker, 1)
        unknown = new_user(client)  # known to the first worker only
        routed, counted = _report(second_worker, unknown, batch)
        assert counted == {"fast_path": 0.0, "route": 1.0}
        assert _comparable(fast) == _comparable(routed)
        assert [t["type"] for t in fast.json()["transitions"]] == ["enter"]
        assert fast.json()["ignored"]["stale"] == 1
        assert "x-request-id" in fast.headers
        # The route authenticated the token in full: now this worker knows it too.
        _, counted = _report(second_worker, unknown, fix_body(790, ago_s=5))
        assert counted == {"fast_path": 1.0, "route": 0.0}


def test_what_the_fast_path_cannot_answer_reaches_the_route_whole(client: Client) -> None:
    """Errors are the route's to answer, from the body the fast path already read."""
    known = new_user(client)
    not_consented = new_user(client, location=False)
    whole = fix_body(5, ago_s=5)
    cases: list[tuple[Headers, Any, int, str]] = [
        (known, {**whole, "lat": 91}, 422, "validation_error"),
        (known, {**whole, "fixes": [whole]}, 422, "invalid_location_report"),
        (not_consented, whole, 403, "consent_required"),
        ({"Authorization": "Bearer wut_not-a-token"}, whole, 401, "invalid_token"),
    ]
    for headers, body, status, code in cases:
        response, counted = _report(client, headers, body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
        assert counted == {"fast_path": 0.0, "route": 1.0}
    invalid = _report(client, known, {**whole, "lat": 91})[0].json()
    assert invalid["errors"][0]["field"] == "lat"


def test_a_report_that_meets_a_lost_redis_is_503_from_the_fast_path(
    settings: Settings, redis_url: str
) -> None:
    """Not run again on the route: the write-back may have run before its reply was lost,
    and the route could then only call the fix stale."""
    with redis_proxy(redis_url) as proxy:
        reachable_until_cut = msgspec.structs.replace(settings, redis_url=proxy.url)
        with TestClient(create_app(reachable_until_cut)) as worker:
            user = new_user(worker)
            proxy.cut()
            response, counted = _report(worker, user, fix_body(5, ago_s=5))
            assert (response.status_code, response.json()["code"]) == (503, "redis_unavailable")
            assert response.headers["content-type"] == "application/problem+json"
            assert counted == {"fast_path": 1.0, "route": 0.0}
