"""Turn loaded settings into runnable ones.

With ``WALLET_REDIS_URL`` unset the service runs on its embedded default: it starts a Redis
in the data directory and keeps its secrets there (admin token, data key, blind-index key),
each generated once and stored with mode 0600.  With a URL set, the operator supplies every
secret and a missing one stops the start with a clear message.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from kernel import tokens
from kernel.keyring import generate_key_material
from wallet_api.embedded_redis import EmbeddedRedis
from wallet_api.settings import Settings, require_secrets


def _secret_file(path: Path, make: str) -> str:
    """Read a secret kept in the data dir, creating it (0600) the first time."""
    if path.exists():
        return path.read_text().strip()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(make + "\n")
    return make


def embedded_secrets(settings: Settings) -> Settings:
    data_dir = settings.data_dir
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    admin = settings.admin_token or _secret_file(
        data_dir / "admin_token", tokens.mint(tokens.ADMIN_PREFIX)[0]
    )
    data_keys = settings.data_keys or _secret_file(
        data_dir / "data_keys", f"k1:{generate_key_material()}"
    )
    index_key = settings.index_key or _secret_file(data_dir / "index_key", generate_key_material())
    return msgspec.structs.replace(
        settings, admin_token=admin, data_keys=data_keys, index_key=index_key
    )


def resolve(settings: Settings) -> tuple[Settings, EmbeddedRedis | None]:
    """Settings with a Redis URL and all secrets, plus the embedded server if one was started."""
    if not settings.embedded:
        require_secrets(settings)
        return settings, None
    settings = embedded_secrets(settings)
    server = EmbeddedRedis(settings.data_dir)
    url = server.start()
    return msgspec.structs.replace(settings, redis_url=url), server


def to_environ(settings: Settings) -> dict[str, str]:
    """The WALLET_* variables that reproduce ``settings`` in a worker process."""
    assert settings.redis_url and settings.admin_token and settings.data_keys
    assert settings.index_key
    return {
        "WALLET_REDIS_URL": settings.redis_url,
        "WALLET_ADMIN_TOKEN": settings.admin_token,
        "WALLET_DATA_KEYS": settings.data_keys,
        "WALLET_INDEX_KEY": settings.index_key,
        "WALLET_KEY_PREFIX": settings.key_prefix,
        "WALLET_DATA_DIR": str(settings.data_dir),
        "WALLET_LOG_LEVEL": settings.log_level,
        "WALLET_RUN_WORKER": "true" if settings.run_worker else "false",
    }
