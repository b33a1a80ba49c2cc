"""Why a till's verification failed; each ``code`` is part of the API contract."""

from __future__ import annotations

from kernel.errors import Conflict, DomainError, InvalidInput, RateLimited


class CodeUnknown(InvalidInput):
    code = "code_unknown"


class CodeExpired(InvalidInput):
    code = "code_expired"


class CodeWrongIssuer(InvalidInput):
    code = "code_wrong_issuer"


class CodeStaticNotAllowed(InvalidInput):
    code = "code_static_not_allowed"


class CodeReplayed(Conflict):
    code = "code_replayed"


class TooManyAttempts(RateLimited):
    code = "too_many_attempts"


REJECTIONS: dict[str, tuple[type[DomainError], str]] = {
    "code_unknown": (CodeUnknown, "no card of this program shows this code"),
    "code_expired": (CodeExpired, "this code is no longer valid; ask for the current one"),
    "code_replayed": (CodeReplayed, "this code was accepted once already; ask for a fresh one"),
    "code_wrong_issuer": (CodeWrongIssuer, "this code belongs to another program's card"),
    "code_static_not_allowed": (
        CodeStaticNotAllowed,
        "this program accepts only dynamic codes: a card number alone is not proof",
    ),
}
