from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from typing import get_args

import pytest
import zxingcpp
from PIL import Image

from kernel.errors import InvalidInput
from wallet_api.barcodes import (
    NUMERIC_FORMATS,
    BarcodeFormat,
    check_value,
    render_png,
    render_svg,
)

ZX = zxingcpp.BarcodeFormat

# (our format, value, the format and text zxing-cpp reports when it scans the image)
SCANS = [
    ("qr", "WALLET:1234567890 abc", ZX.QRCode, "WALLET:1234567890 abc"),
    ("qr", "Q" * 512, ZX.QRCode, "Q" * 512),
    ("code128", "Abc-123 xyz", ZX.Code128, "Abc-123 xyz"),
    ("code128", "1", ZX.Code128, "1"),  # a lone digit: python-barcode leaves code set C
    ("code128", "0123456789", ZX.Code128, "0123456789"),
    ("code128", "AB12345678cd~", ZX.Code128, "AB12345678cd~"),
    ("ean13", "4006381333931", ZX.EAN13, "4006381333931"),
    ("ean8", "96385074", ZX.EAN8, "96385074"),
    # UPC-A bars are EAN-13 bars with an implied leading 0. zxing-cpp 3 (like a POS scanner
    # following the GS1 transfer protocol) sends all 13 digits and, with every format on,
    # names the symbol EAN-13: the same bars cannot tell the two apart.
    ("upca", "036000291452", ZX.EAN13, "0036000291452"),
    ("code39", "CARD-123 X.Y $/%", ZX.Code39, "CARD-123 X.Y $/%"),
    ("itf", "1234", ZX.ITF, "1234"),
    ("itf", "12345678", ZX.ITF, "12345678"),
    ("itf", "00012345678905", ZX.ITF, "00012345678905"),
    ("pdf417", "WALLET 1234 abc!", ZX.PDF417, "WALLET 1234 abc!"),
    ("pdf417", "P" * 512, ZX.PDF417, "P" * 512),
    ("aztec", "WALLET 1234 abc!", ZX.Aztec, "WALLET 1234 abc!"),
    ("aztec", "A" * 512, ZX.Aztec, "A" * 512),
]
SCAN_PARAMS = [pytest.param(*case, id=f"{case[0]}-{case[1][:16]}") for case in SCANS]


def scan(image: Image.Image) -> list[tuple[zxingcpp.BarcodeFormat, str]]:
    return [(found.format, found.text) for found in zxingcpp.read_barcodes(image)]


def test_every_format_is_scanned() -> None:
    assert {case[0] for case in SCANS} == set(get_args(BarcodeFormat))


@pytest.mark.parametrize(("fmt", "value", "zx_format", "text"), SCAN_PARAMS)
def test_png_scans_as_the_exact_value(
    fmt: BarcodeFormat, value: str, zx_format: zxingcpp.BarcodeFormat, text: str
) -> None:
    assert check_value(value, fmt) is None
    with Image.open(io.BytesIO(render_png(value, fmt))) as image:
        assert image.format == "PNG"
        assert scan(image) == [(zx_format, text)]


def test_upca_scans_as_upca_when_the_scanner_expects_upca() -> None:
    with Image.open(io.BytesIO(render_png("036000291452", "upca"))) as image:
        found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormats(ZX.UPCA))
    assert [(item.format, item.text) for item in found] == [(ZX.UPCA, "0036000291452")]


@pytest.mark.parametrize(("fmt", "value", "zx_format", "text"), SCAN_PARAMS)
def test_svg_is_standalone_and_scans(
    fmt: BarcodeFormat, value: str, zx_format: zxingcpp.BarcodeFormat, text: str
) -> None:
    svg = render_svg(value, fmt)
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox")
    assert b"href" not in svg
    assert b"<!DOCTYPE" not in svg
    cairosvg = pytest.importorskip("cairosvg")
    with Image.open(io.BytesIO(cairosvg.svg2png(bytestring=svg))) as image:
        assert scan(image) == [(zx_format, text)]


def test_png_modules_are_four_pixels_with_quiet_zones() -> None:
    with Image.open(io.BytesIO(render_png("HELLO", "qr"))) as image:
        assert image.size == ((21 + 2 * 4) * 4,) * 2  # version 1 QR, 4-module quiet zone
    with Image.open(io.BytesIO(render_png("4006381333931", "ean13"))) as image:
        assert image.width == (95 + 2 * 11) * 4  # 95 modules, 11-module quiet zones


def test_numeric_formats() -> None:
    assert frozenset({"ean13", "ean8", "upca", "itf"}) == NUMERIC_FORMATS


@pytest.mark.parametrize(
    ("fmt", "value", "reason"),
    [
        ("ean13", "4006381333932", "expected 1"),
        ("ean13", "400638133393", "exactly 13 digits"),
        ("ean8", "9638507A", "digits 0-9 only"),
        ("ean8", "96385075", "expected 4"),
        ("upca", "036000291453", "expected 2"),
        ("upca", "0036000291452", "exactly 12 digits"),
        ("itf", "12345", "even number"),
        ("itf", "12", "at least 4"),
        ("code39", "card-1", "cannot encode"),
        ("code39", "A*B", "cannot encode '*'"),
        ("code39", "AB+C", "Full ASCII"),
        ("code128", "caf\u00e9", "printable ASCII"),
        ("qr", "line\nbreak", "printable ASCII"),
        ("qr", "", "empty"),
        ("aztec", "A" * 513, "at most 512"),
        ("code128", "1" * 49, "at most 48"),
    ],
)
def test_unencodable_values_are_refused(fmt: BarcodeFormat, value: str, reason: str) -> None:
    message = check_value(value, fmt)
    assert message is not None
    assert reason in message
    for render in (render_png, render_svg):
        with pytest.raises(InvalidInput) as caught:
            render(value, fmt)
        assert caught.value.code == "barcode_unencodable"
        assert caught.value.field == "barcode_format"
        assert caught.value.detail == message
