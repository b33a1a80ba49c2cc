"""Opaque, prefixed identifiers (``usr_...``, ``iss_...``).

The prefix tells a reader (and a support engineer) what kind of thing an id names; the
random part is 128 bits so ids can be made anywhere without coordination.
"""

from __future__ import annotations

import re
import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_ID_RE = re.compile(r"^[a-z]{2,5}_[0-9a-z]{20,32}$")


def new_id(prefix: str) -> str:
    """Return ``prefix_`` followed by 25 base-36 characters (about 129 bits of randomness)."""
    n = secrets.randbits(129)
    chars = []
    for _ in range(25):
        n, r = divmod(n, 36)
        chars.append(_ALPHABET[r])
    return f"{prefix}_{''.join(chars)}"


def looks_like_id(value: str, prefix: str) -> bool:
    """Cheap shape check before touching Redis with a client-supplied id."""
    return value.startswith(prefix + "_") and _ID_RE.match(value) is not None
