"""ASGI entry point for server worker processes: settings come from the environment the
``wallet serve`` parent prepared (see ``bootstrap.to_environ``)."""

from __future__ import annotations

import gc

from litestar import Litestar

from wallet_api.app import create_app
from wallet_api.logs import configure_logging
from wallet_api.settings import load_settings, require_secrets


def app_from_env() -> Litestar:
    settings = load_settings()
    require_secrets(settings)
    configure_logging(settings.log_level)
    app = create_app(settings)
    # Everything alive now (modules, routes, schemas, the app) lives as long as the process:
    # keep the cyclic collector from walking it in every full collection.  Unfrozen, those
    # collections paused every request in flight for ~40 ms (/readyz p99 42 ms -> 7.4 ms,
    # ~7 % more throughput; docs/benchmarks.md).  The fence index, loaded later, is frozen
    # after its load (worker.py).
    gc.collect()
    gc.freeze()
    return app
