"""Opaque list cursors: clients pass back ``next_cursor`` verbatim and never parse it."""

from __future__ import annotations

import base64
import binascii

from kernel.errors import InvalidInput


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"


def encode_cursor(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("cursor is not one this API returned", field="cursor") from None
