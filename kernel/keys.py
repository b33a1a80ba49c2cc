"""The key-naming convention, in one place.

Every Redis key is ``<prefix>:<family>:{<tag>}[:<rest>]``.  The ``{tag}`` is a Redis Cluster
hash tag: all keys of one user share the tag ``usr_...``, all keys of one issuer share
``iss_...``, so a MULTI or a Lua script over one owner's keys stays in one slot.  Global
lookups (a token hash, an enrollment code) are tagged by the looked-up value itself.

Each domain package's ``store.py`` is the only code that calls these functions, and only
with its own family names; ``docs/architecture.md`` lists every family.
"""

from __future__ import annotations

import msgspec


class KeySpace(msgspec.Struct, frozen=True):
    """A namespace for all keys of one deployment (tests give each run its own prefix)."""

    prefix: str = "w"

    def __post_init__(self) -> None:
        if not self.prefix or any(c in self.prefix for c in "{}: "):
            raise ValueError("key prefix must be non-empty and free of '{', '}', ':' and spaces")

    def key(self, family: str, tag: str, *rest: str) -> str:
        """A key in ``family`` whose Cluster slot is decided by ``tag``."""
        base = f"{self.prefix}:{family}:{{{tag}}}"
        return base + "".join(":" + part for part in rest) if rest else base

    def pattern(self, family: str) -> str:
        """A SCAN pattern for one family (offline commands only, never a request path)."""
        return f"{self.prefix}:{family}:*"
