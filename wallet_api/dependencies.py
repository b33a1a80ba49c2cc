"""Litestar dependencies and hooks: the services container and the four principal kinds.

Every authenticated controller declares ``before_request = requires(kind)``
(authentication and the kind check, run before the body is read) and, unless its handlers
read the principal from the scope (``principal_of``: the location route),
``dependencies = <KIND>`` (hands the principal to handlers that want it). No handler of
such a controller declares a ``before_request`` of its own: it would replace the
controller's (tests/wallet_api/test_auth.py sends every route a request without
credentials). POS verification authenticates in its own hook (routes/pos.py).

Location reports admit a user token their process has resolved before without looking it
up again (``requires(..., checked_by_handler=True)``): the presence script checks it in the
same round trip.  Every answer that script did not give (a bad body, a loading index, a
withdrawn consent) is a non-2xx one, and ``RecheckCredentialOnError`` looks the token up
before it leaves: a token that no longer holds gets 401, whatever else was wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.exceptions import RedisError

from kernel.errors import Unauthenticated, Unavailable
from wallet_api.auth import InvalidToken, Principal, PrincipalKind
from wallet_api.errors import domain_problem
from wallet_api.problems import Problem, send_problem
from wallet_api.services import Services

AnyRequest = Request[Any, Any, Any]

# Handler parameters name their dependencies explicitly (Litestar 3 drops inference).
ServicesDep = NamedDependency[Services]
PrincipalDep = NamedDependency[Principal]


def services_of(connection: ASGIConnection) -> Services:  # type: ignore[type-arg]
    services: Services = connection.app.state.services
    return services


async def _services(request: AnyRequest) -> Services:
    return services_of(request)


class requires:
    """The ``before_request`` hook of every authenticated controller: authenticates the
    bearer token and admits only ``kind`` credentials, before the body is read and whether
    or not the handler asks for the principal.

    A hook rather than a guard: Litestar copies the route handler object for every guard
    call (~10 µs a request).  A handler-level ``before_request`` would replace the
    controller's, so no authenticated handler declares one (a test sends every route a
    request without credentials and expects 401).  An object, not a closure, so that a
    controller attribute holding it is not bound as a method."""

    def __init__(self, kind: PrincipalKind, *, checked_by_handler: bool = False) -> None:
        # Only user tokens are remembered (``Authenticator.known_user``).
        assert kind == "user" or not checked_by_handler, "only user credentials can be deferred"
        self.kind: PrincipalKind = kind
        # A user token this process resolved before is admitted without Redis; the handler
        # must have it checked by its first Redis call (``unchecked_credential``).
        self.checked_by_handler = checked_by_handler

    async def __call__(self, request: AnyRequest) -> None:
        auth = services_of(request).auth
        header = authorization_of(request)
        # The scope's state dict itself: ``request.state`` builds a State object per access.
        state = request.scope["state"]
        if self.checked_by_handler and (known := auth.known_user(header)) is not None:
            state[_PRINCIPAL], state[_UNCHECKED] = known
            return
        state[_PRINCIPAL] = await auth.require(header, self.kind)


_PRINCIPAL = "wallet.principal"
_UNCHECKED = "wallet.unchecked-credential"


def unchecked_credential(request: AnyRequest) -> str | None:
    """The token digest ``requires(..., checked_by_handler=True)`` admitted unchecked."""
    digest: str | None = request.scope["state"].get(_UNCHECKED)
    return digest


class RecheckCredentialOnError:
    """Route middleware of every controller whose hook is ``requires(kind,
    checked_by_handler=True)``: a non-2xx answer to a request admitted on a remembered
    token is sent only once the token is looked up and still holds; else the answer is 401
    ``invalid_token`` (and the token is forgotten).  A 2xx answer never needs it: it comes
    from the script that checked the token; a 401 is that script's refusal, and only makes
    this process forget the token."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        replaced = False

        async def send_checked(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the refused answer's body
            if message["type"] == "http.response.start" and message["status"] not in _CHECKED:
                digest = scope["state"].pop(_UNCHECKED, None)
                if digest is not None and message["status"] == 401:
                    scope["app"].state.services.auth.forget_user(digest)  # the script refused
                elif digest is not None:
                    refusal = await _refusal(scope, digest)
                    if refusal is not None:
                        replaced = True
                        await send_problem(send, refusal)
                        return
            await send(message)

        await self._app(scope, receive, send_checked)


# 2xx answers come from the script that checked the token.
_CHECKED = range(200, 300)


async def _still_holds(scope: Scope, token_digest: str) -> bool:
    auth = scope["app"].state.services.auth
    try:
        await auth.authenticate(authorization_of(scope))
    except Unauthenticated:
        auth.forget_user(token_digest)
        return False
    return True


async def _refusal(scope: Scope, token_digest: str) -> Problem | None:
    """What to answer instead: 401 when the token no longer holds, 503 when Redis cannot
    tell (an error answer must not go out on a token nobody checked); None: send it."""
    request_id = scope["state"].get("request_id")
    try:
        if await _still_holds(scope, token_digest):
            return None
    except (RedisError, OSError):
        unreachable = Unavailable("Redis is not reachable", code="redis_unavailable")
        return domain_problem(unreachable, request_id)
    return domain_problem(InvalidToken("the token is not valid"), request_id)


def authorization_of(request: AnyRequest | Scope) -> str | None:
    """The Authorization header, straight from the ASGI scope: building Litestar's Headers
    object for one header costs more than the scan (it is read on every request)."""
    scope = request if isinstance(request, dict) else request.scope
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value.decode("latin-1")
    return None


def principal_of(request: AnyRequest) -> Principal:
    """The principal ``requires`` authenticated, for hot handlers that skip injection."""
    principal: Principal = request.scope["state"][_PRINCIPAL]
    return principal


async def _principal(request: AnyRequest, services: ServicesDep) -> Principal:
    # ``services`` is unused: asking for it makes Litestar resolve the two dependencies one
    # after the other.  Independent dependencies are resolved in an anyio task group, which
    # costs more than both of them (measured: about a fifth of a user request).
    del services
    return principal_of(request)


SERVICES = {"services": Provide(_services)}
USER = {**SERVICES, "user": Provide(_principal)}
PARTNER = {**SERVICES, "partner": Provide(_principal)}
ADMIN = {**SERVICES, "admin": Provide(_principal)}
TERMINAL = {**SERVICES, "terminal": Provide(_principal)}


def rate_limited(
    name: str, per_minute: Callable[[Services], int]
) -> Callable[..., Awaitable[None]]:
    """A guard that counts each call per client (credential, else address) for ``name``."""

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
        services = services_of(connection)
        credential = connection.headers.get("authorization")
        if credential:
            subject = hashlib.sha256(credential.encode()).hexdigest()[:32]
        else:
            subject = connection.client.host if connection.client else "unknown"
        await services.rate_limiter.hit(name, subject, per_minute(services), 60)

    return guard
