"""Which cards get dynamic codes: pure rules, shared by the codes service and the cards'
static-barcode routes (which must refuse where the program demands dynamic codes)."""

from __future__ import annotations

from typing import Literal

from issuers.programs.code_policy import policy_problem
from issuers.programs.models import IssuerRecord
from wallet_api.cards.models import CardKind

DynamicMode = Literal["totp", "one_time"]


def dynamic_mode(kind: CardKind, issuer: IssuerRecord | None) -> DynamicMode | None:
    """The dynamic code a card of ``kind`` shows for ``issuer``, or None (static barcode).

    Enrolled cards always qualify; self-added ones (numbers the user typed or scanned) only
    when the program allows them; custom cards never have a program.
    """
    if issuer is None or issuer.code_policy.mode == "static":
        return None
    if policy_problem(issuer.barcode_format, issuer.code_policy) is not None:
        return None  # saved before the rule existed; the till could not scan it anyway
    if kind == "enrolled" or (kind == "self_added" and issuer.code_policy.allow_self_added):
        return issuer.code_policy.mode
    return None
