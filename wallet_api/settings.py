"""The one settings object, read from ``WALLET_*`` environment variables.

Nothing reads the environment at import time: ``load_settings(os.environ)`` is called by the
CLI (or a test) and the result is passed into ``create_app``.  Every variable is documented in
README.md; keep the two in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


class Lockout(msgspec.Struct, frozen=True):
    """``failures`` failed attempts within ``window_s`` lock the subject for ``lock_s``."""

    failures: int
    window_s: int
    lock_s: int


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    redis_url: str | None = None
    data_dir: Path = Path(".wallet")
    admin_token: str | None = None
    data_keys: str | None = None
    index_key: str | None = None
    key_prefix: str = "w"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    server: Literal["uvicorn", "granian"] = "granian"
    log_level: str = "INFO"
    max_body_bytes: int = 1024 * 1024
    bulk_body_bytes: int = 64 * 1024 * 1024
    users_create_per_minute: int = 60
    run_worker: bool = True
    docs_enabled: bool = True
    # POS verification (docs/pos.md): TOTP steps accepted before the current one, and
    # failed attempts allowed per window before a terminal / a card reference is locked.
    totp_skew_steps: int = 1
    pos_terminal_lockout: Lockout = msgspec.field(default_factory=lambda: Lockout(30, 300, 300))
    pos_card_lockout: Lockout = msgspec.field(default_factory=lambda: Lockout(10, 600, 600))

    @property
    def embedded(self) -> bool:
        """No Redis URL configured: the CLI starts and owns an embedded server."""
        return self.redis_url is None


def _int(environ: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _lockout(environ: Mapping[str, str], name: str, default: Lockout) -> Lockout:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    parts = raw.split("/")
    if len(parts) != 3 or not all(p.isdigit() and 0 < int(p) <= 86_400 for p in parts):
        raise SettingsError(f"{name} must be failures/window_s/lock_s, e.g. 30/300/300")
    return Lockout(*(int(p) for p in parts))


def _server(name: str) -> Literal["uvicorn", "granian"]:
    if name == "uvicorn":
        return "uvicorn"
    if name == "granian":
        return "granian"
    raise SettingsError(f"WALLET_SERVER must be granian or uvicorn, got {name!r}")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    prefix = env.get("WALLET_KEY_PREFIX", "w")
    if not prefix or any(c in prefix for c in "{}: "):
        raise SettingsError("WALLET_KEY_PREFIX must be non-empty without '{', '}', ':' or spaces")
    return Settings(
        redis_url=env.get("WALLET_REDIS_URL") or None,
        data_dir=Path(env.get("WALLET_DATA_DIR") or ".wallet"),
        admin_token=env.get("WALLET_ADMIN_TOKEN") or None,
        data_keys=env.get("WALLET_DATA_KEYS") or None,
        index_key=env.get("WALLET_INDEX_KEY") or None,
        key_prefix=prefix,
        host=env.get("WALLET_HOST") or "127.0.0.1",
        port=_int(env, "WALLET_PORT", 8080, 1, 65535),
        workers=_int(env, "WALLET_WORKERS", 1, 1, 64),
        server=_server(env.get("WALLET_SERVER") or "granian"),
        log_level=(env.get("WALLET_LOG_LEVEL") or "INFO").upper(),
        max_body_bytes=_int(env, "WALLET_MAX_BODY_BYTES", 1024 * 1024, 1024, 1 << 30),
        bulk_body_bytes=_int(env, "WALLET_BULK_BODY_BYTES", 64 * 1024 * 1024, 1024, 1 << 31),
        users_create_per_minute=_int(env, "WALLET_USERS_CREATE_PER_MINUTE", 60, 1, 1_000_000),
        run_worker=_bool(env, "WALLET_RUN_WORKER", True),
        docs_enabled=_bool(env, "WALLET_DOCS", True),
        totp_skew_steps=_int(env, "WALLET_TOTP_SKEW_STEPS", 1, 0, 10),
        pos_terminal_lockout=_lockout(env, "WALLET_POS_TERMINAL_LOCKOUT", Lockout(30, 300, 300)),
        pos_card_lockout=_lockout(env, "WALLET_POS_CARD_LOCKOUT", Lockout(10, 600, 600)),
    )


def require_secrets(settings: Settings) -> None:
    """Refuse to start a non-embedded deployment without its secrets."""
    missing = [
        name
        for name, value in (
            ("WALLET_ADMIN_TOKEN", settings.admin_token),
            ("WALLET_DATA_KEYS", settings.data_keys),
            ("WALLET_INDEX_KEY", settings.index_key),
        )
        if not value
    ]
    if missing:
        raise SettingsError(
            "WALLET_REDIS_URL is set, so the service will not invent secrets: set "
            + ", ".join(missing)
            + " (generate keys with `wallet gen-key`; see README, Configuration)"
        )
