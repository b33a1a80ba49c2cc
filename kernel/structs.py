"""Base msgspec Structs shared by every package's models.

- ``ApiModel``: a response body. ``omit_defaults`` keeps optional fields out of the JSON.
- ``RequestModel``: a request body; unknown fields are an error (a typo must not be ignored).
- ``Record``: something stored in Redis (msgpack). Every field added later gets a default,
  so old records keep decoding (see msgspec's schema-evolution rules).
- ``Page``: the one list shape, ``{items, next_cursor}``.
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec


class ApiModel(msgspec.Struct, kw_only=True, omit_defaults=True):
    pass


class RequestModel(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class Record(msgspec.Struct, kw_only=True):
    pass


T = TypeVar("T")


class Page(msgspec.Struct, Generic[T], kw_only=True):
    items: list[T]
    next_cursor: str | None = None


Limit = Annotated[int, msgspec.Meta(ge=1, le=200, description="Items per page (1-200).")]
IanaTimeZone = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=64, description="IANA time zone name, e.g. Europe/Paris."
    ),
]
Locale = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
        max_length=35,
        description="BCP 47 language tag, e.g. en-GB.",
    ),
]
