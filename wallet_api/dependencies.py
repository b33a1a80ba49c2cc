"""Litestar dependencies and hooks: the services container and the four principal kinds.

Every authenticated controller declares ``before_request = requires(kind)``
(authentication and the kind check, run before the body is read) and
``dependencies = <KIND>`` (hands the principal to handlers that want it). No handler of
such a controller declares a ``before_request`` of its own: it would replace the
controller's (tests/wallet_api/test_auth.py sends every route a request without
credentials). POS verification authenticates in its own hook (routes/pos.py), and most
location reports never reach Litestar (location_fast_path.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Scope

from wallet_api.auth import Principal, PrincipalKind
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

    def __init__(self, kind: PrincipalKind) -> None:
        self.kind: PrincipalKind = kind

    async def __call__(self, request: AnyRequest) -> None:
        auth = services_of(request).auth
        # The scope's state dict itself: ``request.state`` builds a State object per access.
        request.scope["state"][_PRINCIPAL] = await auth.require(
            authorization_of(request), self.kind
        )


_PRINCIPAL = "wallet.principal"


def authorization_of(request: AnyRequest | Scope) -> str | None:
    """The Authorization header, straight from the ASGI scope: building Litestar's Headers
    object for one header costs more than the scan (it is read on every request)."""
    scope = request if isinstance(request, dict) else request.scope
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value.decode("latin-1")
    return None


async def _principal(request: AnyRequest, services: ServicesDep) -> Principal:
    """The principal ``requires`` authenticated."""
    # ``services`` is unused: asking for it makes Litestar resolve the two dependencies one
    # after the other.  Independent dependencies are resolved in an anyio task group, which
    # costs more than both of them (measured: about a fifth of a user request).
    del services
    principal: Principal = request.scope["state"][_PRINCIPAL]
    return principal


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
