"""Bearer secrets: minted random, shown once, stored only as a digest.

A token is ``<kind prefix>_<43 chars of url-safe base64>`` (256 random bits).  The prefix
tells the auth layer which package owns the credential, so one Redis GET resolves it.
Only ``digest(token)`` (SHA-256, hex) is ever stored; a stolen database yields no usable
credentials.  Lookups are by digest, and the final comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

USER_PREFIX = "wut"
PARTNER_PREFIX = "wpk"
TERMINAL_PREFIX = "wtk"
ADMIN_PREFIX = "wadm"


def mint(prefix: str) -> tuple[str, str]:
    """Return ``(token, digest)``; give the token to the client, keep the digest."""
    token = f"{prefix}_{secrets.token_urlsafe(32)}"
    return token, digest(token)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
