"""A TCP relay in front of the test Redis that a test can cut: Redis lost at the network
edge, while everything of ours (clients, scripts, error paths) runs as in production."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs, unquote, urlsplit


def _upstream(redis_url: str) -> socket.socket:
    url = urlsplit(redis_url)
    if url.scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(unquote(url.path))
        return sock
    return socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379))


def _db(redis_url: str) -> str:
    url = urlsplit(redis_url)
    if url.scheme == "unix":
        return parse_qs(url.query).get("db", ["0"])[0]
    return url.path.strip("/") or "0"


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    for sock in (src, dst):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class RedisProxy:
    """``url`` reaches the real Redis until ``cut()``: then every connection drops and new
    ones are refused."""

    def __init__(self, redis_url: str) -> None:
        self._redis_url = redis_url
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._open: list[socket.socket] = []
        self._cut = False
        port = self._listener.getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}/{_db(redis_url)}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                if self._cut:
                    client.close()
                    return
                server = _upstream(self._redis_url)
                self._open += [client, server]
                threading.Thread(target=_pump, args=(client, server), daemon=True).start()
                threading.Thread(target=_pump, args=(server, client), daemon=True).start()

    def cut(self) -> None:
        self._cut = True
        # A close() alone leaves the socket listening while the relay thread sits in accept().
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@contextlib.contextmanager
def redis_proxy(redis_url: str) -> Iterator[RedisProxy]:
    proxy = RedisProxy(redis_url)
    try:
        yield proxy
    finally:
        proxy.cut()
