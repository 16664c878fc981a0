"""engine.certificates.qr: PNG and SVG QR images that a real decoder (zxing-cpp) reads back to the same text."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

import png
import pytest

from engine.certificates.qr import BORDER, BOX_SIZE, qr_png, qr_svg
from engine.certificates.signing import KeyRing, make_identifier, make_qr_token
from tests.api.helpers import decode_qr_png, decode_qr_svg

IDENTIFIER_ARGS = ("11310000612852669L001", "11310000612852669L", "20261130ABCDEFGHJK")


def a_token() -> str:
    """A real QR token, as the certificates API puts it in the image."""
    identifier = make_identifier(*IDENTIFIER_ARGS)
    signer = KeyRing.generate_dev().active
    return make_qr_token(identifier, "01", IDENTIFIER_ARGS[1], date(2026, 11, 30), 180, signer)


def test_png_is_a_one_bit_greyscale_image_that_decodes_to_the_token() -> None:
    token = a_token()
    data = qr_png(token)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height, _rows, info = png.Reader(bytes=data).read()
    assert width == height and info["greyscale"] and info["bitdepth"] == 1
    modules = width // BOX_SIZE - 2 * BORDER
    assert width % BOX_SIZE == 0 and (modules - 17) % 4 == 0  # a QR version: 21, 25, ... modules
    assert decode_qr_png(data) == [token]


def test_svg_is_a_standalone_document_that_decodes_to_the_token() -> None:
    token = a_token()
    text = qr_svg(token)
    root = ET.fromstring(text)
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.attrib["viewBox"].startswith("0 0 ")
    assert any(el.attrib.get("fill") == "white" for el in root)  # readable on a dark page too
    assert decode_qr_svg(text) == [token]


@pytest.mark.parametrize("text", ["a", "电子证照 核验", "x" * 1500])
def test_other_texts_round_trip(text: str) -> None:
    assert decode_qr_png(qr_png(text)) == [text]


@pytest.mark.parametrize("bad", ["", "x" * 2049, None, b"bytes"])
def test_refuses_empty_oversized_and_non_text(bad: object) -> None:
    with pytest.raises(ValueError):
        qr_png(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        qr_svg(bad)  # type: ignore[arg-type]
