"""The hot paths' Redis round trips, multiplexed on one connection per process.

Used where a request's cost is dominated by its Redis calls: credential lookups (every
authenticated request), POS verification, and the presence engine's read and write-back.
Everything else uses the redis-py client (``redis.asyncio.Redis``), which stays the client of
record: this class borrows its connection settings and adds no features.

Why not the redis-py client here: its asyncio layers (a pool checkout with a health check
under a lock, observability hooks, per-argument encoding, timeouts and retries) cost 70-90 µs
of CPU per command on a small machine, about as much as the rest of a request
(docs/benchmarks.md).  Here every caller appends its commands to one connection and waits for
its own replies: Redis answers in order, so a FIFO of waiters matches replies to callers;
hiredis parses the replies (C) and ``pack_into`` writes the commands.  A round trip then
costs 15-20 µs, and concurrent requests share the connection's writes and reads.

Connection settings (TCP, unix socket, TLS, user, password, db) come from the client's own
pool, so this always talks to the Redis the client talks to.  A cancelled caller's replies
are still read and dropped, so the stream never goes out of step; a broken connection fails
its waiters with ``ConnectionError`` and the next call reconnects (each call is retried
once, as redis-py's default retry does: a retried script whose first reply was lost runs
twice, so scripts sent here must be safe to repeat: POS verification answers "replayed",
the presence write-back "conflict", both of which the callers handle).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Sequence
from typing import Final, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

Arg = bytes | str | int | float
Command = Sequence[Arg]
Reply = object


_HEADERS: Final = 512
_ARRAY_HEADERS: Final = [b"*%d\r\n" % n for n in range(_HEADERS)]
_BULK_HEADERS: Final = [b"$%d\r\n" % n for n in range(_HEADERS)]


def pack_into(out: list[bytes], command: Command) -> None:
    """Append ``command`` as RESP (an array of bulk strings) to ``out``, byte for byte what
    ``hiredis.pack_command`` writes (floats as ``repr``, text as UTF-8).

    Not hiredis's packer: it formats every length with ``sprintf``, ~1,300 instructions an
    argument, and the presence write-back sends ~50 (7 % of a walking location request,
    callgrind; docs/benchmarks.md).  Here a length is a table lookup."""
    n = len(command)
    out.append(_ARRAY_HEADERS[n] if n < _HEADERS else b"*%d\r\n" % n)
    for arg in command:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, bool):  # an int, but never meant as one here (hiredis refuses it)
            raise TypeError("a Redis argument must be str, int, float or bytes, not bool")
        elif isinstance(arg, int):
            data = str(arg).encode()
        elif isinstance(arg, float):
            data = repr(arg).encode()
        else:
            raise TypeError(f"a Redis argument must be str, int, float or bytes, not {arg!r}")
        size = len(data)
        out.append(_BULK_HEADERS[size] if size < _HEADERS else b"$%d\r\n" % size)
        out.append(data)
        out.append(b"\r\n")


class _Waiter:
    __slots__ = ("expected", "future", "replies")

    def __init__(self, future: asyncio.Future[list[Reply]], expected: int) -> None:
        self.future = future
        self.expected = expected
        self.replies: list[Reply] = []


class _Protocol(asyncio.Protocol):
    """Feeds hiredis and hands each complete reply to the oldest waiter."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiters: deque[_Waiter] = deque()
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._outgoing: list[bytes] = []
        self.lost = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            self._dispatch()
        except (hiredis.ProtocolError, IndexError):  # garbage, or a reply nobody asked for
            assert self.transport is not None
            self.transport.abort()

    def _dispatch(self) -> None:
        while (reply := self._reader.gets()) is not False:
            waiter = self.waiters[0]
            waiter.replies.append(reply)
            if len(waiter.replies) == waiter.expected:
                self.waiters.popleft()
                if not waiter.future.done():  # a cancelled caller: drop its replies
                    waiter.future.set_result(waiter.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.closed.done():
            self.closed.set_result(None)
        while self.waiters:
            future = self.waiters.popleft().future
            if not future.done():
                future.set_exception(RedisConnectionError(f"Redis connection lost: {exc}"))

    def send(self, commands: Sequence[Command]) -> asyncio.Future[list[Reply]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Reply]] = loop.create_future()
        self.waiters.append(_Waiter(future, len(commands)))
        # Commands of requests running in the same loop turn leave in one write (one
        # syscall here, one read in Redis).
        if not self._outgoing:
            loop.call_soon(self._flush)
        for command in commands:
            pack_into(self._outgoing, command)
        return future

    def _flush(self) -> None:
        data, self._outgoing = b"".join(self._outgoing), []
        if self.transport is not None and not self.lost:
            self.transport.write(data)


class DirectRedis:
    def __init__(self, redis: Redis, name: str) -> None:
        pool = redis.connection_pool
        self._name = name  # CLIENT SETNAME: operators can tell this connection apart
        # A connection object that is never connected: redis-py's parsed settings.
        self._settings: AbstractConnection = pool.connection_class(**pool.connection_kwargs)
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def execute(self, commands: Sequence[Command]) -> list[Reply]:
        """Send ``commands`` in one write; their replies, in order.  Error replies raise."""
        protocol = self._protocol
        if protocol is None or protocol.lost:  # not inline: one coroutine less per call
            protocol = await self._connected()
        try:
            replies = await protocol.send(commands)
        except RedisConnectionError:
            replies = await (await self._connected()).send(commands)
        for reply in replies:
            if isinstance(reply, ResponseError):
                if str(reply).startswith("NOSCRIPT"):
                    raise NoScriptError(str(reply))
                raise reply
        return replies

    async def _connected(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is None or self._protocol.lost:
                self._protocol = await self._connect()
            return self._protocol

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        settings = self._settings
        timeout = settings.socket_connect_timeout
        try:
            if isinstance(settings, UnixDomainSocketConnection):
                opening = loop.create_unix_connection(_Protocol, settings.path)
            else:
                ssl = settings.ssl_context.get() if isinstance(settings, SSLConnection) else None
                host = cast(str, getattr(settings, "host"))  # noqa: B009 - not on the base class
                port = cast(int, getattr(settings, "port"))  # noqa: B009
                opening = loop.create_connection(_Protocol, host, port, ssl=ssl)
            _, protocol = await asyncio.wait_for(opening, timeout)
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
        handshake: list[Command] = []
        username, password = settings.username, settings.password
        provider = getattr(settings, "credential_provider", None)
        if provider is not None:
            credentials = await provider.get_credentials_async()
            username, password = (None, *credentials)[-2:]
        if password is not None:
            handshake.append(("AUTH", *([username] if username else []), password))
        if settings.db:
            handshake.append(("SELECT", settings.db))
        handshake.append(("CLIENT", "SETNAME", self._name))
        for reply in await protocol.send(handshake):
            if isinstance(reply, ResponseError):
                cast(asyncio.Transport, protocol.transport).close()
                raise reply
        return protocol

    async def aclose(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()
            await protocol.closed


class DirectScript:
    """A Lua script called by EVALSHA, loaded on first use or after a SCRIPT FLUSH."""

    def __init__(self, direct: DirectRedis, source: str) -> None:
        self._direct = direct
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: Sequence[Arg], args: Sequence[Arg]) -> Reply:
        command = ("EVALSHA", self._sha, len(keys), *keys, *args)
        try:
            (reply,) = await self._direct.execute([command])
        except NoScriptError:
            await self._direct.execute([("SCRIPT", "LOAD", self._source)])
            (reply,) = await self._direct.execute([command])
        return reply
