"""The RFC 9457 problem+json body: the one shape every error response has."""

from __future__ import annotations

import msgspec

from kernel.structs import ApiModel

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(ApiModel):
    field: str
    message: str


class Problem(ApiModel, kw_only=True):
    """An RFC 9457 problem document with a stable machine ``code``."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str = msgspec.field(default="error")
    errors: list[FieldError] | None = None
    request_id: str | None = None
