"""One registration point for everything stored about a user.

``DELETE /v1/me`` and ``GET /v1/me/export`` walk the registered parts, so a feature that
stores personal data registers a part once and can never be forgotten by either.  Parts are
erased in reverse registration order (the account itself, registered first, goes last).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class PersonalDataPart(Protocol):
    """A slice of a user's data owned by one feature."""

    name: str

    async def export(self, user_id: str) -> object:
        """Everything this feature keeps about the user, as msgspec-encodable data."""
        ...

    async def erase(self, user_id: str) -> None:
        """Remove it all; must be safe to call twice."""
        ...


class PersonalDataRegistry:
    def __init__(self) -> None:
        self._parts: list[PersonalDataPart] = []

    def register(self, part: PersonalDataPart) -> None:
        if any(p.name == part.name for p in self._parts):
            raise ValueError(f"personal data part {part.name!r} registered twice")
        self._parts.append(part)

    @property
    def parts(self) -> Sequence[PersonalDataPart]:
        return tuple(self._parts)

    async def export(self, user_id: str) -> dict[str, object]:
        return {part.name: await part.export(user_id) for part in self._parts}

    async def erase(self, user_id: str) -> None:
        for part in reversed(self._parts):
            await part.erase(user_id)
