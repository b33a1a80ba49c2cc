from __future__ import annotations

import json
import logging

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.conftest import bearer
from wallet_api.app import create_app
from wallet_api.settings import Settings

Client = TestClient[Litestar]


def test_healthz_and_readyz(client: Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_readyz_is_503_when_redis_is_unreachable(settings: Settings) -> None:
    broken = Settings(
        **{
            **{f: getattr(settings, f) for f in settings.__struct_fields__},
            "redis_url": "redis://127.0.0.1:1/0",
        }
    )
    with TestClient(create_app(broken)) as client:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["code"] == "redis_unavailable"


def test_request_id_is_echoed_or_generated(client: Client) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id\n"}).headers["x-request-id"]
    assert generated != "bad id\n" and len(generated) == 32


def test_metrics_count_by_route_template_never_raw_path(client: Client, user_token: str) -> None:
    client.get("/v1/me", headers=bearer(user_token))
    client.get("/v1/unknown/4111111111111111?number=4111111111111111")
    text = client.get("/metrics").text
    assert 'wallet_http_requests_total{method="GET",route="/v1/me",status="200"}' in text
    assert 'route="<unmatched>"' in text
    assert "4111111111111111" not in text
    assert "wallet_http_request_duration_seconds_bucket" in text


def test_access_log_is_json_with_template_and_no_secrets(
    client: Client, user_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    from wallet_api.logs import JsonFormatter

    with caplog.at_level(logging.INFO, logger="wallet.access"):
        client.get("/v1/me?card=4111111111111111", headers=bearer(user_token))
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "wallet.access"]
    assert lines
    entry = json.loads(lines[-1])
    assert entry["route"] == "/v1/me" and entry["status"] == 200 and entry["request_id"]
    assert all("4111111111111111" not in line and user_token not in line for line in lines)


def test_docs_ui_is_served(client: Client) -> None:
    assert client.get("/docs/swagger").status_code == 200
    assert client.get("/docs/redoc").status_code == 200
    assert client.get("/docs/openapi.json").json()["info"]["title"] == "Card Wallet API"
