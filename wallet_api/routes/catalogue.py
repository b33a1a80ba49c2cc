from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from issuers.programs.models import CatalogueEntry, Recognition, RecognizeNumber
from kernel.structs import Page
from wallet_api.dependencies import USER, ServicesDep, requires
from wallet_api.openapi_docs import AUTHED, problems


class CatalogueController(Controller):
    path = "/v1/issuers"
    tags = ["users: catalogue"]
    dependencies = USER
    before_request = requires("user")
    security = [{"BearerAuth": []}]

    @get(
        "/",
        operation_id="listIssuers",
        summary="Programs a user can add",
        responses=problems(*AUTHED),
    )
    async def list_issuers(
        self,
        services: ServicesDep,
        q: Annotated[str | None, QueryParameter(max_length=80, description="Name search")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Page[CatalogueEntry]:
        """The catalogue for the add-card screen: name, branding and barcode format."""
        return await services.programs.catalogue(q, limit, cursor)

    @post(
        "/recognize",
        operation_id="recognizeNumber",
        summary="Which programs a card number belongs to",
        status_code=HTTP_200_OK,
        responses=problems(*AUTHED),
    )
    async def recognize(
        self, services: ServicesDep, data: JSONBody[RecognizeNumber]
    ) -> Recognition:
        """Ranks programs whose rules (prefix, regex, length, check digit) match the number."""
        return await services.programs.recognize(data.number)
