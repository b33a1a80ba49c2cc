from __future__ import annotations

from collections.abc import Callable

import pytest

from issuers.check_digits import gtin_check_digit, gtin_valid, luhn_check_digit, luhn_valid


@pytest.mark.parametrize(
    "number",
    ["4111111111111111", "4012888888881881", "5555555555554444", "378282246310005", "79927398713"],
)
def test_luhn_accepts_known_numbers(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111112",  # last digit off by one
        "4012888888881818",  # two neighbours swapped
        "79927398710",
        "",
        "0",  # no body
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "\uff14\uff11\uff11\uff11",  # full-width digits: str.isdigit() says yes
    ],
)
def test_luhn_rejects_wrong_numbers(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize(
    ("body", "digit"), [("411111111111111", "1"), ("7992739871", "3"), ("0", "0"), ("1", "8")]
)
def test_luhn_check_digit(body: str, digit: str) -> None:
    assert luhn_check_digit(body) == digit
    assert luhn_valid(body + digit)


@pytest.mark.parametrize(
    "number",
    [
        "4006381333931",  # EAN-13
        "5901234123457",  # EAN-13
        "036000291452",  # UPC-A
        "96385074",  # EAN-8
        "00012345678905",  # GTIN-14
    ],
)
def test_gtin_accepts_known_numbers(number: str) -> None:
    assert gtin_valid(number)


@pytest.mark.parametrize(
    "number",
    [
        "4006381333932",
        "4006381339331",  # two digits swapped
        "036000291453",
        "96385075",
        "00012345678906",
        "03600029145",  # 11 digits is no GTIN length
        "400638133393a",
        "",
        "\u0664\u0660\u0660\u0666\u0663\u0668\u0661\u0663\u0663\u0663\u0669\u0663\u0661",
    ],
)
def test_gtin_rejects_wrong_numbers(number: str) -> None:
    assert not gtin_valid(number)


@pytest.mark.parametrize(
    ("body", "digit"),
    [("400638133393", "1"), ("03600029145", "2"), ("9638507", "4"), ("0001234567890", "5")],
)
def test_gtin_check_digit(body: str, digit: str) -> None:
    assert gtin_check_digit(body) == digit
    assert gtin_valid(body + digit)


@pytest.mark.parametrize("function", [luhn_check_digit, gtin_check_digit])
@pytest.mark.parametrize("body", ["", "12a4", "12 34", "\u00b2"])
def test_check_digit_of_non_digits_raises(function: Callable[[str], str], body: str) -> None:
    with pytest.raises(ValueError, match="digits 0-9"):
        function(body)
