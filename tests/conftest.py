"""Shared fixtures: a real Redis, a per-test key prefix, the real app over HTTP.

Redis: ``WALLET_TEST_REDIS_URL``, else 127.0.0.1:6379 when it answers, else an embedded
server started for this run.  Each test gets its own key prefix and deletes only its keys.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest
import redis
from litestar import Litestar
from litestar.testing import TestClient

from kernel.keyring import generate_key_material
from wallet_api.app import create_app
from wallet_api.embedded_redis import EmbeddedRedis
from wallet_api.settings import Settings

ADMIN_TOKEN = "wadm_test_" + secrets.token_urlsafe(16)


def _reachable(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=0.5) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("WALLET_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    if _reachable("redis://127.0.0.1:6379/0"):
        yield "redis://127.0.0.1:6379/0"
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    prefix = "t" + secrets.token_hex(6)
    yield prefix
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])


@pytest.fixture
def settings(redis_url: str, key_prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        data_dir=tmp_path,
        admin_token=ADMIN_TOKEN,
        data_keys=f"k1:{generate_key_material()}",
        index_key=generate_key_material(),
        key_prefix=key_prefix,
        run_worker=False,
    )


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
async def aclient(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP into the real app on the test's own event loop, so gathered requests really run
    concurrently (Litestar's AsyncTestClient completes each request before the next)."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        # Entered and left in this one task: the lifespan's task group requires it.
        async with app.lifespan():
            started.set()
            await stop.wait()

    lifespan = asyncio.create_task(run_lifespan())
    await started.wait()
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client
    finally:
        stop.set()
        await lifespan


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ADMIN = bearer(ADMIN_TOKEN)


@pytest.fixture
def user_token(client: TestClient[Litestar]) -> str:
    response = client.post("/v1/users", json={})
    assert response.status_code == 201
    token: str = response.json()["token"]
    return token


def find_in_redis(client: redis.Redis, prefix: str, secrets: list[str]) -> list[str]:
    """Which of ``secrets`` appear in any key name or value under ``prefix``."""
    blobs: list[bytes | str] = []
    for key in client.scan_iter(match=f"{prefix}:*"):
        blobs.append(key)
        kind = client.type(key)
        if kind == b"string":
            blobs.append(cast(bytes, client.get(key)))
        elif kind == b"hash":
            blobs.extend(b for pair in client.hgetall(key).items() for b in pair)
        elif kind == b"zset":
            blobs.extend(cast(list[bytes], client.zrange(key, 0, -1)))
        elif kind == b"set":
            blobs.extend(client.smembers(key))
        elif kind == b"list":
            blobs.extend(client.lrange(key, 0, -1))
        else:
            blobs.append(cast(bytes, client.dump(key)))
    raw = [blob if isinstance(blob, bytes) else blob.encode() for blob in blobs]
    return [s for s in secrets if any(s.encode() in blob for blob in raw)]
