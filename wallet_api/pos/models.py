from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from kernel.structs import ApiModel, RequestModel
from wallet_api.codes.models import OneTimeRecord

Method = Literal["totp", "one_time", "static"]
Outcome = Literal[
    "accepted",
    "code_unknown",
    "code_expired",
    "code_replayed",
    "code_wrong_issuer",
    "code_static_not_allowed",
]


class VerifyCode(RequestModel, kw_only=True):
    payload: Annotated[
        str, msgspec.Meta(min_length=1, max_length=512, description="What the scanner read")
    ]


class Verification(ApiModel, kw_only=True):
    """The member at the till.  ``tier`` and ``points`` are null when the program's CRM
    has not shared the member; ``card_id`` is null for a static number no wallet holds."""

    verification_id: str
    card_id: str | None
    issuer_id: str
    member_number: str
    tier: str | None
    points: int | None
    method: Method
    coupons: list[dict[str, object]]  # filled by the campaigns work; empty until then


class VerificationEntry(ApiModel, kw_only=True):
    """One attempt at a till, as the partner's log keeps it for 90 days."""

    id: str
    time: datetime
    terminal_id: str
    store_id: str | None
    card_id: str | None
    outcome: Outcome
    method: Method | None


class Attempt(msgspec.Struct, kw_only=True):
    """What Python decided before the one atomic script, and what the script needs."""

    issuer_id: str
    terminal_id: str
    store_id: str | None
    verification_id: str
    method: Method | None
    verdict: Outcome | None = None  # a failure already decided (still counted and logged)
    card_id: str | None = None
    kind: str = ""
    holder: str = ""  # "usr_../crd_.." that must still hold the card in ``cardref``
    number_indexes: list[str] = msgspec.field(default_factory=list)
    member_indexes: list[str] = msgspec.field(default_factory=list)
    card_subject: str | None = None  # what the per-card lockout counts against
    state: str | None = None  # totp: the card reference
    step_ms: int = 0  # totp: start of the matched step
    state_ttl_ms: int = 1
    period_s: int = 0
    digits: int = 0


# terminal_gone / miss: for the caller only, neither counted nor logged (verify_lua.py)
SettledOutcome = Outcome | Literal["too_many_attempts", "terminal_gone", "miss"]


class Settled(msgspec.Struct, kw_only=True):
    outcome: SettledOutcome
    retry_after_ms: int = 0
    member_raw: bytes | None = None
    holder: str = ""
    matched: int = 0  # static: which number candidate matched (1-based)
    token: OneTimeRecord | None = None  # the one-time token the script found
