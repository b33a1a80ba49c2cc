"""The newcomer's first command: `wallet serve` with no configuration at all."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

WALLET = str(Path(sys.executable).with_name("wallet"))
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("WALLET_")}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


@dataclass
class Running:
    url: str
    stdout: str = ""


def _wait_ready(proc: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "wallet serve exited early"
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("wallet serve did not become ready")


@contextmanager
def serve(data_dir: Path) -> Iterator[Running]:
    """`wallet serve` in ``data_dir`` with no WALLET_* variables; stdout is read at exit."""
    port = _free_port()
    proc = subprocess.Popen(
        [WALLET, "serve", "--port", str(port)],
        cwd=data_dir,
        env=CLEAN_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    running = Running(url=f"http://127.0.0.1:{port}")
    try:
        _wait_ready(proc, running.url)
        yield running
    finally:
        proc.send_signal(signal.SIGTERM)
        running.stdout, _ = proc.communicate(timeout=30)


def test_serve_with_no_configuration_is_ready_prints_the_token_and_cleans_up(
    tmp_path: Path,
) -> None:
    with serve(tmp_path) as running:
        url = running.url
        assert httpx.get(url + "/readyz").json() == {"status": "ready"}
        data_dir = tmp_path / ".wallet"
        token = (data_dir / "admin_token").read_text().strip()
        assert stat.S_IMODE((data_dir / "admin_token").stat().st_mode) == 0o600
        assert stat.S_IMODE((data_dir / "data_keys").stat().st_mode) == 0o600
        created = httpx.post(
            url + "/v1/admin/issuers",
            json={"name": "Bakery"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201
        redis_pid = int((data_dir / "redis.pid").read_text())
        assert _alive(redis_pid)
    assert f"admin token:    {token}" in running.stdout
    deadline = time.monotonic() + 10
    while _alive(redis_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(redis_pid), "the embedded Redis outlived the service"


def test_data_and_token_survive_a_restart(tmp_path: Path) -> None:
    with serve(tmp_path) as running:
        user = httpx.post(running.url + "/v1/users", json={"timezone": "Europe/Oslo"}).json()
    with serve(tmp_path) as running:
        me = httpx.get(running.url + "/v1/me", headers={"Authorization": f"Bearer {user['token']}"})
        assert me.status_code == 200
        assert me.json()["timezone"] == "Europe/Oslo"


def test_external_redis_without_secrets_refuses_to_start(tmp_path: Path) -> None:
    env = {**CLEAN_ENV, "WALLET_REDIS_URL": "redis://127.0.0.1:6379/0"}
    result = subprocess.run(
        [WALLET, "serve"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "WALLET_DATA_KEYS" in result.stderr and "WALLET_ADMIN_TOKEN" in result.stderr


@pytest.mark.parametrize("command", [["gen-key"], ["openapi", "--output", "out.json"]])
def test_other_commands_run(tmp_path: Path, command: list[str]) -> None:
    result = subprocess.run([WALLET, *command], cwd=tmp_path, env=CLEAN_ENV, capture_output=True)
    assert result.returncode == 0
