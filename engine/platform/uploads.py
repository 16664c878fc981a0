"""Storage for scanned materials (窗口收件的扫描件).

``Store`` is the interface: ``put(name, data, content_type) -> key``, ``get(key)``, ``exists(key)``.
``DiskStore(root)`` keeps files content-addressed by SHA-256 (``<sha256>.<ext>`` under a two-level
fan-out), so the same file stored twice is kept once and no caller-supplied name ever reaches the
file system (no path traversal, no personal data in names). An object-storage ``S3Store`` is out
of scope for now; it would implement the same protocol.

``check_upload`` enforces the type (PDF, JPEG, PNG — recognised by magic bytes, not by the
declared header or the file name) and the size limit (``UPLOAD_MAX_BYTES``, default 10 MB).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from engine.errors import NotFound, TooLarge, UnsupportedType

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
ALLOWED_TYPES = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))
_KEY_RE = re.compile(r"[0-9a-f]{64}\.(pdf|jpg|png)")


class UnsupportedFileType(UnsupportedType):
    code = "unsupported_file_type"
    default_message = "仅支持上传 PDF、JPG、PNG 格式的材料"


class FileTooLarge(TooLarge):
    code = "file_too_large"
    default_message = "材料文件过大"


@dataclass(frozen=True)
class StoredFile:
    """What the timeline records about a stored file (no original file name)."""

    key: str
    sha256: str
    size: int
    content_type: str


class Store(Protocol):
    def put(self, name: str, data: bytes, content_type: str) -> str: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...


def sniff_type(data: bytes) -> str | None:
    """The allowed content type ``data`` really is (by its magic bytes), or ``None``."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return None


def check_upload(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The sniffed content type of an acceptable upload; 413 / 415 otherwise."""
    if len(data) > max_bytes:
        raise FileTooLarge(f"材料文件不能超过 {size_label(max_bytes)}")
    kind = sniff_type(data)
    if kind is None:
        raise UnsupportedFileType()
    return kind


class DiskStore:
    """Content-addressed files under ``root``: key ``<sha256>.<ext>``, path ``root/ab/cd/<key>``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise NotFound("材料不存在")
        return self.root / key[:2] / key[2:4] / key

    def put(self, name: str, data: bytes, content_type: str) -> str:
        """Store ``data`` (``name`` is only a label and never used as a path); the key."""
        ext = ALLOWED_TYPES.get(content_type)
        if ext is None:
            raise UnsupportedFileType()
        key = f"{hashlib.sha256(data).hexdigest()}.{ext}"
        path = self._path(key)
        if path.exists():
            return key  # same content: stored once
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)  # atomic: readers never see a half-written file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise NotFound("材料不存在")
        return path.read_bytes()

    def exists(self, key: str) -> bool:
        try:
            return self._path(key).is_file()
        except NotFound:
            return False


def store_file(store: Store, name: str, data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> StoredFile:
    """Check and store one upload."""
    kind = check_upload(data, max_bytes=max_bytes)
    key = store.put(name, data, kind)
    return StoredFile(key=key, sha256=hashlib.sha256(data).hexdigest(), size=len(data), content_type=kind)


def store_from_settings(settings: object) -> DiskStore:
    """The configured store: ``UPLOAD_DIR`` or ``<project>/var/uploads``."""
    from engine.config import PROJECT_ROOT

    root = str(getattr(settings, "UPLOAD_DIR", "") or "") or str(PROJECT_ROOT / "var" / "uploads")
    return DiskStore(root)


__all__ = ["ALLOWED_TYPES", "DEFAULT_MAX_BYTES", "DiskStore", "FileTooLarge", "Store", "StoredFile",
           "UnsupportedFileType", "check_upload", "sniff_type", "store_file", "store_from_settings"]


def size_label(n: int) -> str:
    """A byte count as staff read it: 10 MB, 64 KB, 500 字节."""
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n // 1024} KB"
    return f"{n} 字节"
