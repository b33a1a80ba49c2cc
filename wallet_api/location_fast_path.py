"""``POST /v1/me/location`` answered outside Litestar when the answer is a plain success.

The phone's most frequent call is the one issue 5 measures against the one-round-trip
baseline, and Litestar's per-request work (the request object, the hook, the kwargs, the
response object) was ~170 µs of the worker's ~490 µs per walking report (docs/benchmarks.md).
This layer sits outside routing and answers a report itself only when all of these hold:

- the bearer token is a user token this worker resolved before
  (``Authenticator.known_user``); the presence scripts check it in the same round trip as
  the state (``UserService.credential_check``), so an erased user is refused at once;
- the body is within the route's limit and decodes as a ``LocationReport``;
- the presence service answers without raising.

Every other request goes on to the Litestar route (``routes/presence.py``) with the body
replayed: it authenticates the token in full and answers every error exactly as the rest of
the API does, and it is the route the OpenAPI document describes.  The service raises those
errors before it writes anything (the write-back is one script that applies the whole
outcome or refuses it), so the route runs the report again harmlessly.  The one exception
is answered here: Redis lost or timed out is 503 ``redis_unavailable``, as the route would
answer, because the script may have run before its reply was lost.
"""

from __future__ import annotations

from typing import Any

from litestar.enums import ScopeType
from litestar.serialization import encode_json
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)
from prometheus_client import Counter

from geofence.errors import CredentialRevoked
from geofence.models import LocationReport
from kernel.errors import Unauthenticated
from wallet_api.body import read_body, struct_decoder
from wallet_api.dependencies import authorization_of
from wallet_api.errors import REDIS_UNREACHABLE, redis_unreachable_problem
from wallet_api.problems import Problem, send_problem
from wallet_api.routes.presence import EVIDENCE_MAX_BODY_BYTES, LOCATION_PATH
from wallet_api.services import Services

_ANSWERS = Counter(
    "wallet_location_fast_path_total",
    "Location reports by who answered: this layer, or the Litestar route it passed them to",
    ["by"],
)
ANSWERED = _ANSWERS.labels("fast_path")
PASSED = _ANSWERS.labels("route")

_decode_report = struct_decoder(LocationReport).decode


class LocationFastPath:
    """ASGI layer inside ``Observability`` (so these answers are logged and counted too) and
    outside Litestar's routing."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != ScopeType.HTTP
            or scope["method"] != "POST"
            or scope["path"] != LOCATION_PATH
        ):
            await self._app(scope, receive, send)
            return
        read: list[ReceiveMessage] = []
        answer = await _answer(scope["app"].state.services, scope, _recording(receive, read))
        if answer is None:
            PASSED.inc()
            await self._app(scope, _replaying(read, receive), send)
            return
        ANSWERED.inc()
        scope["path_template"] = LOCATION_PATH  # what Litestar's routing would have set
        if isinstance(answer, Problem):
            await send_problem(send, answer)
            return
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(answer)),
        ]
        await send(HTTPResponseStartEvent(type="http.response.start", status=200, headers=headers))
        await send(HTTPResponseBodyEvent(type="http.response.body", body=answer, more_body=False))


async def _answer(services: Services, scope: Scope, receive: Receive) -> bytes | Problem | None:
    """The 200 body, the 503 problem, or None: the Litestar route is to answer."""
    try:
        known = services.auth.known_user(authorization_of(scope))
    except Unauthenticated:
        return None
    if known is None or not _announced_within_limit(scope):
        return None
    try:
        body = await read_body(receive, EVIDENCE_MAX_BODY_BYTES)
        report = _decode_report(body) if body else None
    except Exception:  # a disconnect, malformed JSON, a wrong field: the route's to answer
        return None
    if report is None:
        return None
    principal, token_digest = known
    check = services.users.credential_check(principal.subject_id, token_digest)
    try:
        result = await services.presence.report_location(principal.subject_id, report, check)
    except CredentialRevoked:
        services.auth.forget_user(token_digest)  # the route looks it up again, and refuses
        return None
    except REDIS_UNREACHABLE:
        return redis_unreachable_problem(LOCATION_PATH, scope["state"].get("request_id"))
    except Exception:
        # No consent, a bad batch, a loading index, a busy user: raised before any write,
        # and the route's to answer after it has authenticated the token.
        return None
    return encode_json(result)


def _announced_within_limit(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.isdigit() and int(value) <= EVIDENCE_MAX_BODY_BYTES
    return True  # no length announced: the read stops at the limit


def _recording(receive: Receive, read: list[ReceiveMessage]) -> Receive:
    async def recorded() -> Any:
        message = await receive()
        read.append(message)
        return message

    return recorded


def _replaying(read: list[ReceiveMessage], receive: Receive) -> Receive:
    """The messages this layer read, then the rest of the connection's."""
    pending = iter(read)

    async def replayed() -> Any:
        message = next(pending, None)
        return message if message is not None else await receive()

    return replayed
