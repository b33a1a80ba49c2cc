"""RFC 6238 TOTP over RFC 4226 HOTP (HMAC-SHA1), and the numbers the till sees.

Small enough to read against the RFCs; pyotp and Google Wallet compute the same values
from the provisioning data (tests check both).
"""

from __future__ import annotations

import base64
import hmac
import secrets
import struct

from issuers.check_digits import gtin_check_digit
from issuers.programs.code_policy import REF_DIGITS

SEED_BYTES = 20  # 160 bits: RFC 4226's recommended length for HMAC-SHA1
_COUNTER = struct.Struct(">Q")


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def base32(seed: bytes) -> str:
    return base64.b32encode(seed).decode().rstrip("=")


def hotp(seed: bytes, counter: int, digits: int) -> str:
    mac = hmac.digest(seed, _COUNTER.pack(counter), "sha1")
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def step_at(ts: float, period_s: int) -> int:
    return int(ts // period_s)


def new_ref() -> str:
    """A card's public reference: ``REF_DIGITS`` digits, never starting with 0 (so it
    survives scanners and spreadsheets that drop leading zeros)."""
    return str(secrets.randbelow(9 * 10 ** (REF_DIGITS - 1)) + 10 ** (REF_DIGITS - 1))


def random_digits(count: int) -> str:
    """``count`` random digits, the first one non-zero."""
    return str(secrets.randbelow(9 * 10 ** (count - 1)) + 10 ** (count - 1))


def gtin_token(length: int) -> str:
    """A random GTIN of ``length`` digits with its check digit."""
    body = random_digits(length - 1)
    return body + gtin_check_digit(body)
