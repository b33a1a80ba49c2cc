"""Which dynamic-code policies a program's barcode format can carry.

Checked whenever a program is created or changed (format and policy together), so a policy
the tills could never scan cannot be saved.  The rotating (TOTP) payload is the card's
public reference (``REF_DIGITS`` digits) followed by the TOTP value; one-time tokens are
numeric, with a GTIN check digit in the EAN/UPC formats.  docs/pos.md has the arithmetic.
"""

from __future__ import annotations

from issuers.programs.models import BarcodeFormat, CodePolicy

REF_DIGITS = 10
_FIXED_LENGTH: frozenset[BarcodeFormat] = frozenset({"ean13", "ean8", "upca"})


def totp_payload_length(policy: CodePolicy) -> int:
    return REF_DIGITS + policy.digits


def policy_problem(fmt: BarcodeFormat, policy: CodePolicy) -> str | None:
    """Why codes of ``policy`` cannot be drawn as ``fmt`` (or guessed too easily), or None."""
    if policy.mode == "totp":
        length = totp_payload_length(policy)
        if fmt in _FIXED_LENGTH:
            return (
                f"{fmt} has a fixed length and a check digit, so it cannot carry a rotating "
                f"code ({REF_DIGITS}-digit card reference + {policy.digits} TOTP digits); "
                "use qr, code128, pdf417, aztec, code39 or itf"
            )
        if fmt == "itf" and length % 2:
            return (
                f"itf encodes digits in pairs and a rotating code has {length} digits; "
                "choose an even number of TOTP digits"
            )
    if policy.mode == "one_time" and fmt == "ean8":
        return (
            "ean8 leaves 7 random digits, too few for one-time codes to resist guessing at "
            "the till; use ean13, upca or a 2-D format"
        )
    return None
