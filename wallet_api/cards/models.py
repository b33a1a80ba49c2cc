from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from issuers.members.models import MemberData
from issuers.programs.models import BarcodeFormat, CatalogueEntry
from kernel.structs import ApiModel, Record, RequestModel

CardKind = Literal["custom", "self_added", "enrolled"]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
Position = Annotated[
    int, msgspec.Meta(ge=0, le=100_000, description="Sort key: lower first, ties by creation")
]


class AddCard(RequestModel, kw_only=True):
    """Either ``number`` (a self-added or custom card) or ``enrollment_code`` (an enrolled one)."""

    number: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None
    issuer_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    barcode_format: BarcodeFormat | None = None
    label: Label | None = None
    enrollment_code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class UpdateCard(RequestModel, kw_only=True):
    """Fields left out stay as they are; ``label: null`` clears the label."""

    label: Label | msgspec.UnsetType | None = msgspec.UNSET
    position: Position | msgspec.UnsetType = msgspec.UNSET
    favorite: bool | msgspec.UnsetType = msgspec.UNSET


class CardRecord(Record):
    """A card as kept in Redis; the number is sealed (associated data ``card:<card id>``).

    ``dedupe_index`` is the user's blind index of (issuer or custom, number); ``ref_index`` the
    issuer's blind index of the number in ``cardref`` (None for custom cards).
    """

    card_id: str
    user_id: str
    kind: CardKind
    issuer_id: str | None
    number_sealed: bytes
    dedupe_index: str
    ref_index: str | None
    position: int
    created_at: float
    updated_at: float
    barcode_format: BarcodeFormat | None = None  # None: the issuer's current format
    label: str | None = None
    favorite: bool = False


class Card(ApiModel, kw_only=True):
    id: str
    kind: CardKind
    issuer: CatalogueEntry | None  # null for custom cards (always present in the JSON)
    number: str
    barcode_format: BarcodeFormat
    position: int
    favorite: bool
    created_at: datetime
    label: str | None = None
    member: MemberData | None = None  # enrolled cards: what the partner shares


class CardHolder(msgspec.Struct, frozen=True):
    """One wallet card carrying an issuer's number (the till's static-code lookup)."""

    user_id: str
    card_id: str
