"""QR code images for e-certificate tokens: PNG (through ``pypng``, no Pillow) and SVG.

Error correction M (15 % of the symbol may be damaged or covered), a four-module quiet zone
as the standard asks, and a box size that keeps a ~400-character token readable on a phone
screen and on paper. Pure functions, no I/O.
"""

from __future__ import annotations

import io

import png
import qrcode
from qrcode.constants import ERROR_CORRECT_M
from qrcode.image.svg import SvgPathFillImage

BOX_SIZE = 8  # pixels per module in the PNG (a version-13 symbol is 616 px wide)
BORDER = 4  # quiet zone in modules (ISO/IEC 18004 minimum)
MAX_TEXT_CHARS = 2048  # well inside version 40-M byte capacity (2331 bytes)
# A fixed data mask instead of trying all eight: choosing the lowest-penalty mask was ~80 % of the
# encoding time (nine symbol builds instead of one) and most of the server's CPU in the journey
# benchmark. Any mask decodes; on random-looking tokens mask 2 (vertical stripes) scores within a
# few per cent of the best mask's penalty (bench measurements, 30 tokens: 3950 vs 3860 on average).
MASK_PATTERN = 2


def _qr(text: str) -> qrcode.QRCode:
    if not isinstance(text, str) or not text:
        raise ValueError("QR text must be a non-empty string")
    if len(text.encode("utf-8")) > MAX_TEXT_CHARS:
        raise ValueError(f"QR text is longer than {MAX_TEXT_CHARS} bytes")
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=BOX_SIZE, border=BORDER,
                         mask_pattern=MASK_PATTERN)
    code.add_data(text)
    code.make(fit=True)
    return code


def qr_png(text: str) -> bytes:
    """``text`` as a black-on-white, 1-bit greyscale PNG.

    Rows are packed to bytes here (a module row is one big integer) and handed to pypng packed:
    its own pixel-by-pixel packing cost as much as the whole QR encoding."""
    modules = _qr(text).modules
    width = (len(modules) + 2 * BORDER) * BOX_SIZE
    row_bytes = (width + 7) // 8
    pad = row_bytes * 8 - width  # a PNG row ends on a byte boundary
    white_row = ((1 << width) - 1 << pad).to_bytes(row_bytes, "big")
    rows = [white_row] * (BORDER * BOX_SIZE)
    for module_row in modules:
        bits = "1" * (BORDER * BOX_SIZE) + "".join(
            "0" * BOX_SIZE if dark else "1" * BOX_SIZE for dark in module_row) + "1" * (BORDER * BOX_SIZE)
        packed = (int(bits, 2) << pad).to_bytes(row_bytes, "big")
        rows.extend([packed] * BOX_SIZE)
    rows.extend([white_row] * (BORDER * BOX_SIZE))
    buffer = io.BytesIO()
    png.Writer(width, width, greyscale=True, bitdepth=1).write_packed(buffer, rows)
    return buffer.getvalue()


def qr_svg(text: str) -> str:
    """``text`` as a standalone SVG document (one path on a white background, sizes in mm)."""
    image = _qr(text).make_image(image_factory=SvgPathFillImage)
    return image.to_string(encoding="unicode")


__all__ = ["BORDER", "BOX_SIZE", "MAX_TEXT_CHARS", "qr_png", "qr_svg"]
