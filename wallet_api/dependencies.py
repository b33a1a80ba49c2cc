"""Litestar dependencies and guards: the services container and the four principal kinds.

Every authenticated controller declares both ``guards = [requires(kind)]`` (authentication
and the kind check, always run) and ``dependencies = <KIND>`` (hands the principal to
handlers that want it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

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


def requires(kind: PrincipalKind) -> Guard:
    """A guard admitting only ``kind`` credentials; it runs whether or not the handler
    asks for the principal, so no route can forget to authenticate."""

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
        auth = services_of(connection).auth
        header = connection.headers.get("authorization")
        connection.state.principal = await auth.require(header, kind)

    guard.__name__ = f"requires_{kind}"
    return guard


async def _principal(request: AnyRequest, services: ServicesDep) -> Principal:
    # ``services`` is unused: asking for it makes Litestar resolve the two dependencies one
    # after the other.  Independent dependencies are resolved in an anyio task group, which
    # costs more than both of them (measured: about a fifth of a user request).
    del services
    principal: Principal = request.state.principal
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
