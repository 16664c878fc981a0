"""Storage for scanned materials (窗口收件的扫描件).

``Store`` is the interface: ``put(name, data, content_type) -> key``, ``get(key)``, ``exists(key)``,
``delete(key)``. Keys are content-addressed by SHA-256 (``<sha256>.<ext>``), so the same file stored
twice is kept once and no caller-supplied name ever reaches the file system or the bucket (no path
traversal, no personal data in names). Two stores implement it, chosen by ``GOVFLOW_FILES_STORE``:

- ``DiskStore(root)`` (``disk``, development and single-host installs): ``root/ab/cd/<key>``,
  written atomically;
- ``S3Store`` (``s3``): any S3-compatible object store — MinIO, Aliyun OSS, Tencent COS, AWS S3 —
  through boto3 with ``GOVFLOW_FILES_S3_ENDPOINT`` / ``_BUCKET`` / ``_REGION`` / ``_ACCESS_KEY`` /
  ``_SECRET_KEY`` / ``_PREFIX``. The bucket is provisioned by operations (private ACL).

Store calls block (disk or network): async callers run them with ``asyncio.to_thread``.
``sanitize_image`` re-encodes photos with Pillow — citizen uploads and window scans
(``store_file``) alike — so EXIF (GPS position, device serial) never reaches the store.

``check_upload`` enforces the type (PDF, JPEG, PNG — recognised by magic bytes, not by the
declared header or the file name) and the size limit (``UPLOAD_MAX_BYTES``, default 10 MB).
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from engine.errors import DependencyDown, NotFound, TooLarge, UnsupportedType

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
ALLOWED_TYPES = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))
_KEY_RE = re.compile(r"[0-9a-f]{64}\.(pdf|jpg|png)")
MAX_IMAGE_PIXELS = 40_000_000  # a 40-megapixel photo; larger is a decompression bomb, not a scan


class UnsupportedFileType(UnsupportedType):
    code = "unsupported_file_type"
    default_message = "仅支持上传 PDF、JPG、PNG 格式的材料"


class FileTooLarge(TooLarge):
    code = "file_too_large"
    default_message = "材料文件过大"


class UnreadableImage(UnsupportedType):
    code = "unreadable_image"
    default_message = "图片已损坏或无法识别，请重新拍摄或选择其他图片"


class StoreUnavailable(DependencyDown):
    code = "file_store_unavailable"
    default_message = "材料存储服务暂不可用，请稍后重试"


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

    def delete(self, key: str) -> None: ...


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

    def delete(self, key: str) -> None:
        """Remove the file (absent: nothing to do)."""
        self._path(key).unlink(missing_ok=True)


class S3Store:
    """Content-addressed objects in one bucket of an S3-compatible store: ``<prefix><key>``."""

    def __init__(self, *, bucket: str, endpoint: str | None = None, region: str = "us-east-1",
                 access_key: str | None = None, secret_key: str | None = None, prefix: str = "",
                 client: Any = None) -> None:
        if not bucket:
            raise ValueError("GOVFLOW_FILES_S3_BUCKET is required for GOVFLOW_FILES_STORE=s3")
        self.bucket, self.prefix = bucket, prefix
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "s3", endpoint_url=endpoint or None, region_name=region or "us-east-1",
                aws_access_key_id=access_key or None, aws_secret_access_key=secret_key or None,
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                              connect_timeout=5, read_timeout=30, retries={"max_attempts": 3}))
        self.client = client

    def _name(self, key: str) -> str:
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise NotFound("材料不存在")
        return f"{self.prefix}{key}"

    def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 or exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise NotFound("材料不存在") from None
            raise StoreUnavailable() from exc
        except BotoCoreError as exc:
            raise StoreUnavailable() from exc

    def put(self, name: str, data: bytes, content_type: str) -> str:
        ext = ALLOWED_TYPES.get(content_type)
        if ext is None:
            raise UnsupportedFileType()
        key = f"{hashlib.sha256(data).hexdigest()}.{ext}"
        if not self.exists(key):
            self._call("put_object", Key=self._name(key), Body=data, ContentType=content_type,
                       ContentDisposition="attachment")
        return key

    def get(self, key: str) -> bytes:
        body = self._call("get_object", Key=self._name(key))["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", Key=self._name(key))
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        self._call("delete_object", Key=self._name(key))


def clean_upload(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[str, bytes]:
    """Check one upload (413 / 415) and strip an image's metadata (``sanitize_image``, the same
    function citizen uploads go through): ``(content type, bytes to store)``."""
    kind = check_upload(data, max_bytes=max_bytes)
    return kind, sanitize_image(data, kind)


def put_file(store: Store, name: str, content_type: str, clean: bytes) -> StoredFile:
    """Store bytes that ``clean_upload`` returned."""
    key = store.put(name, clean, content_type)
    return StoredFile(key=key, sha256=hashlib.sha256(clean).hexdigest(), size=len(clean), content_type=content_type)


def store_file(store: Store, name: str, data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> StoredFile:
    """Check, clean and store one upload (a window scan): an image's EXIF position never reaches the store."""
    return put_file(store, name, *clean_upload(data, max_bytes=max_bytes))


