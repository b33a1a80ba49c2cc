"""The one error hierarchy. Domain packages subclass these; wallet_api maps them to HTTP.

Each error carries a stable snake_case ``code`` (the API contract), a human ``detail``,
and optionally the ``field`` at fault. No HTTP status lives here: the mapping from class to
status is a single table in ``wallet_api/errors.py``.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Base of every error the service reports to a client."""

    code: ClassVar[str] = "error"
    title: ClassVar[str] = "Request failed"

    def __init__(self, detail: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if code is not None:
            self.code = code  # type: ignore[misc]


class InvalidInput(DomainError):
    """The request is well-formed but its values are not acceptable."""

    code = "validation_error"
    title = "Invalid input"


class NotFound(DomainError):
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict"


class Unauthenticated(DomainError):
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(DomainError):
    code = "forbidden"
    title = "Forbidden"


class Gone(DomainError):
    code = "gone"
    title = "Gone"


class RateLimited(DomainError):
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after_s: int, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after_s = max(1, retry_after_s)


class Unavailable(DomainError):
    code = "service_unavailable"
    title = "Service unavailable"
