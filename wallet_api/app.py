"""``create_app(settings)``: the Litestar application, its lifespan and its routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from redis.asyncio import Redis

from kernel import compiled
from wallet_api.errors import EXCEPTION_HANDLERS
from wallet_api.idempotency import IdempotencyMiddleware
from wallet_api.location_fast_path import LocationFastPath
from wallet_api.observability import Observability
from wallet_api.routes.admin import AdminIssuersController
from wallet_api.routes.cards import CardsController
from wallet_api.routes.catalogue import CatalogueController
from wallet_api.routes.codes import CardCodesController
from wallet_api.routes.health import HealthController
from wallet_api.routes.partner_members import (
    PartnerEnrollmentsController,
    PartnerMembersController,
)
from wallet_api.routes.partner_program import PartnerProgramController
from wallet_api.routes.partner_stores import PartnerStoresController
from wallet_api.routes.partner_terminals import PartnerTerminalsController, PosController
from wallet_api.routes.pos import PartnerVerificationsController, PosVerifyController
from wallet_api.routes.presence import ConsentController, PresenceController
from wallet_api.routes.users import MeController, SignupController
from wallet_api.services import build_services
from wallet_api.settings import Settings
from wallet_api.worker import running_tasks

log = logging.getLogger("wallet.app")

API_VERSION = "0.1.0"
ROUTE_HANDLERS = [
    HealthController,
    SignupController,
    MeController,
    AdminIssuersController,
    PartnerProgramController,
    CatalogueController,
    PartnerMembersController,
    PartnerEnrollmentsController,
    CardsController,
    PartnerStoresController,
    PartnerTerminalsController,
    PosController,
    CardCodesController,
    PosVerifyController,
    PartnerVerificationsController,
    ConsentController,
    PresenceController,
]


def openapi_config(enabled: bool = True) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Card Wallet API",
        version=API_VERSION,
        description=(
            "Loyalty cards from many retailers in one wallet, rotating one-time codes verified "
            "at the till, and presence-triggered personal coupons. Errors are RFC 9457 "
            "problem+json with a stable `code`."
        ),
        use_handler_docstrings=True,
        components=Components(
            security_schemes={
                "BearerAuth": SecurityScheme(type="http", scheme="bearer", bearer_format="opaque")
            }
        ),
        path="/docs",
        render_plugins=[SwaggerRenderPlugin(path="/swagger"), RedocRenderPlugin(path="/redoc")]
        if enabled
        else [],
    )


def create_app(settings: Settings) -> Litestar:
    """The whole HTTP service; Redis is connected in the lifespan and closed on shutdown."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        assert settings.redis_url, "resolve the embedded Redis before create_app"
        redis = Redis.from_url(settings.redis_url, max_connections=256)
        app.state.services = build_services(settings, redis)
        log.info("presence modules", extra={"compiled": compiled.active()})
        try:
            async with running_tasks(app.state.services, run_jobs=settings.run_worker):
                yield
        finally:
            await app.state.services.direct.aclose()
            await redis.aclose()

    app = Litestar(
        route_handlers=ROUTE_HANDLERS,
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[DefineMiddleware(IdempotencyMiddleware)],
        openapi_config=openapi_config(settings.docs_enabled),
        request_max_body_size=settings.max_body_bytes,
        debug=False,
        logging_config=None,
    )
    # Outside routing: unmatched paths are logged and counted too (Observability, outermost),
    # and most location reports are answered without the framework (LocationFastPath).
    app.asgi_handler = Observability(LocationFastPath(app.asgi_handler))
    return app
