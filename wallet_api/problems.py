"""The RFC 9457 problem+json body: the one shape every error response has."""

from __future__ import annotations

import msgspec
from litestar.types import Send

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


async def send_problem(send: Send, problem: Problem) -> None:
    """Answer with ``problem`` straight over ASGI, for middleware outside Litestar's
    exception handlers (which build the same document, ``errors.py``)."""
    body = msgspec.json.encode(problem)
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", b"%d" % len(body)),
    ]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
