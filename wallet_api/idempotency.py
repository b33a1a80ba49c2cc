"""``Idempotency-Key`` for create calls: a retried POST returns the first response.

A route opts in with ``opt={"idempotent": True}``.  The first request with a key claims it
(``SET NX``), runs, and stores its response for 24 h; a retry with the same key and the same
body gets that response again (``Idempotent-Replayed: true``); the same key with another body
is 422 ``idempotency_key_reused``; a retry while the first is still running is 409
``idempotency_key_in_use``.  Keys are scoped to the caller's credential, so two clients can
never see each other's responses.  5xx outcomes are not stored: the client may retry.

Key: ``idem:{<credential digest>}:<key digest>`` — msgpack ``StoredResponse``, TTL 24 h.
"""

from __future__ import annotations

import hashlib
from typing import cast

import msgspec
from litestar.handlers import HTTPRouteHandler
from litestar.types import (
    ASGIApp,
    HTTPDisconnectEvent,
    HTTPRequestEvent,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)
from redis.asyncio import Redis

from kernel.keyring import Keyring
from kernel.keys import KeySpace
from wallet_api.body import read_body
from wallet_api.problems import Problem, send_problem

TTL_S = 24 * 3600
PENDING_TTL_S = 60


class StoredResponse(msgspec.Struct, kw_only=True):
    fingerprint: str
    status: int = 0
    content_type: str = ""
    body: bytes = b""


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(StoredResponse).decode


class IdempotencyStore:
    """Stored responses may carry secrets (a card number, an enrollment code), so their
    bodies are sealed with the keyring and request fingerprints are keyed hashes."""

    def __init__(self, redis: Redis, keys: KeySpace, keyring: Keyring) -> None:
        self._redis = redis
        self._keys = keys
        self._keyring = keyring

    def fingerprint(self, path: str, body: bytes) -> str:
        return self._keyring.blind_index("idempotency", path.encode() + b"\0" + body)

    def _key(self, credential: str, key: str) -> str:
        return self._keys.key("idem", credential, hashlib.sha256(key.encode()).hexdigest()[:32])

    async def claim(self, credential: str, key: str, fingerprint: str) -> StoredResponse | None:
        """Claim the key for a new request, or return what an earlier request left."""
        name = self._key(credential, key)
        pending = _encode(StoredResponse(fingerprint=fingerprint))
        if await self._redis.set(name, pending, nx=True, ex=PENDING_TTL_S):
            return None
        raw = await self._redis.get(name)
        if raw is None:  # expired between the two calls: treat as still running
            return StoredResponse(fingerprint=fingerprint)
        stored = _decode(cast(bytes, raw))
        if stored.body:
            stored.body = self._keyring.open(stored.body, name)
        return stored

    async def complete(self, credential: str, key: str, response: StoredResponse) -> None:
        name = self._key(credential, key)
        sealed = msgspec.structs.replace(response, body=self._keyring.seal(response.body, name))
        await self._redis.set(name, _encode(sealed), ex=TTL_S)

    async def release(self, credential: str, key: str) -> None:
        await self._redis.delete(self._key(credential, key))


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def _send_problem(send: Send, status: int, code: str, detail: str) -> None:
    await send_problem(send, Problem(title=detail, status=status, detail=detail, code=code))


async def _send(send: Send, status: int, content_type: str, body: bytes, *, replayed: bool) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        raw_key = _header(scope, b"idempotency-key")
        if raw_key is None or handler is None or not handler.opt.get("idempotent"):
            await self._app(scope, receive, send)
            return
        if not 1 <= len(raw_key) <= 255 or not raw_key.isascii() or not raw_key.strip():
            await _send_problem(
                send, 400, "invalid_idempotency_key", "Idempotency-Key must be 1-255 ASCII chars"
            )
            return
        await self._run_once(scope, receive, send, raw_key.decode())

    async def _run_once(self, scope: Scope, receive: Receive, send: Send, key: str) -> None:
        store: IdempotencyStore = scope["litestar_app"].state.services.idempotency
        handler = scope["route_handler"]
        limit = (
            handler.resolve_request_max_body_size()
            if isinstance(handler, HTTPRouteHandler)
            else None
        ) or (1 << 20)
        body = await read_body(receive, limit)
        if body is None:
            await _send_problem(send, 413, "body_too_large", "The request body is too large")
            return
        credential = hashlib.sha256(_header(scope, b"authorization") or b"-").hexdigest()[:32]
        fingerprint = store.fingerprint(scope["path"], body)
        earlier = await store.claim(credential, key, fingerprint)
        if earlier is not None:
            await self._answer_retry(send, earlier, fingerprint)
            return
        captured = StoredResponse(fingerprint=fingerprint)
        await self._run(scope, body, send, captured, store, credential, key)

    @staticmethod
    async def _answer_retry(send: Send, earlier: StoredResponse, fingerprint: str) -> None:
        if earlier.fingerprint != fingerprint:
            await _send_problem(
                send,
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was used for another request",
            )
        elif earlier.status == 0:
            await _send_problem(
                send,
                409,
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is running",
            )
        else:
            await _send(send, earlier.status, earlier.content_type, earlier.body, replayed=True)

    async def _run(
        self,
        scope: Scope,
        body: bytes,
        send: Send,
        captured: StoredResponse,
        store: IdempotencyStore,
        credential: str,
        key: str,
    ) -> None:
        delivered = False

        async def replay_body() -> ReceiveMessage:
            nonlocal delivered
            if delivered:
                return HTTPDisconnectEvent(type="http.disconnect")
            delivered = True
            return HTTPRequestEvent(type="http.request", body=body, more_body=False)

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured.status = message["status"]
                for name, value in message.get("headers", []):
                    if name == b"content-type":
                        captured.content_type = value.decode()
            elif message["type"] == "http.response.body":
                captured.body += message.get("body", b"")
            await send(message)

        try:
            await self._app(scope, replay_body, capture)
        except BaseException:
            await store.release(credential, key)
            raise
        if 0 < captured.status < 500:
            await store.complete(credential, key, captured)
        else:
            await store.release(credential, key)
