from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from kernel.structs import ApiModel, Record, RequestModel

BarcodeFormat = Literal[
    "qr", "code128", "ean13", "ean8", "upca", "code39", "itf", "pdf417", "aztec"
]
CheckDigit = Literal["luhn", "ean", "none"]
CodeMode = Literal["static", "totp", "one_time"]

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Color = Annotated[str, msgspec.Meta(pattern=r"^#[0-9A-Fa-f]{6}$", description="#RRGGBB")]
HttpsUrl = Annotated[str, msgspec.Meta(pattern=r"^https://\S+$", max_length=2048)]
NumberLength = Annotated[int, msgspec.Meta(ge=4, le=48)]


class Branding(RequestModel, kw_only=True):
    background_color: Color | None = None
    foreground_color: Color | None = None
    label_color: Color | None = None
    logo_url: HttpsUrl | None = None


class NumberPattern(RequestModel, kw_only=True):
    """One rule recognising this program's card numbers."""

    prefix: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z]{1,16}$")] | None = None
    regex: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    lengths: Annotated[list[NumberLength], msgspec.Meta(min_length=1, max_length=16)]
    check_digit: CheckDigit = "none"


class CodePolicy(RequestModel, kw_only=True):
    """How cards of this program prove themselves at the till."""

    mode: CodeMode = "static"
    period_s: Annotated[int, msgspec.Meta(ge=15, le=120)] = 30
    digits: Annotated[int, msgspec.Meta(ge=6, le=10)] = 8
    ttl_s: Annotated[int, msgspec.Meta(ge=15, le=3600)] = 120
    allow_self_added: bool = False


class ProgramFields(RequestModel, kw_only=True):
    """Fields a partner (or the admin creating it) may set; all optional for PATCH."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    branding: Branding | msgspec.UnsetType = msgspec.UNSET
    barcode_format: BarcodeFormat | msgspec.UnsetType = msgspec.UNSET
    number_patterns: (
        Annotated[list[NumberPattern], msgspec.Meta(max_length=32)] | msgspec.UnsetType
    ) = msgspec.UNSET
    code_policy: CodePolicy | msgspec.UnsetType = msgspec.UNSET


class CreateIssuer(ProgramFields, kw_only=True):
    name: Name


class IssuerRecord(Record):
    issuer_id: str
    name: str
    created_at: float
    updated_at: float
    branding: Branding = msgspec.field(default_factory=Branding)
    barcode_format: BarcodeFormat = "code128"
    number_patterns: list[NumberPattern] = msgspec.field(default_factory=list)
    code_policy: CodePolicy = msgspec.field(default_factory=CodePolicy)


class Issuer(ApiModel, kw_only=True):
    issuer_id: str
    name: str
    branding: Branding
    barcode_format: BarcodeFormat
    number_patterns: list[NumberPattern]
    code_policy: CodePolicy
    created_at: datetime
    updated_at: datetime


class CatalogueEntry(ApiModel, kw_only=True):
    """What the add-card screen shows for a program."""

    issuer_id: str
    name: str
    branding: Branding
    barcode_format: BarcodeFormat


class RecognizeNumber(RequestModel, kw_only=True):
    number: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class Match(CatalogueEntry, kw_only=True):
    score: float
    check_digit_verified: bool


class Recognition(ApiModel, kw_only=True):
    matches: list[Match]


class ApiKeyRecord(Record):
    key_id: str
    issuer_id: str
    digest: str
    created_at: float
    label: str | None = None


class CreateApiKey(RequestModel, kw_only=True):
    label: Annotated[str, msgspec.Meta(max_length=80)] | None = None


class ApiKey(ApiModel, kw_only=True):
    id: str
    created_at: datetime
    label: str | None = None


class NewApiKey(ApiKey, kw_only=True):
    key: str


class CreatedIssuer(ApiModel, kw_only=True):
    issuer: Issuer
    api_key: str
