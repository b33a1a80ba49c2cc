"""Opaque, prefixed identifiers (``usr_...``, ``iss_...``).

The prefix tells a reader (and a support engineer) what kind of thing an id names; the
random part is 128 bits so ids can be made anywhere without coordination.
"""

from __future__ import annotations

import re
import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
# Two base-36 digits at a time: half the big-integer divisions (ids are made per request).
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_ID_RE = re.compile(r"^[a-z]{2,5}_[0-9a-z]{20,32}$")


def new_id(prefix: str) -> str:
    """Return ``prefix_`` followed by 25 base-36 characters (about 129 bits of randomness)."""
    n = secrets.randbits(129)
    chars = []
    for _ in range(12):
        n, r = divmod(n, 1296)
        chars.append(_PAIRS[r])
    chars.append(_ALPHABET[n % 36])
    return f"{prefix}_{''.join(chars)}"


def looks_like_id(value: str, prefix: str) -> bool:
    """Cheap shape check before touching Redis with a client-supplied id."""
    return value.startswith(prefix + "_") and _ID_RE.match(value) is not None
