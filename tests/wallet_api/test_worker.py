"""Background work: `wallet worker` runs the dwell sweep without HTTP."""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest
import redis
from litestar import Litestar
from litestar.testing import TestClient

from tests.geofence.presence_api import (
    fix_body,
    kinds,
    locate,
    new_partner,
    new_store,
    new_user,
    transitions,
)
from wallet_api.cli import main
from wallet_api.settings import Settings
from wallet_api.worker import run_worker


async def test_the_worker_fires_dwells_without_http(
    client: TestClient[Litestar], settings: Settings, redis_client: redis.Redis, key_prefix: str
) -> None:
    _, partner = new_partner(client)
    store = new_store(client, partner)
    user = new_user(client)
    assert kinds(locate(client, user, fix_body(0, ago_s=20 * 60))) == [("enter", store["id"])]
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop))
    stream = f"{key_prefix}:presence:{{transitions}}"
    started = time.monotonic()
    while redis_client.xlen(stream) < 2:
        assert time.monotonic() - started < 10, "the worker did not sweep"
        await asyncio.sleep(0.05)
    stop.set()
    await worker
    assert [f[b"type"] for f in transitions(redis_client, key_prefix)] == [b"enter", b"dwell"]


def test_the_app_runs_the_sweep_itself_unless_told_not_to(
    settings: Settings, redis_client: redis.Redis, key_prefix: str
) -> None:
    from wallet_api.app import create_app

    with_worker = msgspec.structs.replace(settings, run_worker=True)
    with TestClient(create_app(with_worker)) as client:
        _, partner = new_partner(client)
        new_store(client, partner)
        user = new_user(client)
        locate(client, user, fix_body(0, ago_s=20 * 60))
        stream = f"{key_prefix}:presence:{{transitions}}"
        started = time.monotonic()
        while redis_client.xlen(stream) < 2:
            assert time.monotonic() - started < 10, "the in-process worker did not sweep"
            time.sleep(0.05)


def test_wallet_worker_needs_a_shared_redis(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("WALLET_REDIS_URL", raising=False)
    assert main(["worker"]) == 2
    assert "WALLET_REDIS_URL" in capsys.readouterr().err
