from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from issuers.terminals.models import CreateTerminal, NewTerminal, Terminal, TerminalIdentity
from kernel.structs import Page
from wallet_api.dependencies import PARTNER, TERMINAL, PrincipalDep, ServicesDep, requires
from wallet_api.openapi_docs import AUTHED, problems


class PartnerTerminalsController(Controller):
    path = "/v1/partner/terminals"
    tags = ["partner: terminals"]
    dependencies = PARTNER
    before_request = requires("partner")
    security = [{"BearerAuth": []}]

    @post(
        "/",
        operation_id="createTerminal",
        summary="Create a till terminal and its key",
        status_code=HTTP_201_CREATED,
        opt={"idempotent": True},
        responses=problems(*AUTHED, 404, 413),
    )
    async def create_terminal(
        self, services: ServicesDep, partner: PrincipalDep, data: JSONBody[CreateTerminal]
    ) -> NewTerminal:
        """The key is shown only in this response; store_id must be one of the program's."""
        return await services.terminals.create(partner.subject_id, data)

    @get(
        "/",
        operation_id="listTerminals",
        summary="The program's terminals",
        responses=problems(*AUTHED),
    )
    async def list_terminals(
        self,
        services: ServicesDep,
        partner: PrincipalDep,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Page[Terminal]:
        """Terminals in creation order, without their keys."""
        return await services.terminals.list_terminals(partner.subject_id, limit, cursor)

    @delete(
        "/{terminal_id:str}",
        operation_id="revokeTerminal",
        summary="Revoke a terminal at once",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(*AUTHED, 404),
    )
    async def revoke_terminal(
        self, services: ServicesDep, partner: PrincipalDep, terminal_id: FromPath[str]
    ) -> None:
        """The terminal's key stops working immediately."""
        await services.terminals.revoke(partner.subject_id, terminal_id)


class PosController(Controller):
    path = "/v1/pos"
    tags = ["pos"]
    dependencies = TERMINAL
    before_request = requires("terminal")
    security = [{"BearerAuth": []}]

    @get(
        "/me",
        operation_id="getPosTerminal",
        summary="The calling terminal",
        responses=problems(*AUTHED, 404),
    )
    async def get_terminal(self, services: ServicesDep, terminal: PrincipalDep) -> TerminalIdentity:
        """Which terminal, program and store this key belongs to."""
        return await services.terminals.identity(terminal.issuer_id or "", terminal.subject_id)
