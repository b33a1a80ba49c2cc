"""Which programs a scanned or typed card number belongs to.

A rule matches when the number has one of its lengths, starts with its prefix, fully
matches its regex, and passes its check digit.  More specific rules rank higher: a long
prefix, a regex and a verified check digit each say more than a bare length.
"""

from __future__ import annotations

import re
from functools import lru_cache

from issuers.check_digits import gtin_valid, luhn_valid
from issuers.programs.errors import InvalidNumberPattern
from issuers.programs.models import NumberPattern

# A quantified group that itself contains a quantifier, e.g. (a+)+ or (\d*)*: the shape
# behind catastrophic backtracking.  Partners' regexes run on every recognition request.
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*[+*{?]")
_SEPARATORS = re.compile(r"[\s-]+")


def normalize_number(number: str) -> str:
    """Drop the spaces and dashes people type or cards print between digit groups."""
    return _SEPARATORS.sub("", number).strip()


def check_pattern(pattern: NumberPattern, where: str) -> None:
    if pattern.regex is None:
        return
    if _NESTED_QUANTIFIER.search(pattern.regex):
        raise InvalidNumberPattern("nested quantifiers are not allowed in regex", field=where)
    try:
        _compiled(pattern.regex)
    except re.error as exc:
        raise InvalidNumberPattern(f"regex does not compile: {exc}", field=where) from None


@lru_cache(maxsize=4096)
def _compiled(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


def check_digit_ok(number: str, kind: str) -> bool:
    if kind == "luhn":
        return luhn_valid(number)
    if kind == "ean":
        return gtin_valid(number)
    return True


def score(number: str, pattern: NumberPattern) -> float | None:
    """The rule's score for ``number``, or None when it does not match."""
    if len(number) not in pattern.lengths:
        return None
    if pattern.prefix is not None and not number.startswith(pattern.prefix):
        return None
    if pattern.regex is not None and _compiled(pattern.regex).fullmatch(number) is None:
        return None
    if not check_digit_ok(number, pattern.check_digit):
        return None
    value = 1.0 + 2.0 * len(pattern.prefix or "") + 1.0 / len(pattern.lengths)
    value += 3.0 if pattern.regex else 0.0
    value += 2.0 if pattern.check_digit != "none" else 0.0
    return value


def best_score(number: str, patterns: list[NumberPattern]) -> tuple[float, bool] | None:
    """The best matching rule's score and whether it verified a check digit."""
    best: tuple[float, bool] | None = None
    for pattern in patterns:
        value = score(number, pattern)
        if value is not None and (best is None or value > best[0]):
            best = (value, pattern.check_digit != "none")
    return best
