"""QR code images for e-certificate tokens: PNG and SVG.

Error correction M (15 % of the symbol may be damaged or covered), a four-module quiet zone
as the standard asks, and a box size that keeps a ~400-character token readable on a phone
screen and on paper. Pure functions, no I/O.

The PNG — what the mini-program shows every time a holder opens a certificate — is encoded by
zxing-cpp (its C++ writer; the same library the tests decode with): 3 ms for a token where the
pure-Python ``qrcode`` took 16 ms even with a fixed mask, a quarter of the API's CPU in the journey
benchmark (bench/journey.py). The SVG, for print, stays with ``qrcode``'s path renderer.
"""

from __future__ import annotations

import io

import png
import qrcode
import zxingcpp
from qrcode.constants import ERROR_CORRECT_M
from qrcode.image.svg import SvgPathFillImage

BOX_SIZE = 8  # pixels per module in the PNG (a version-15 symbol is 680 px wide)
BORDER = 4  # quiet zone in modules (ISO/IEC 18004 minimum)
MAX_TEXT_CHARS = 2048  # well inside version 40-M byte capacity (2331 bytes)
# The SVG's data mask: fixed instead of trying all eight (nine symbol builds instead of one). Any
# mask decodes; on random-looking tokens mask 2 scores within a few per cent of the best mask's
# penalty (bench measurements, 30 tokens: 3950 vs 3860 on average). zxing-cpp picks the best mask.
MASK_PATTERN = 2


def _checked(text: str) -> str:
    if not isinstance(text, str) or not text:
        raise ValueError("QR text must be a non-empty string")
    if len(text.encode("utf-8")) > MAX_TEXT_CHARS:
        raise ValueError(f"QR text is longer than {MAX_TEXT_CHARS} bytes")
    return text


def _qr(text: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=BOX_SIZE, border=BORDER,
                         mask_pattern=MASK_PATTERN)
    code.add_data(_checked(text))
    code.make(fit=True)
    return code


def qr_png(text: str) -> bytes:
    """``text`` as a black-on-white, 1-bit greyscale PNG.

    zxing-cpp gives the symbol one byte per module (0 dark, 255 light); rows are scaled and packed
    to bits here (a module row is one big integer) and handed to pypng packed: its own
    pixel-by-pixel packing cost as much as the whole encoding."""
    symbol = zxingcpp.create_barcode(_checked(text), zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    view = memoryview(symbol.to_image(scale=1, add_quiet_zones=False))
    size = view.shape[0]
    pixels = view.tobytes()
    width = (size + 2 * BORDER) * BOX_SIZE
    row_bytes = (width + 7) // 8
    pad = row_bytes * 8 - width  # a PNG row ends on a byte boundary
    white_row = ((1 << width) - 1 << pad).to_bytes(row_bytes, "big")
    dark, light, edge = "0" * BOX_SIZE, "1" * BOX_SIZE, "1" * (BORDER * BOX_SIZE)
    rows = [white_row] * (BORDER * BOX_SIZE)
    for y in range(size):
        bits = edge + "".join(dark if value < 128 else light for value in pixels[y * size:(y + 1) * size]) + edge
        rows.extend([(int(bits, 2) << pad).to_bytes(row_bytes, "big")] * BOX_SIZE)
    rows.extend([white_row] * (BORDER * BOX_SIZE))
    buffer = io.BytesIO()
    png.Writer(width, width, greyscale=True, bitdepth=1).write_packed(buffer, rows)
    return buffer.getvalue()


def qr_svg(text: str) -> str:
    """``text`` as a standalone SVG document (one path on a white background, sizes in mm)."""
    image = _qr(text).make_image(image_factory=SvgPathFillImage)
    return image.to_string(encoding="unicode")


__all__ = ["BORDER", "BOX_SIZE", "MAX_TEXT_CHARS", "qr_png", "qr_svg"]
