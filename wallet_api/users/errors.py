from __future__ import annotations

from kernel.errors import InvalidInput, NotFound


class UserNotFound(NotFound):
    code = "user_not_found"


class UnknownTimeZone(InvalidInput):
    code = "unknown_timezone"
