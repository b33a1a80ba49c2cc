"""Documented error responses, so every route's OpenAPI entry lists what it can answer."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec

from wallet_api.problems import PROBLEM_MEDIA_TYPE, Problem

_DESCRIPTIONS = {
    400: "Malformed request (bad JSON, bad header)",
    401: "Missing or invalid bearer token",
    403: "Token of the wrong kind, or not allowed here",
    404: "Not found",
    409: "Conflict with the current state",
    410: "Gone",
    413: "Body larger than this route accepts",
    422: "Invalid field values (see `errors`)",
    429: "Rate limited (see Retry-After)",
    503: "Dependency unavailable",
}

# Every authenticated route looks its token up in Redis: 503 when Redis is lost or too slow.
AUTHED = (400, 401, 403, 422, 503)


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """ResponseSpecs for the given statuses, all as problem+json."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS[status],
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status in statuses
    }
