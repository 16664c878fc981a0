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

import struct
import zlib

import qrcode
import zxingcpp
from qrcode.constants import ERROR_CORRECT_M
from qrcode.image.svg import SvgPathFillImage

BOX_SIZE = 8  # pixels per module in the PNG (a version-15 symbol is 680 px wide)
BORDER = 4  # quiet zone in modules (ISO/IEC 18004 minimum)
MAX_TEXT_CHARS = 2048  # well inside version 40-M byte capacity (2331 bytes)
PNG_COMPRESSION = 6  # zlib level (with the run-length strategy every level gives ~2.3 KB for a ~400-character token)
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

    zxing-cpp gives the symbol one byte per module (0 dark, 255 light). At 1 bit per pixel and
    ``BOX_SIZE`` = 8 pixels per module, one module is exactly one byte of a PNG row (0x00 dark,
    0xFF light), so a module row is zxing's row thresholded with ``bytes.translate`` and the image
    is written here directly (IHDR, one zlib IDAT, IEND): no per-pixel Python. The libraries at
    hand cost more than the symbol itself: measured per ~400-character token on the quiet machine
    (2026-12-07), zxing's symbol 0.98 ms, the whole image 1.15 ms here, 2.3–2.9 ms through Pillow
    (it scales a byte per pixel, then packs), 3.4–4.0 ms through pypng (filters rows in Python).
    The tests read every image back with pypng and zxing-cpp, independent decoders."""

    symbol = zxingcpp.create_barcode(_checked(text), zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    view = memoryview(symbol.to_image(scale=1, add_quiet_zones=False))
    size = view.shape[0]
    modules = view.tobytes().translate(_MODULE_BYTES) if _MODULE_BYTES_PER_MODULE == 1 else b"".join(
        _MODULE_BYTES[value:value + 1] * _MODULE_BYTES_PER_MODULE for value in view.tobytes())
    side = (size + 2 * BORDER) * BOX_SIZE
    row_len = size * _MODULE_BYTES_PER_MODULE
    edge = b"\xff" * (BORDER * _MODULE_BYTES_PER_MODULE)
    # Each pixel row is repeated BOX_SIZE times: the repeats are written with PNG filter 2 (Up:
    # the row above, so all zero bytes), which run-length deflate packs at a fraction of the CPU
    # zlib's default string matching spent on the repeated rows (~0.2 vs ~1.5 ms, 2.3 vs 1.6 KB).
    same = b"\x02" + b"\x00" * (side // 8)
    quiet = b"\x00" + b"\xff" * (side // 8) + same * (BORDER * BOX_SIZE - 1)  # filter 0: a light row
    scanlines = [quiet]
    for y in range(size):
        scanlines.append(b"\x00" + edge + modules[y * row_len:(y + 1) * row_len] + edge + same * (BOX_SIZE - 1))
    scanlines.append(quiet)
    deflate = zlib.compressobj(PNG_COMPRESSION, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    data = deflate.compress(b"".join(scanlines)) + deflate.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, greyscale, deflate, no interlace
    return b"".join((_PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", data), _chunk(b"IEND", b"")))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
if BOX_SIZE % 8:
    raise ValueError("BOX_SIZE must be a multiple of 8: a module is whole bytes of a 1-bit PNG row")
_MODULE_BYTES_PER_MODULE = BOX_SIZE // 8
# zxing's grey level of a module → its byte in a 1-bit row: below 128 dark (0x00), else light (0xFF)
_MODULE_BYTES = bytes(0x00 if value < 128 else 0xFF for value in range(256))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def qr_svg(text: str) -> str:
    """``text`` as a standalone SVG document (one path on a white background, sizes in mm)."""
    image = _qr(text).make_image(image_factory=SvgPathFillImage)
    return image.to_string(encoding="unicode")


__all__ = ["BORDER", "BOX_SIZE", "MAX_TEXT_CHARS", "qr_png", "qr_svg"]
