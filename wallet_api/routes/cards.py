from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, delete, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from kernel.structs import Page
from wallet_api.cards.models import AddCard, Card, UpdateCard
from wallet_api.dependencies import USER, PrincipalDep, ServicesDep, requires
from wallet_api.openapi_docs import AUTHED, problems

# A barcode shows the card number: no cache (shared or private) may keep it.
_NO_STORE = {"Cache-Control": "no-store"}
SVG = "image/svg+xml"
PNG = "image/png"


def _image(media_type: str) -> dict[int, ResponseSpec]:
    return {
        200: ResponseSpec(
            data_container=bytes,
            media_type=media_type,
            description="The barcode image",
            generate_examples=False,
        ),
        **problems(*AUTHED, 404),
    }


class CardsController(Controller):
    path = "/v1/me/cards"
    tags = ["users: cards"]
    dependencies = USER
    before_request = requires("user")
    security = [{"BearerAuth": []}]

    @post(
        "/",
        operation_id="addCard",
        summary="Add a card by number or enrollment code",
        status_code=HTTP_201_CREATED,
        opt={"idempotent": True},
        responses=problems(*AUTHED, 404, 409, 413),
    )
    async def add_card(
        self, services: ServicesDep, user: PrincipalDep, data: JSONBody[AddCard]
    ) -> Card:
        """A number (program recognised when not given, else a custom card) or a partner's code."""
        return await services.cards.add(user.subject_id, data)

    @get("/", operation_id="listCards", summary="The user's cards", responses=problems(*AUTHED))
    async def list_cards(
        self,
        services: ServicesDep,
        user: PrincipalDep,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Page[Card]:
        """In the user's order: position, then creation time."""
        return await services.cards.list_cards(user.subject_id, limit, cursor)

    @get(
        "/{card_id:str}",
        operation_id="getCard",
        summary="One card",
        responses=problems(*AUTHED, 404),
    )
    async def get_card(
        self, services: ServicesDep, user: PrincipalDep, card_id: FromPath[str]
    ) -> Card:
        """Program branding, number, kind, and the member data the partner shares."""
        return await services.cards.get(user.subject_id, card_id)

    @patch(
        "/{card_id:str}",
        operation_id="updateCard",
        summary="Change a card's label, position or favourite flag",
        responses=problems(*AUTHED, 404),
    )
    async def update_card(
        self,
        services: ServicesDep,
        user: PrincipalDep,
        card_id: FromPath[str],
        data: JSONBody[UpdateCard],
    ) -> Card:
        """Fields left out stay as they are; label null clears the label."""
        return await services.cards.update(user.subject_id, card_id, data)

    @delete(
        "/{card_id:str}",
        operation_id="deleteCard",
        summary="Remove a card from the wallet",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(*AUTHED, 404),
    )
    async def delete_card(
        self, services: ServicesDep, user: PrincipalDep, card_id: FromPath[str]
    ) -> None:
        """The card and its number are gone at once; adding it again is allowed."""
        await services.cards.delete(user.subject_id, card_id)

    @get(
        "/{card_id:str}/barcode.svg",
        operation_id="getCardBarcodeSvg",
        summary="The card's static barcode as SVG",
        media_type=SVG,
        responses=_image(SVG),
    )
    async def barcode_svg(
        self, services: ServicesDep, user: PrincipalDep, card_id: FromPath[str]
    ) -> Response[bytes]:
        """The number drawn in the card's barcode format; never cached."""
        svg = await services.cards.barcode(user.subject_id, card_id, "svg")
        return Response(svg, media_type=SVG, headers=_NO_STORE)

    @get(
        "/{card_id:str}/barcode.png",
        operation_id="getCardBarcodePng",
        summary="The card's static barcode as PNG",
        media_type=PNG,
        responses=_image(PNG),
    )
    async def barcode_png(
        self, services: ServicesDep, user: PrincipalDep, card_id: FromPath[str]
    ) -> Response[bytes]:
        """The number drawn in the card's barcode format; never cached."""
        png = await services.cards.barcode(user.subject_id, card_id, "png")
        return Response(png, media_type=PNG, headers=_NO_STORE)
