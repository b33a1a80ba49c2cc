"""``wallet rotate-keys``: re-encrypt every sealed value with the newest data key.

Each feature that seals data registers a ``kernel.keyring.SealedDataFamily`` in the
services container;
this walks them all (offline command: SCAN is allowed here, never on a request path).
"""

from __future__ import annotations

from redis.asyncio import Redis

from wallet_api.services import build_services
from wallet_api.settings import Settings


async def rotate_all(settings: Settings) -> dict[str, int]:
    assert settings.redis_url
    redis = Redis.from_url(settings.redis_url)
    try:
        services = build_services(settings, redis)
        return {f.name: await f.rewrap(services.keyring) for f in services.sealed_families}
    finally:
        await redis.aclose()
