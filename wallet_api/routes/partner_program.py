from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from issuers.programs.models import ApiKey, CreateApiKey, Issuer, NewApiKey, ProgramFields
from wallet_api.dependencies import PARTNER, PrincipalDep, ServicesDep, requires
from wallet_api.openapi_docs import AUTHED, problems


class PartnerProgramController(Controller):
    path = "/v1/partner"
    tags = ["partner: program"]
    dependencies = PARTNER
    before_request = requires("partner")
    security = [{"BearerAuth": []}]

    @get(
        "/issuer",
        operation_id="getPartnerIssuer",
        summary="The partner's program",
        responses=problems(*AUTHED),
    )
    async def get_issuer(self, services: ServicesDep, partner: PrincipalDep) -> Issuer:
        """Name, branding, barcode format, number rules and code policy."""
        return await services.programs.get(partner.subject_id)

    @patch(
        "/issuer",
        operation_id="updatePartnerIssuer",
        summary="Change the program",
        responses=problems(*AUTHED),
    )
    async def update_issuer(
        self, services: ServicesDep, partner: PrincipalDep, data: JSONBody[ProgramFields]
    ) -> Issuer:
        """Fields left out stay as they are; lists (number_patterns) are replaced whole."""
        return await services.programs.update(partner.subject_id, data)

    @get(
        "/api-keys",
        operation_id="listApiKeys",
        summary="The program's API keys",
        responses=problems(*AUTHED),
    )
    async def list_keys(self, services: ServicesDep, partner: PrincipalDep) -> list[ApiKey]:
        """Key ids, labels and creation times; the secrets themselves are never shown again."""
        return await services.programs.list_keys(partner.subject_id)

    @post(
        "/api-keys",
        operation_id="createApiKey",
        summary="Create another API key (for rotation)",
        status_code=HTTP_201_CREATED,
        opt={"idempotent": True},
        responses=problems(*AUTHED),
    )
    async def create_key(
        self,
        services: ServicesDep,
        partner: PrincipalDep,
        data: JSONBody[CreateApiKey | None] = None,
    ) -> NewApiKey:
        """The new key is shown once; revoke the old one when every client uses the new one."""
        return await services.programs.create_key(partner.subject_id, data or CreateApiKey())

    @delete(
        "/api-keys/{key_id:str}",
        operation_id="revokeApiKey",
        summary="Revoke an API key at once",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(*AUTHED, 404),
    )
    async def revoke_key(
        self, services: ServicesDep, partner: PrincipalDep, key_id: FromPath[str]
    ) -> None:
        """The key stops working immediately. The last remaining key cannot be revoked."""
        await services.programs.revoke_key(partner.subject_id, key_id)
