"""Check digits of card numbers: Luhn (payment and many loyalty cards) and GTIN mod 10.

The ``*_valid`` functions answer False for anything that is not a string of ASCII digits;
the ``*_check_digit`` functions raise ValueError for such a body, since there is no digit to
return. ``str.isdigit`` alone is not enough: it accepts superscripts and other scripts' digits.
"""

from __future__ import annotations

_GTIN_LENGTHS = frozenset({8, 12, 13, 14})  # EAN-8, UPC-A, EAN-13, GTIN-14


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _require_digits(body: str) -> None:
    if not _is_digits(body):
        raise ValueError(f"expected a non-empty string of digits 0-9, got {body!r}")


def _luhn_sum(digits: str) -> int:
    """Luhn sum with the rightmost digit in an undoubled position."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total


def luhn_valid(number: str) -> bool:
    """True when the last digit of ``number`` is the Luhn check digit of the rest."""
    return len(number) >= 2 and _is_digits(number) and _luhn_sum(number) % 10 == 0


def luhn_check_digit(body: str) -> str:
    """The digit to append to ``body`` so that the whole number passes Luhn."""
    _require_digits(body)
    return str(-_luhn_sum(body + "0") % 10)


def _gtin_sum(body: str) -> int:
    """Weights 3, 1, 3, ... from the rightmost digit of the body (the check digit excluded)."""
    return sum(
        int(char) * (3 if position % 2 == 0 else 1) for position, char in enumerate(reversed(body))
    )


def gtin_valid(number: str) -> bool:
    """True for an EAN-8, UPC-A, EAN-13 or GTIN-14 whose last digit is its check digit."""
    if len(number) not in _GTIN_LENGTHS or not _is_digits(number):
        return False
    return gtin_check_digit(number[:-1]) == number[-1]


def gtin_check_digit(body: str) -> str:
    """The GTIN (mod 10, weights 3/1 from the right) check digit to append to ``body``."""
    _require_digits(body)
    return str(-_gtin_sum(body) % 10)