def sanitize_image(data: bytes, content_type: str) -> bytes:
    """A JPEG or PNG re-encoded from its pixels only: EXIF (GPS position, camera serial), XMP, ICC
    comments and PNG text chunks are dropped; a photo's EXIF orientation is applied to the pixels
    first so it still shows upright. PDFs pass unchanged. A file that only starts like an image
    → 415 ``unreadable_image``; more than ``MAX_IMAGE_PIXELS`` → 413."""
    if content_type not in ("image/jpeg", "image/png"):
        return data
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            width, height = opened.size
            if width * height > MAX_IMAGE_PIXELS:
                raise FileTooLarge(f"图片像素过多（{width}×{height}），请压缩后再上传")
            opened.load()
            image = ImageOps.exif_transpose(opened)
            out = io.BytesIO()
            if content_type == "image/jpeg":
                if image.mode not in ("RGB", "L", "CMYK"):
                    image = image.convert("RGB")
                image.save(out, format="JPEG", quality=90, optimize=True)
            else:
                if image.mode not in ("RGB", "RGBA", "L", "LA", "P", "1", "I", "I;16"):
                    image = image.convert("RGBA")
                image.save(out, format="PNG", optimize=True)
            return out.getvalue()
    except FileTooLarge:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise UnreadableImage() from None


def store_from_settings(settings: object) -> Store:
    """The configured store (cached per configuration): ``FILES_STORE=disk`` (default) under
    ``FILES_DIR`` (or the older ``UPLOAD_DIR``, else ``<project>/var/uploads``), or ``FILES_STORE=s3``."""
    kind = str(getattr(settings, "FILES_STORE", "disk") or "disk").strip().lower()
    if kind == "s3":
        return _s3_store(*(str(getattr(settings, f"FILES_S3_{k}", "") or "") for k in
                           ("BUCKET", "ENDPOINT", "REGION", "ACCESS_KEY", "SECRET_KEY", "PREFIX")))
    if kind != "disk":
        raise ValueError(f"GOVFLOW_FILES_STORE={kind!r}: use disk or s3")
    from engine.config import PROJECT_ROOT

    root = (str(getattr(settings, "FILES_DIR", "") or "") or str(getattr(settings, "UPLOAD_DIR", "") or "")
            or str(PROJECT_ROOT / "var" / "uploads"))
    return DiskStore(root)


@functools.lru_cache(maxsize=8)
def _s3_store(bucket: str, endpoint: str, region: str, access_key: str, secret_key: str, prefix: str) -> S3Store:
    return S3Store(bucket=bucket, endpoint=endpoint, region=region or "us-east-1", access_key=access_key,
                   secret_key=secret_key, prefix=prefix)


__all__ = ["ALLOWED_TYPES", "DEFAULT_MAX_BYTES", "MAX_IMAGE_PIXELS", "DiskStore", "FileTooLarge", "S3Store",
           "Store", "StoreUnavailable", "StoredFile", "UnreadableImage", "UnsupportedFileType", "check_upload",
           "clean_upload", "put_file", "sanitize_image", "size_label", "sniff_type", "store_file",
           "store_from_settings"]


def size_label(n: int) -> str:
    """A byte count as staff read it: 10 MB, 64 KB, 500 字节."""
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n // 1024} KB"
    return f"{n} 字节"
