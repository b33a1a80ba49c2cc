"""Draw a card's barcode value as SVG (image/svg+xml) or PNG (image/png) for a POS scanner.

Each library only encodes: qrcode gives QR's module grid, python-barcode the bar pattern of
the linear formats, zxing-cpp (Zint inside) the grid of PDF417 and Aztec, which the other two
cannot draw. One drawer turns every grid into pixels and SVG, so all formats get whole-pixel
modules, their quiet zones, and an SVG that scales by its viewBox. The value drawn is exactly
the value given: what a library would pad, truncate or recompute is refused by check_value
or caught before drawing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from io import BytesIO
from itertools import groupby
from typing import Final, Literal, Protocol

import qrcode
import zxingcpp
from barcode.charsets import code128
from barcode.codex import Code39, Code128
from barcode.ean import EAN8, EAN13
from barcode.itf import ITF
from barcode.upc import UPCA
from PIL import Image

from issuers.check_digits import gtin_check_digit, gtin_valid
from kernel.errors import InvalidInput

BarcodeFormat = Literal[
    "qr", "code128", "ean13", "ean8", "upca", "code39", "itf", "pdf417", "aztec"
]

NUMERIC_FORMATS: Final[frozenset[BarcodeFormat]] = frozenset({"ean13", "ean8", "upca", "itf"})

_Modules = Sequence[Sequence[bool]]  # rows of modules, True = dark


class _LinearCode(Protocol):
    """The part of a python-barcode symbol class used here."""

    def build(self) -> list[str]: ...
    def get_fullcode(self) -> str: ...


class _Code128(Code128):  # type: ignore[misc]  # python-barcode is untyped
    """python-barcode's Code 128 with one fix: its optimiser folds "start in set B, switch
    to set C" into "start in set C" by looking at the second symbol, but when the symbol
    already starts in set C that second symbol is data, and the digit pair "99" (the value
    of the switch) was dropped: "99123456" drew "123456", so about 1 in 90 random numeric
    payloads scanned as another number."""

    def _try_to_optimize(self, encoded: list[int]) -> list[int]:
        if encoded[0] == code128.START_CODES["C"]:
            return encoded
        optimized: list[int] = super()._try_to_optimize(encoded)
        return optimized


_LINEAR: Final[dict[BarcodeFormat, Callable[[str], _LinearCode]]] = {
    "code128": _Code128,
    "ean13": partial(EAN13, no_checksum=True),  # draw the given check digit, do not recompute
    "ean8": partial(EAN8, no_checksum=True),
    "upca": UPCA,  # always recomputes digit 12 from the first 11; check_value made them equal
    "code39": partial(Code39, add_checksum=False),  # no optional mod-43 character
    "itf": partial(ITF, narrow=1, wide=3),  # 3:1, the widest ratio ITF allows, in whole modules
}
_ZXING: Final[dict[BarcodeFormat, zxingcpp.BarcodeFormat]] = {
    "pdf417": zxingcpp.BarcodeFormat.PDF417,
    "aztec": zxingcpp.BarcodeFormat.Aztec,
}
_GTIN_LENGTHS: Final[dict[BarcodeFormat, int]] = {"ean13": 13, "ean8": 8, "upca": 12}
# A longer linear symbol no longer fits a phone screen at a scannable bar width; the 2-D
# limit fits every matrix format here at its default error correction.
_MAX_LINEAR_CHARS: Final = 48
_MAX_MATRIX_CHARS: Final = 512
# Readers refuse shorter ITF: a partial scan of a longer symbol would look like one.
_MIN_ITF_DIGITS: Final = 4
_CODE39_CHARS: Final = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-. $/+%")
# Scanners set to Code 39 Full ASCII read these pairs as one other character ("+A" is "a").
_CODE39_FULL_ASCII_PAIR: Final = re.compile(r"[$%/+][A-Z]")
# Non-ASCII text has no one byte form every scanner agrees on (Latin-1 or UTF-8, with or
# without ECI), and keyboard-wedge scanners cannot type it: refuse it.
_PRINTABLE_ASCII: Final = re.compile(r"[ -~]+")

_QUIET_LINEAR: Final = 11  # modules left and right: EAN-13 needs 11, the others 7 to 10
_MARGIN_LINEAR: Final = 4  # modules above and below the bars
_BAR_HEIGHT: Final = 60  # modules
_QUIET_MATRIX: Final = 4  # modules: QR needs 4, PDF417 2, Aztec none
_PIXELS_PER_MODULE: Final = 4


def check_value(value: str, fmt: BarcodeFormat) -> str | None:
    """Why ``value`` cannot be drawn exactly as ``fmt``, or None when it can."""
    if not value:
        return "the barcode value is empty"
    if not _PRINTABLE_ASCII.fullmatch(value):
        return "a barcode value may hold only printable ASCII characters (space to ~)"
    limit = _MAX_LINEAR_CHARS if fmt in _LINEAR else _MAX_MATRIX_CHARS
    if len(value) > limit:
        return f"{fmt} takes at most {limit} characters, got {len(value)}"
    if fmt in NUMERIC_FORMATS and not value.isdigit():
        return f"{fmt} encodes the digits 0-9 only"
    return _check_symbology(value, fmt)


def _check_symbology(value: str, fmt: BarcodeFormat) -> str | None:
    if fmt in _GTIN_LENGTHS:
        length = _GTIN_LENGTHS[fmt]
        if len(value) != length:
            return f"{fmt} takes exactly {length} digits, check digit included"
        if not gtin_valid(value):
            expected = gtin_check_digit(value[:-1])
            return f"the last digit of {value} is not its check digit (expected {expected})"
    elif fmt == "itf" and len(value) % 2:
        return "itf encodes digits in pairs: the value needs an even number of digits"
    elif fmt == "itf" and len(value) < _MIN_ITF_DIGITS:
        return f"itf needs at least {_MIN_ITF_DIGITS} digits to scan reliably"
    elif fmt == "code39":
        return _check_code39(value)
    return None


def _check_code39(value: str) -> str | None:
    unknown = "".join(sorted(set(value) - _CODE39_CHARS))
    if unknown:
        return f"code39 cannot encode {unknown!r}: it takes 0-9, A-Z, space and - . $ / + %"
    if _CODE39_FULL_ASCII_PAIR.search(value):
        return "code39 value has $, %, / or + before a letter, which Full ASCII scanners misread"
    return None


def render_svg(value: str, fmt: BarcodeFormat) -> bytes:
    """A standalone SVG of ``value`` as ``fmt``; raises InvalidInput if it cannot be drawn."""
    modules = _modules(value, fmt)
    height, width = len(modules), len(modules[0])
    scale = _PIXELS_PER_MODULE
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width * scale}" '
        f'height="{height * scale}" viewBox="0 0 {width} {height}" shape-rendering="crispEdges">'
        f'<rect width="{width}" height="{height}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(_svg_path(modules))}"/></svg>\n'
    ).encode()


def render_png(value: str, fmt: BarcodeFormat) -> bytes:
    """A 1-bit PNG of ``value`` as ``fmt``; raises InvalidInput if it cannot be drawn."""
    modules = _modules(value, fmt)
    height, width = len(modules), len(modules[0])
    grey = bytes(0 if dark else 255 for row in modules for dark in row)
    scale = _PIXELS_PER_MODULE
    image = Image.frombytes("L", (width, height), grey).resize(
        (width * scale, height * scale), Image.Resampling.NEAREST
    )
    out = BytesIO()
    image.convert("1", dither=Image.Dither.NONE).save(out, format="PNG", optimize=True)
    return out.getvalue()


def _svg_path(modules: _Modules) -> Iterator[str]:
    """One rectangle per horizontal run of dark modules, identical rows merged into bands."""
    y = 0
    for row, band in groupby(modules):
        rows = sum(1 for _ in band)
        x = 0
        for dark, run in groupby(row):
            length = sum(1 for _ in run)
            if dark:
                yield f"M{x} {y}h{length}v{rows}h-{length}z"
            x += length
        y += rows


def _modules(value: str, fmt: BarcodeFormat) -> _Modules:
    """The symbol's modules with its quiet zone, after check_value."""
    error = check_value(value, fmt)
    if error is not None:
        raise InvalidInput(error, field="barcode_format", code="barcode_unencodable")
    if fmt in _LINEAR:
        return _pad([_linear_bars(value, fmt)] * _BAR_HEIGHT, _QUIET_LINEAR, _MARGIN_LINEAR)
    matrix = _qr_modules(value) if fmt == "qr" else _zxing_modules(value, _ZXING[fmt])
    return _pad(matrix, _QUIET_MATRIX, _QUIET_MATRIX)


