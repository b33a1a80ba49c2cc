from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from litestar.status_codes import HTTP_201_CREATED

from wallet_api.codes.models import OneTimeCode, TotpProvisioning
from wallet_api.dependencies import USER, PrincipalDep, ServicesDep, requires
from wallet_api.openapi_docs import AUTHED, problems

# A code image proves membership for a short while: no cache may keep it.
_NO_STORE = {"Cache-Control": "no-store"}
SVG = "image/svg+xml"
PNG = "image/png"


def _image(media_type: str) -> dict[int, ResponseSpec]:
    return {
        200: ResponseSpec(
            data_container=bytes,
            media_type=media_type,
            description="The current dynamic code as an image",
            generate_examples=False,
        ),
        **problems(*AUTHED, 404, 409),
    }


class CardCodesController(Controller):
    path = "/v1/me/cards"
    tags = ["users: dynamic codes"]
    dependencies = USER
    before_request = requires("user")
    security = [{"BearerAuth": []}]

    @get(
        "/{card_id:str}/totp",
        operation_id="getCardTotp",
        summary="Provisioning data of the card's rotating (TOTP) code",
        responses=problems(*AUTHED, 404, 409),
    )
    async def get_totp(
        self, services: ServicesDep, user: PrincipalDep, card_id: FromPath[str]
    ) -> Response[TotpProvisioning]:
        """Secret, period, digits, payload pattern, and Google Wallet's rotatingBarcode."""
        provisioning = await services.codes.totp(user.subject_id, card_id)
        return Response(provisioning, headers=_NO_STORE)

    @post(
        "/{card_id:str}/codes",
        operation_id="createCardCode",
        summary="A one-time code for the till",
        status_code=HTTP_201_CREATED,
        opt={"idempotent": True},
        responses=problems(*AUTHED, 404, 409),
    )
    async def create_code(
        self, services: ServicesDep, user: PrincipalDep, card_id: FromPath[str]
    ) -> Response[OneTimeCode]:
        """A random numeric token, accepted once, until expires_at (the program's TTL)."""
        code = await services.codes.mint(user.subject_id, card_id)
        return Response(code, status_code=HTTP_201_CREATED, headers=_NO_STORE)

    @get(
        "/{card_id:str}/code.svg",
        operation_id="getCardCodeSvg",
        summary="The card's current dynamic code as SVG",
        media_type=SVG,
        responses=_image(SVG),
    )
    async def code_svg(
        self, services: ServicesDep, user: PrincipalDep, card_id: FromPath[str]
    ) -> Response[bytes]:
        """TOTP cards: the code of the current step; one-time programs: a fresh token."""
        svg = await services.codes.image(user.subject_id, card_id, "svg")
        return Response(svg, media_type=SVG, headers=_NO_STORE)

    @get(
        "/{card_id:str}/code.png",
        operation_id="getCardCodePng",
        summary="The card's current dynamic code as PNG",
        media_type=PNG,
        responses=_image(PNG),
    )
    async def code_png(
        self, services: ServicesDep, user: PrincipalDep, card_id: FromPath[str]
    ) -> Response[bytes]:
        """TOTP cards: the code of the current step; one-time programs: a fresh token."""
        png = await services.codes.image(user.subject_id, card_id, "png")
        return Response(png, media_type=PNG, headers=_NO_STORE)
