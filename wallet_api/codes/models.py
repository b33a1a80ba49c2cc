from __future__ import annotations

from datetime import datetime
from typing import Literal

from issuers.programs.models import BarcodeFormat
from kernel.structs import ApiModel, Record
from wallet_api.cards.models import CardKind

GoogleBarcodeType = Literal["QR_CODE", "PDF_417", "AZTEC", "CODE_128"]


class TotpParameter(ApiModel, kw_only=True, rename="camel"):
    key: str  # the secret as hex (Base16)
    value_length: int


class TotpDetails(ApiModel, kw_only=True, rename="camel"):
    algorithm: Literal["TOTP_SHA1"]
    period_millis: str  # an int64, which Google's JSON writes as a string
    parameters: list[TotpParameter]


class RotatingBarcode(ApiModel, kw_only=True, rename="camel"):
    """Google Wallet's ``rotatingBarcode`` (LoyaltyObject), ready to insert server-side."""

    type: GoogleBarcodeType
    render_encoding: Literal["UTF_8"]
    value_pattern: str
    alternate_text: str
    totp_details: TotpDetails


class TotpProvisioning(ApiModel, kw_only=True):
    """What a phone (or Google Wallet) needs to show the card's rotating code offline."""

    secret: str  # base32, no padding (RFC 4648), as authenticator apps and pyotp take it
    secret_hex: str
    period_s: int
    digits: int
    algorithm: Literal["SHA1"]
    value_pattern: str  # the barcode's payload: the card reference, then {totp_value_0}
    google_wallet_rotating_barcode: RotatingBarcode


class OneTimeCode(ApiModel, kw_only=True):
    payload: str
    barcode_format: BarcodeFormat
    expires_at: datetime


class CardIdentity(Record):
    """Who a code proves: the fields every code record carries for the till."""

    issuer_id: str
    user_id: str
    card_id: str
    kind: CardKind
    number_sealed: bytes  # the card number, sealed under this code record's associated data
    number_index: str  # blind index in the issuer's ``cardref`` hash (the card must be held)
    member_index: str  # blind index of the issuer's member record, if the CRM has one


class CodeRefRecord(Record):
    """A card's TOTP provisioning, found by its public reference (the payload's prefix)."""

    ref: str
    card: CardIdentity
    seed_sealed: bytes
    period_s: int
    digits: int
    created_at: float


class OneTimeRecord(Record):
    """A live one-time token, found by the keyed hash of the token."""

    token_index: str
    card: CardIdentity
    expires_at: float
