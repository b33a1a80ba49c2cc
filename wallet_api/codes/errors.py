from __future__ import annotations

from kernel.errors import Conflict


class DynamicCodesNotEnabled(Conflict):
    """The card's program does not use this kind of code, or this card is not eligible."""

    code = "dynamic_codes_not_enabled"


class DynamicCodesRequired(Conflict):
    """The program demands dynamic codes: a static barcode of this card would defeat them."""

    code = "dynamic_codes_required"
