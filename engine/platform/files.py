"""Material files as records (table ``uploads``): who owns an upload, which case and material it
belongs to, when an unattached one expires. The bytes live in the file store
(``engine.platform.uploads``: disk or S3-compatible), addressed by content hash.

Life of a file:

- a citizen uploads it (``save_upload``): checked by magic bytes and size, photos re-encoded
  without EXIF, owned by ``citizen:<id>``, expiring after ``FILES_UPLOAD_TTL_S`` unless attached;
- an application or a 补正 attaches it to its case under a material name (``claim_uploads`` checks
  the ids before the case starts, ``attach_uploads`` attaches them after): it then belongs to the
  case and never expires;
- a window clerk's scans are recorded attached at once (``record_window_scans``, source ``window``);
- ``sweep_expired`` deletes expired unattached uploads, ``delete_case_files`` a purged case's files.
  A stored object is deleted only when no row refers to its key any more (content addressing lets
  two rows share one object).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from engine.errors import NotFound, RateLimited, ValidationFailed
from engine.platform.uploads import ALLOWED_TYPES, DEFAULT_MAX_BYTES, Store, check_upload, sanitize_image
from engine.store.models import Upload

SOURCES = ("applicant", "window", "supplement")
MAX_FILES_PER_MATERIAL = 20
MAX_MATERIALS = 50
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


class TooManyPendingUploads(RateLimited):
    code = "too_many_uploads"
    default_message = "未提交的上传文件过多，请先提交申请或等待其过期后再上传"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, retry_after=3600)


def citizen_owner(citizen_id: int) -> str:
    """The owner string of a citizen's uploads."""
    return f"citizen:{citizen_id}"


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def upload_view(row: Upload) -> dict[str, Any]:
    """What the uploader reads about an upload (no storage key)."""
    return {"id": str(row.id), "content_type": row.content_type, "size": row.size, "sha256": row.sha256,
            "name": row.name, "material": row.material, "source": row.source,
            "attached": row.case_id is not None,  # type: ignore[attr-defined]
            "created_at": row.created_at.isoformat(),
            "expires_at": row.expires_at.isoformat() if row.expires_at else None}


async def save_upload(store: Store, *, owner: str, data: bytes, now: datetime,
                      ttl_s: int = 24 * 3600, max_bytes: int = DEFAULT_MAX_BYTES,
                      max_pending: int = 100) -> Upload:
    """Check (413 / 415), re-encode photos, store the bytes and record the upload (unattached,
    expiring ``ttl_s`` from ``now``). More than ``max_pending`` unattached uploads → 429."""
    kind = check_upload(data, max_bytes=max_bytes)
    pending = await Upload.filter(owner=owner, case_id=None, expires_at__gt=now).count()
    if pending >= max_pending:
        raise TooManyPendingUploads()
    clean = await asyncio.to_thread(sanitize_image, data, kind)
    key = await asyncio.to_thread(store.put, "upload", clean, kind)
    return await Upload.create(
        id=uuid.uuid4(), owner=owner, source="applicant", name=f"材料.{EXTENSIONS[kind]}", key=key,
        content_type=kind, size=len(clean), sha256=hashlib.sha256(clean).hexdigest(), created_at=now,
        expires_at=now + timedelta(seconds=ttl_s))


async def owned_upload(owner: str, upload_id: Any) -> Upload:
    """The upload ``upload_id`` of ``owner`` (attached or not); 404 for anyone else's."""
    uid = _uuid(upload_id)
    row = await Upload.get_or_none(id=uid, owner=owner) if uid is not None else None
    if row is None:
        raise NotFound("文件不存在")
    return row


async def read_file(store: Store, row: Upload) -> bytes:
    """The stored bytes of ``row``."""
    return await asyncio.to_thread(store.get, row.key)


