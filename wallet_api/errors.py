"""Every error becomes RFC 9457 problem+json here, and only here.

``STATUS_BY_ERROR`` is the one table from domain error class to HTTP status; the handlers
below also cover what the framework raises (unknown route, wrong method, malformed JSON,
wrong types, oversize bodies) and anything unexpected (500 without internals).
"""

from __future__ import annotations

import logging
import re

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    SerializationException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from kernel import errors as domain
from wallet_api.problems import PROBLEM_MEDIA_TYPE, FieldError, Problem

log = logging.getLogger("wallet.errors")

STATUS_BY_ERROR: dict[type[domain.DomainError], int] = {
    domain.InvalidInput: 422,
    domain.Unauthenticated: 401,
    domain.Forbidden: 403,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.Gone: 410,
    domain.RateLimited: 429,
    domain.Unavailable: 503,
}

_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def status_of(exc: domain.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(problem),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _request_id(request: Request) -> str | None:  # type: ignore[type-arg]
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def domain_problem(exc: domain.DomainError, request_id: str | None) -> Problem:
    return Problem(
        title=exc.title,
        status=status_of(exc),
        detail=exc.detail,
        code=exc.code,
        errors=[FieldError(field=exc.field, message=exc.detail)] if exc.field else None,
        request_id=request_id,
    )


def handle_domain_error(request: Request, exc: domain.DomainError) -> Response[bytes]:  # type: ignore[type-arg]
    headers = None
    if isinstance(exc, domain.RateLimited):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return problem_response(domain_problem(exc, _request_id(request)), headers)


_AT_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_NAMED_FIELD = re.compile(r"(?:unknown|required) field `(?P<name>[^`]+)`")


def _join(*parts: str) -> str:
    return ".".join(p.strip(".") for p in parts if p and p != "data") or "body"


def _field_errors(exc: ValidationException) -> list[FieldError]:
    found: list[FieldError] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid value"))
        key = item.get("key")
        if key and message == f"'{key}'":
            # Litestar reports a parameter that was not sent as its KeyError: the name, quoted.
            message = "a JSON body is required" if key == "data" else "required"
        path = ""
        if match := _AT_PATH.search(message):
            message, path = message[: match.start()], match.group("path")
        named = _NAMED_FIELD.search(message)
        field = _join(str(key or ""), path, named.group("name") if named else "")
        found.append(FieldError(field=field, message=message))
    return found


def handle_validation_error(request: Request, exc: ValidationException) -> Response[bytes]:  # type: ignore[type-arg]
    errors = _field_errors(exc)
    if not errors and "JSON" in str(exc.detail):
        code, status, detail = "malformed_json", 400, "The request body is not valid JSON."
    else:
        code, status = "validation_error", 422
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or str(exc.detail)
    return problem_response(
        Problem(
            title="Invalid request" if status == 422 else "Malformed request",
            status=status,
            detail=detail,
            code=code,
            errors=errors or None,
            request_id=_request_id(request),
        )
    )


def handle_http_exception(request: Request, exc: HTTPException) -> Response[bytes]:  # type: ignore[type-arg]
    status = exc.status_code
    headers = dict(exc.headers or {})
    code = _CODE_BY_STATUS.get(status, "error")
    detail = str(exc.detail)
    if isinstance(exc, NotFoundException):
        code, detail = "route_not_found", "No route matches this path."
    elif isinstance(exc, MethodNotAllowedException):
        detail = "This route does not accept that method."
    elif status == 413:
        detail = "The request body is larger than this route accepts."
    elif status >= 500:
        detail = "The server could not complete the request."
    elif status == 400 and isinstance(exc.__cause__, SerializationException):
        code, detail = "malformed_json", "The request body is not valid JSON."
    return problem_response(
        Problem(
            title=detail if status < 500 else "Internal error",
            status=status,
            detail=detail,
            code=code,
            request_id=_request_id(request),
        ),
        headers or None,
    )


REDIS_UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


def redis_unreachable_problem(route: str | None, request_id: str | None) -> Problem:
    """Redis lost or too slow: the client may retry (503), on every route alike."""
    log.warning("redis unreachable", extra={"route": route, "request_id": request_id})
    unreachable = domain.Unavailable("Redis is not reachable", code="redis_unavailable")
    return domain_problem(unreachable, request_id)


def handle_redis_unreachable(request: Request, exc: Exception) -> Response[bytes]:  # type: ignore[type-arg]
    route = request.scope.get("path_template")
    return problem_response(redis_unreachable_problem(route, _request_id(request)))


def handle_unexpected(request: Request, exc: Exception) -> Response[bytes]:  # type: ignore[type-arg]
    log.error(
        "unhandled exception",
        exc_info=exc,
        extra={"route": request.scope.get("path_template"), "request_id": _request_id(request)},
    )
    return problem_response(
        Problem(
            title="Internal error",
            status=500,
            detail="The server could not complete the request.",
            code="internal_error",
            request_id=_request_id(request),
        )
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    domain.DomainError: handle_domain_error,
    ValidationException: handle_validation_error,
    HTTPException: handle_http_exception,
    **dict.fromkeys(REDIS_UNREACHABLE, handle_redis_unreachable),
    Exception: handle_unexpected,
}
