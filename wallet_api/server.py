"""Run the ASGI app under the production server.

uvicorn with uvloop and httptools was chosen by measurement (docs/benchmarks.md); workers
are separate processes that build the app from the environment (``wallet_api.asgi``).
"""

from __future__ import annotations

import os
import shutil

import uvicorn

from wallet_api.settings import Settings


def run_server(settings: Settings) -> None:
    if settings.workers > 1:
        # Each worker keeps its own counters; prometheus_client merges them from this dir.
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
    uvicorn.run(
        "wallet_api.asgi:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        lifespan="on",
    )
