"""Real image files for upload tests, made with Pillow: a phone photo carrying EXIF with a GPS
position, a PNG with a text chunk, a minimal PDF."""

from __future__ import annotations

import io

from PIL import Image, PngImagePlugin

GPS_IFD = 0x8825
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<!doctype html><script>alert(document.cookie)</script>"


def photo(width: int = 64, height: int = 48, colour: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    """A JPEG as a phone writes it: EXIF with camera make, orientation 6 (rotated) and a GPS position."""
    image = Image.new("RGB", (width, height), colour)
    exif = Image.Exif()
    exif[0x010F] = "GovflowPhone"
    exif[0x0112] = 6
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (31.0, 13.0, 50.4), 3: "E", 4: (121.0, 28.0, 10.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=95)
    return out.getvalue()


def png_with_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "王建国 310104196103150273")
    out = io.BytesIO()
    Image.new("RGBA", (20, 10), (255, 0, 0, 128)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def exif_of(data: bytes) -> dict[int, object]:
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.getexif())


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size
