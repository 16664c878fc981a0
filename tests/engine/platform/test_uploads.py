"""DiskStore and the upload checks (engine.platform.uploads): traversal-proof keys, dedup by hash, magic bytes, size."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engine.errors import NotFound
from engine.platform.uploads import (
    DiskStore,
    FileTooLarge,
    UnreadableImage,
    UnsupportedFileType,
    check_upload,
    size_label,
    sniff_type,
    store_file,
)

PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"


def test_put_is_content_addressed_and_deduplicated(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    key = store.put("../../etc/passwd 王建国身份证.pdf", PDF, "application/pdf")
    assert key == hashlib.sha256(PDF).hexdigest() + ".pdf"
    assert store.put("another name.pdf", PDF, "application/pdf") == key
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].name == key and tmp_path in files[0].parents
    assert "王" not in str(files[0]) and store.get(key) == PDF and store.exists(key)


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "..%2f..%2fetc", "a" * 64 + ".exe",
                                 "A" * 64 + ".pdf", "a" * 64 + ".pdf/../../x", ""])
def test_foreign_keys_never_reach_the_file_system(tmp_path: Path, key: str) -> None:
    store = DiskStore(tmp_path / "root")
    assert not store.exists(key)
    with pytest.raises(NotFound):
        store.get(key)


def test_missing_key_and_unsupported_type(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    with pytest.raises(NotFound):
        store.get("0" * 64 + ".png")
    with pytest.raises(UnsupportedFileType):
        store.put("x.exe", EXE, "application/octet-stream")


def test_types_by_magic_bytes_and_size_limit(tmp_path: Path) -> None:
    assert [sniff_type(d) for d in (PDF, JPEG, PNG, EXE, b"")] == [
        "application/pdf", "image/jpeg", "image/png", None, None]
    with pytest.raises(UnsupportedFileType) as refused:
        check_upload(EXE)
    assert refused.value.kind == "unsupported_type" and refused.value.code == "unsupported_file_type"
    with pytest.raises(FileTooLarge) as big:
        check_upload(PDF + b"0" * 100, max_bytes=64)
    assert big.value.kind == "too_large" and big.value.code == "file_too_large"
    assert "64 字节" in big.value.message
    assert [size_label(n) for n in (64 * 1024, 10 * 1024 * 1024, 1536 * 1024)] == ["64 KB", "10 MB", "1.5 MB"]
    stored = store_file(DiskStore(tmp_path), "扫描件", PDF)
    assert (stored.content_type, stored.size, stored.sha256) == ("application/pdf", len(PDF),
                                                               hashlib.sha256(PDF).hexdigest())


def test_store_file_strips_a_scans_exif_like_citizen_uploads(tmp_path: Path) -> None:
    from tests.files.images import GPS_IFD, exif_of, photo

    scan = photo()
    assert exif_of(scan).get(GPS_IFD)
    store = DiskStore(tmp_path)
    stored = store_file(store, "扫描件", scan)
    kept = store.get(stored.key)
    assert exif_of(kept) == {} and b"GovflowPhone" not in kept
    assert (stored.content_type, stored.size, stored.sha256) == ("image/jpeg", len(kept),
                                                               hashlib.sha256(kept).hexdigest())
    with pytest.raises(UnreadableImage):  # only the magic bytes of a JPEG
        store_file(store, "扫描件", JPEG)
