"""The foundation's two baselines, for each ASGI server we could run in production.

    .venv/bin/python -m benchmarks.http_baseline [--seconds 10] [--workers 1]

Prints requests/s and p50/p99 for ``/healthz`` and ``/readyz`` (one Redis round trip) under
granian and under uvicorn (uvloop + httptools), so the default server is chosen by
measurement; later benchmarks report ratios to these two figures from their own run.
"""

from __future__ import annotations

import argparse

from benchmarks.harness import measure_baselines, running_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    results = {}
    for server in ("granian", "uvicorn"):
        with running_server(server=server, workers=args.workers) as running:
            results[server] = measure_baselines(running, args.seconds, args.connections)
    reference = results["granian"].one_round_trip
    for server, baselines in results.items():
        print(f"--- {server}, {args.workers} worker(s), {args.connections} connections")
        print(baselines.healthz.row("GET /healthz (no I/O)", results["granian"].healthz))
        print(baselines.one_round_trip.row("GET /readyz (1 Redis round trip)", reference))


if __name__ == "__main__":
    main()
