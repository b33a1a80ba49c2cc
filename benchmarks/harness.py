"""What every benchmark shares: a real server in its production configuration, a load
generator (wrk) on loopback, and the two foundation baselines measured in the same run.

Machines are noisy, so every benchmark prints its figures as ratios to these baselines:
``/healthz`` (no I/O) and ``/readyz`` (exactly one Redis round trip, a PING).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from kernel.keyring import generate_key_material

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int

    def row(self, name: str, baseline: Load | None = None) -> str:
        ratio = f"{self.requests_per_s / baseline.requests_per_s:5.2f}x" if baseline else "   - "
        return (
            f"{name:<44} {self.requests_per_s:>9.0f} req/s  p50 {self.p50_ms:6.2f} ms"
            f"  p99 {self.p99_ms:6.2f} ms  {ratio}  errors {self.errors}"
        )


@dataclass(frozen=True)
class Server:
    base_url: str
    admin_token: str
    redis_url: str
    key_prefix: str


def redis_url() -> str:
    url = os.environ.get("WALLET_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    with redis.Redis.from_url(url, socket_connect_timeout=1) as client:
        client.ping()
    return url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(base_url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base_url + "/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("server did not become ready")


@contextlib.contextmanager
def running_server(
    *,
    server: str = "granian",
    workers: int = 1,
    url: str | None = None,
    prefix: str | None = None,
    ready_timeout_s: float = 30,
) -> Iterator[Server]:
    """`wallet serve` in a subprocess against the shared Redis. Without ``prefix`` it gets a
    key prefix of its own, deleted at the end; a given ``prefix`` (data the caller loaded,
    such as stores) is left to the caller."""
    own_prefix = prefix is None
    url = url or redis_url()
    prefix = prefix or "bench" + secrets.token_hex(4)
    port = _free_port()
    admin = "wadm_" + secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "WALLET_REDIS_URL": url,
        "WALLET_KEY_PREFIX": prefix,
        "WALLET_ADMIN_TOKEN": admin,
        "WALLET_DATA_KEYS": f"k1:{generate_key_material()}",
        "WALLET_INDEX_KEY": generate_key_material(),
        "WALLET_SERVER": server,
        "WALLET_DATA_DIR": tempfile.mkdtemp(prefix="wallet-bench-"),
        "WALLET_USERS_CREATE_PER_MINUTE": "1000000",
    }
    wallet = str(Path(sys.executable).with_name("wallet"))
    command = [wallet, "serve", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, proc, ready_timeout_s)
        yield Server(base_url=base_url, admin_token=admin, redis_url=url, key_prefix=prefix)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if own_prefix:
            delete_prefix(url, prefix)
        shutil.rmtree(env["WALLET_DATA_DIR"], ignore_errors=True)


def delete_prefix(url: str, prefix: str) -> None:
    with redis.Redis.from_url(url) as client:
        batch = []
        for key in client.scan_iter(match=f"{prefix}:*", count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)


_LATENCY = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_ERRORS = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)|Socket errors:.*?timeout (\d+)")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(
    url: str,
    *,
    seconds: int = 10,
    connections: int = 32,
    threads: int = 1,
    script: str | None = None,
    headers: dict[str, str] | None = None,
) -> Load:
    """Drive ``url`` with wrk (Debian package `wrk`); ``script`` is Lua source, if any."""
    if shutil.which("wrk") is None:
        raise SystemExit("benchmarks need wrk on PATH: apt-get install wrk")
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script or "")
    if script:
        command += ["-s", lua.name]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    os.unlink(lua.name)
    latency = {p: float(v) * _UNIT_MS[u] for p, v, u in _LATENCY.findall(output)}
    rps = _RPS.search(output)
    errors = sum(int(a or b or 0) for a, b in _ERRORS.findall(output))
    if rps is None or "50" not in latency or "99" not in latency:
        raise RuntimeError(f"could not read wrk output:\n{output}")
    return Load(float(rps.group(1)), latency["50"], latency["99"], errors)


def median(loads: list[Load]) -> Load:
    """Median rate and latencies of repeated runs (errors summed)."""
    return Load(
        requests_per_s=statistics.median(x.requests_per_s for x in loads),
        p50_ms=statistics.median(x.p50_ms for x in loads),
        p99_ms=statistics.median(x.p99_ms for x in loads),
        errors=sum(x.errors for x in loads),
    )


@dataclass(frozen=True)
class Baselines:
    healthz: Load
    one_round_trip: Load

    def print(self) -> None:
        print(self.healthz.row("baseline: GET /healthz (no I/O)"))
        print(self.one_round_trip.row("baseline: GET /readyz (1 Redis round trip)"))


def measure_baselines(server: Server, seconds: int = 10, connections: int = 32) -> Baselines:
    return Baselines(
        healthz=wrk(server.base_url + "/healthz", seconds=seconds, connections=connections),
        one_round_trip=wrk(server.base_url + "/readyz", seconds=seconds, connections=connections),
    )
