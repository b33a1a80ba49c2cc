from __future__ import annotations

from kernel.errors import InvalidInput, NotFound


class IssuerNotFound(NotFound):
    code = "issuer_not_found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class InvalidNumberPattern(InvalidInput):
    code = "invalid_number_pattern"


class LastApiKey(InvalidInput):
    code = "last_api_key"


class PolicyIncompatibleWithFormat(InvalidInput):
    """The code policy cannot be drawn (or safely guessed-against) in the barcode format."""

    code = "policy_incompatible_with_format"
