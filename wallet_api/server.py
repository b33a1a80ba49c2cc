"""Run the ASGI app under the production server.

Both granian and uvicorn (uvloop + httptools) are supported; the default was chosen by
measurement (docs/benchmarks.md, `python -m benchmarks.http_baseline`).  Workers are separate
processes that build the app from the environment (``wallet_api.asgi:app_from_env``).
"""

from __future__ import annotations

import os
import shutil

from wallet_api.settings import Settings

APP_FACTORY = "wallet_api.asgi:app_from_env"
WORKER_STOP_TIMEOUT_S = 10
"""A granian worker that has not stopped this long after being told to is killed.  Ctrl-C
signals the worker and the parent at once, and the parent's own SIGTERM follows: about one
stop in six, granian 2.8's worker then stays in its signal handler for good (seen here, and
in session 4), and the service with its embedded Redis never exits.  A stop takes ~0.2 s."""


def _prepare_metrics_dir(settings: Settings) -> None:
    # Each worker keeps its own counters; prometheus_client merges them from this directory.
    metrics_dir = settings.data_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())


def run_server(settings: Settings) -> None:
    if settings.workers > 1:
        _prepare_metrics_dir(settings)
    if settings.server == "granian":
        _run_granian(settings)
    else:
        _run_uvicorn(settings)


def _run_granian(settings: Settings) -> None:
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    Server(
        APP_FACTORY,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops.uvloop,
        factory=True,
        workers_kill_timeout=WORKER_STOP_TIMEOUT_S,
        log_access=False,  # our access log names route templates, never raw paths
        log_dictconfig={"version": 1, "disable_existing_loggers": False},
    ).serve()


def _run_uvicorn(settings: Settings) -> None:
    import uvicorn

    uvicorn.run(
        APP_FACTORY,
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
