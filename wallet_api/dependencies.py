"""Litestar dependencies: the services container and the four principal kinds."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler

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


def _principal_of(kind: PrincipalKind) -> Callable[[AnyRequest], Awaitable[Principal]]:
    async def provide(request: AnyRequest) -> Principal:
        auth = services_of(request).auth
        return await auth.require(request.headers.get("authorization"), kind)

    provide.__name__ = f"require_{kind}"
    return provide


SERVICES = {"services": Provide(_services)}
USER = {**SERVICES, "user": Provide(_principal_of("user"))}
PARTNER = {**SERVICES, "partner": Provide(_principal_of("partner"))}
ADMIN = {**SERVICES, "admin": Provide(_principal_of("admin"))}
TERMINAL = {**SERVICES, "terminal": Provide(_principal_of("terminal"))}


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