def _linear_bars(value: str, fmt: BarcodeFormat) -> list[bool]:
    code = _LINEAR[fmt](value)
    encoded = str(code.get_fullcode())
    if encoded != value:  # python-barcode pads, truncates and recomputes without telling
        raise RuntimeError(f"python-barcode would draw {encoded!r} for {fmt} {value!r}")
    return [bit != "0" for bit in code.build()[0]]


def _qr_modules(value: str) -> _Modules:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    qr.add_data(value)
    qr.make(fit=True)
    return [[bool(dark) for dark in row] for row in qr.get_matrix()]


def _zxing_modules(value: str, fmt: zxingcpp.BarcodeFormat) -> _Modules:
    # At scale 1 one pixel is one module (PDF417 rows are several modules tall).
    symbol = zxingcpp.create_barcode(value, fmt).to_image(scale=1, add_quiet_zones=False)
    image = Image.fromarray(symbol)
    pixels, width = image.tobytes(), image.width
    return [
        [pixel < 128 for pixel in pixels[at : at + width]] for at in range(0, len(pixels), width)
    ]


def _pad(modules: _Modules, horizontal: int, vertical: int) -> _Modules:
    side = [False] * horizontal
    blank = [False] * (len(modules[0]) + 2 * horizontal)
    return [blank] * vertical + [[*side, *row, *side] for row in modules] + [blank] * vertical
