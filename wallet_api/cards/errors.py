from __future__ import annotations

from kernel.errors import Conflict, InvalidInput, NotFound


class CardNotFound(NotFound):
    """Also what another user's card id gets: its existence is not revealed."""

    code = "card_not_found"


class CardExists(Conflict):
    code = "card_exists"


class CardLimitReached(Conflict):
    code = "card_limit_reached"


class InvalidCardNumber(InvalidInput):
    code = "invalid_card_number"


class InvalidCheckDigit(InvalidInput):
    code = "invalid_check_digit"


class BarcodeUnencodable(InvalidInput):
    code = "barcode_unencodable"


class CardSourceRequired(InvalidInput):
    """The body must say where the card comes from: a number or an enrollment code."""

    code = "card_source_required"
