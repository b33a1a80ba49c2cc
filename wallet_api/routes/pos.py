from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from kernel import tokens
from kernel.structs import Page
from wallet_api.body import StructBody
from wallet_api.dependencies import (
    PARTNER,
    AnyRequest,
    PrincipalDep,
    ServicesDep,
    authorization_of,
    requires,
    services_of,
)
from wallet_api.openapi_docs import AUTHED, problems
from wallet_api.pos.models import Verification, VerificationEntry, VerifyCode
from wallet_api.problems import PROBLEM_MEDIA_TYPE, Problem

_REJECTIONS = {
    409: "`code_replayed`: this code was accepted once already",
    422: "`code_unknown`, `code_expired`, `code_wrong_issuer` (another program's card), "
    "`code_static_not_allowed` (a card number where the program demands dynamic codes), "
    "or invalid fields",
    429: "`too_many_attempts`: this terminal or card reference is locked (see Retry-After)",
}


def _verify_responses() -> dict[int, ResponseSpec]:
    responses = problems(*AUTHED, 409, 413, 429)
    for status, description in _REJECTIONS.items():
        responses[status] = ResponseSpec(
            data_container=Problem,
            description=description,
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
    return responses


_TERMINAL_DIGEST = "pos.terminal_key_digest"


async def terminal_key(request: AnyRequest) -> None:
    """Authenticates the verify route (before its body is read, as a guard would).

    It checks the header's shape only: the verification resolves the terminal's key itself
    (from its per-process cache, checked by its script, or with its first read), so
    authentication costs no round trip of its own.  Other
    credentials still get 401/403 as everywhere: they go through the usual authentication.
    A ``before_request`` hook rather than a guard: Litestar copies the handler object for
    every guard call, a cost this route (measured against a one-round-trip baseline)
    cannot afford.
    """
    auth = services_of(request).auth
    header = authorization_of(request)
    prefix, digest = auth.bearer_digest(header)
    if prefix != tokens.TERMINAL_PREFIX or auth.is_admin(digest):
        await auth.require(header, "terminal")
    # The scope's state dict itself: ``request.state`` builds a State object on every access.
    request.scope["state"][_TERMINAL_DIGEST] = digest


class PosVerifyController(Controller):
    path = "/v1/pos"
    tags = ["pos"]
    security = [{"BearerAuth": []}]

    @post(
        "/verify",
        operation_id="verifyCode",
        summary="Verify the code a member shows at the till",
        status_code=HTTP_200_OK,
        before_request=terminal_key,
        responses=_verify_responses(),
        dto=StructBody[VerifyCode],
        return_dto=None,
    )
    async def verify(self, request: AnyRequest, data: JSONBody[VerifyCode]) -> Verification:
        """The member behind a code, accepted at most once; each rejection carries a code."""
        # No dependency injection on this hot path (measured, docs/benchmarks.md): the
        # services come from the app state and the digest from the before_request hook.
        services = services_of(request)
        return await services.pos.verify(request.scope["state"][_TERMINAL_DIGEST], data.payload)


class PartnerVerificationsController(Controller):
    path = "/v1/partner/verifications"
    tags = ["partner: verifications"]
    dependencies = PARTNER
    before_request = requires("partner")
    security = [{"BearerAuth": []}]

    @get(
        "/",
        operation_id="listVerifications",
        summary="Verification attempts at the program's tills",
        responses=problems(*AUTHED),
    )
    async def list_verifications(
        self,
        services: ServicesDep,
        partner: PrincipalDep,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Page[VerificationEntry]:
        """Newest first, kept 90 days: time, terminal, store, card, outcome, method."""
        return await services.pos.log(partner.subject_id, limit, cursor)
