"""ASGI entry point for server worker processes: settings come from the environment the
``wallet serve`` parent prepared (see ``bootstrap.to_environ``)."""

from __future__ import annotations

from litestar import Litestar

from wallet_api.app import create_app
from wallet_api.logs import configure_logging
from wallet_api.settings import load_settings, require_secrets


def app_from_env() -> Litestar:
    settings = load_settings()
    require_secrets(settings)
    configure_logging(settings.log_level)
    return create_app(settings)