def parse_material_files(raw: Any, material_names: list[str]) -> dict[str, list[uuid.UUID]]:
    """``{"<material name>": ["<upload id>", …]}`` checked against the item's materials (422)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > MAX_MATERIALS:
        raise ValidationFailed("材料填写有误", fields={"materials": "应为对象：材料名称 → 上传文件编号列表"})
    parsed: dict[str, list[uuid.UUID]] = {}
    problems: dict[str, str] = {}
    for name, ids in raw.items():
        label = f"materials.{name}"
        if name not in material_names:
            problems[label] = "该事项没有此材料"
            continue
        if not isinstance(ids, list) or len(ids) > MAX_FILES_PER_MATERIAL:
            problems[label] = f"应为上传文件编号列表（最多 {MAX_FILES_PER_MATERIAL} 个）"
            continue
        uids = [_uuid(i) if isinstance(i, str) else None for i in ids]
        if any(u is None for u in uids):
            problems[label] = "上传文件编号格式不正确"
            continue
        if len(set(uids)) != len(uids):
            problems[label] = "同一文件重复提交"
            continue
        if uids:
            parsed[name] = [u for u in uids if u is not None]
    if problems:
        raise ValidationFailed("材料填写有误，请检查标注的材料", fields=problems)
    return parsed


async def claim_uploads(owner: str, files: dict[str, list[uuid.UUID]], now: datetime) -> None:
    """Every id is an unexpired, unattached upload of ``owner``, used once (422 naming the material)."""
    seen: set[uuid.UUID] = set()
    problems: dict[str, str] = {}
    for name, ids in files.items():
        rows = {r.id: r for r in await Upload.filter(id__in=ids, owner=owner)}
        for uid in ids:
            row = rows.get(uid)
            if uid in seen:
                problems[f"materials.{name}"] = "同一文件不能用于多项材料"
            elif row is None or (row.case_id is None and row.expires_at is not None  # type: ignore[attr-defined]
                                 and row.expires_at <= now):
                problems[f"materials.{name}"] = f"「{name}」的上传文件不存在或已过期，请重新上传"
            elif row.case_id is not None:  # type: ignore[attr-defined]
                problems[f"materials.{name}"] = f"「{name}」的上传文件已用于其他申请，请重新上传"
            seen.add(uid)
    if problems:
        raise ValidationFailed("部分材料文件无效，请重新上传", fields=problems)


async def attach_uploads(case_id: int, owner: str, files: dict[str, list[uuid.UUID]], *, source: str,
                         now: datetime, using_db: Any = None) -> int:
    """Attach the claimed uploads to the case (each named ``<material>-<n>.<ext>``); how many.
    Only unattached uploads of ``owner`` move: a concurrent request cannot take one twice."""
    if source not in SOURCES:
        raise ValueError(source)
    attached = 0
    for material, ids in files.items():
        base = await Upload.filter(case_id=case_id, material=material).using_db(using_db).count()
        for n, uid in enumerate(ids, start=base + 1):
            row = await Upload.get_or_none(id=uid).using_db(using_db)
            if row is None:
                continue
            ext = EXTENSIONS.get(row.content_type, "bin")
            attached += await Upload.filter(id=uid, owner=owner, case_id=None).using_db(using_db).update(
                case_id=case_id, material=material, source=source, name=f"{material[:100]}-{n}.{ext}",
                expires_at=None, attached_at=now)
    return attached


async def record_window_scans(case_id: int, clerk: str, scans: list[dict[str, Any]], *, now: datetime,
                              using_db: Any = None) -> list[Upload]:
    """Rows for a clerk's window scans (already stored), attached to the case, source ``window``."""
    rows, counts = [], {}  # type: ignore[var-annotated]
    for scan in scans:
        material = str(scan["material"])[:100]
        counts[material] = counts.get(material, 0) + 1
        ext = ALLOWED_TYPES.get(scan["content_type"], "bin")
        rows.append(await Upload.create(
            id=uuid.uuid4(), owner=f"staff:{clerk}", case_id=case_id, material=material, source="window",
            name=f"{material}-{counts[material]}.{ext}", key=scan["key"], content_type=scan["content_type"],
            size=int(scan["size"]), sha256=scan["sha256"], created_at=now, attached_at=now, using_db=using_db))
    return rows


async def case_files(case_id: int) -> list[Upload]:
    """The files attached to a case, in upload order."""
    return await Upload.filter(case_id=case_id).order_by("attached_at", "created_at")


async def case_file(case_id: int, file_id: Any) -> Upload | None:
    uid = _uuid(file_id)
    return await Upload.get_or_none(id=uid, case_id=case_id) if uid is not None else None


async def file_by_id(file_id: Any) -> Upload | None:
    """An attached file by id (for staff, who then check the case)."""
    uid = _uuid(file_id)
    return await Upload.get_or_none(id=uid, case_id__not_isnull=True) if uid is not None else None


async def _drop(store: Store, rows: list[Upload]) -> int:
    """Delete the rows, then each stored object no remaining row refers to; objects deleted."""
    if not rows:
        return 0
    await Upload.filter(id__in=[r.id for r in rows]).delete()
    removed = 0
    for key in sorted({r.key for r in rows}):
        if not await Upload.filter(key=key).exists():
            await asyncio.to_thread(store.delete, key)
            removed += 1
    return removed


async def delete_case_files(store: Store, case_id: int) -> int:
    """Delete a case's files (retention purge); how many stored objects went."""
    return await _drop(store, await Upload.filter(case_id=case_id))


async def sweep_expired(store: Store, now: datetime, *, batch: int = 500) -> int:
    """Delete unattached uploads whose time ran out; how many rows."""
    total = 0
    while True:
        rows = await Upload.filter(case_id=None, expires_at__lte=now).limit(batch)
        await _drop(store, rows)
        total += len(rows)
        if len(rows) < batch:
            return total


__all__ = ["MAX_FILES_PER_MATERIAL", "SOURCES", "TooManyPendingUploads", "attach_uploads", "case_file",
           "case_files", "citizen_owner", "claim_uploads", "delete_case_files", "file_by_id", "owned_upload",
           "parse_material_files", "read_file", "record_window_scans", "save_upload", "sweep_expired",
           "upload_view"]
