from __future__ import annotations

from litestar import Controller, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED

from issuers.programs.models import CreatedIssuer, CreateIssuer
from wallet_api.dependencies import ADMIN, ServicesDep, requires
from wallet_api.openapi_docs import AUTHED, problems


class AdminIssuersController(Controller):
    path = "/v1/admin/issuers"
    tags = ["admin"]
    dependencies = ADMIN
    before_request = requires("admin")
    security = [{"BearerAuth": []}]

    @post(
        "/",
        operation_id="createIssuer",
        summary="Create a loyalty program and its first partner API key",
        status_code=HTTP_201_CREATED,
        opt={"idempotent": True},
        responses=problems(*AUTHED, 409, 413),
    )
    async def create_issuer(
        self, services: ServicesDep, data: JSONBody[CreateIssuer]
    ) -> CreatedIssuer:
        """The partner API key is shown only in this response; only its hash is stored."""
        return await services.programs.create(data)
