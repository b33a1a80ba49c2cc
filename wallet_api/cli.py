"""The ``wallet`` command: serve, worker, openapi, rotate-keys, gen-key."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

import msgspec

from kernel.keyring import generate_key_material
from wallet_api.settings import Settings, SettingsError, load_settings

OPENAPI_PATH = Path("openapi/openapi.json")


def openapi_document() -> str:
    """The OpenAPI document as committed: stable key order, trailing newline."""
    from wallet_api.app import create_app

    settings = Settings(admin_token="-", data_keys="-", index_key="-", redis_url="redis://-")
    schema = create_app(settings).openapi_schema.to_schema()
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def cmd_openapi(args: argparse.Namespace) -> int:
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(openapi_document())
    print(f"wrote {path}")
    return 0


def cmd_gen_key(_: argparse.Namespace) -> int:
    print(generate_key_material())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from wallet_api import bootstrap
    from wallet_api.server import run_server

    overrides = {"host": args.host, "port": args.port, "workers": args.workers}
    settings = msgspec.structs.replace(
        load_settings(), **{k: v for k, v in overrides.items() if v is not None}
    )
    if args.no_worker:
        settings = msgspec.structs.replace(settings, run_worker=False)
    settings, embedded = bootstrap.resolve(settings)
    try:
        if embedded is not None:
            print(f"embedded Redis: {settings.redis_url} (data in {settings.data_dir})")
            print(f"admin token:    {settings.admin_token}")
        print(f"serving on http://{settings.host}:{settings.port}  (API docs at /docs/swagger)")
        sys.stdout.flush()
        os.environ.update(bootstrap.to_environ(settings))
        run_server(settings)
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def cmd_rotate_keys(_: argparse.Namespace) -> int:
    from wallet_api import bootstrap
    from wallet_api.rotation import rotate_all

    settings, embedded = bootstrap.resolve(load_settings())
    try:
        counts = asyncio.run(rotate_all(settings))
    finally:
        if embedded is not None:
            embedded.stop()
    for family, count in counts.items():
        print(f"{family}: {count} value(s) re-encrypted")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """The background jobs (dwell sweep) without HTTP, for `wallet serve --no-worker`."""
    from wallet_api import bootstrap
    from wallet_api.logs import configure_logging
    from wallet_api.worker import run_worker

    loaded = load_settings()
    if loaded.embedded:
        raise SettingsError(
            "`wallet worker` shares a Redis with `wallet serve --no-worker`: set "
            "WALLET_REDIS_URL (with the embedded default, `wallet serve` runs the worker itself)"
        )
    settings, _ = bootstrap.resolve(loaded)
    configure_logging(settings.log_level)
    asyncio.run(run_worker(settings))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wallet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service (and its background work)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument(
        "--no-worker", action="store_true", help="leave background work to `wallet worker`"
    )
    serve.set_defaults(func=cmd_serve)
    openapi = sub.add_parser("openapi", help="write the OpenAPI document")
    openapi.add_argument("--output", default=str(OPENAPI_PATH))
    openapi.set_defaults(func=cmd_openapi)
    worker = sub.add_parser("worker", help="run the background work only (no HTTP)")
    worker.set_defaults(func=cmd_worker)
    rotate = sub.add_parser("rotate-keys", help="re-encrypt stored secrets with the newest key")
    rotate.set_defaults(func=cmd_rotate_keys)
    gen = sub.add_parser("gen-key", help="print a new random 256-bit key (for WALLET_DATA_KEYS)")
    gen.set_defaults(func=cmd_gen_key)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except SettingsError as exc:
        print(f"wallet: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    raise SystemExit(main())
