"""Window intake (前台一口受理): a clerk files a case for a walk-in citizen.

The case is started exactly like a mobile application (``ApplicationService.apply`` with
``channel="window"`` and the clerk as actor). Its ``applicant`` is the citizen's openid when the
ID number is bound to an account, else ``window:<blind index prefix>`` — stable per ID number and
free of personal data — so the citizen can claim the case after binding later
(``engine.citizen.window_cases``, called by ``engine.citizen.identity.bind_real_name``). Scanned materials
are checked (type by magic bytes, size) and images stripped of their metadata (EXIF position,
``engine.platform.uploads.clean_upload``, as citizen uploads) before anything is filed, stored in the content-addressed
store, recorded as files of the case (``engine.platform.files``, source ``window``) and listed on
the case timeline by material name, size and SHA-256 (never the original file name, which may
carry personal data).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from tortoise.transactions import in_transaction

from engine.accountability import audit
from engine.accountability.audit import log_data_access
from engine.accountability.privacy import PiiKeys, blind_index, mask_id_number
from engine.citizen.applications import Applicant, ApplicationService
from engine.citizen.identity import check_real_name_input, find_by_id_number
from engine.citizen.window_cases import placeholder_openid
from engine.errors import ValidationFailed
from engine.kernel.cases import CaseResult
from engine.platform.files import record_window_scans
from engine.platform.uploads import DEFAULT_MAX_BYTES, Store, StoredFile, check_upload, clean_upload, put_file
from engine.store.models import CaseEvent

WINDOW_CHANNEL, WINDOW_DEPARTMENT = "window", "window"
MAX_FILES, MAX_LABEL = 20, 50


@dataclass(frozen=True)
class Upload:
    """One scanned material: its material name (e.g. 身份证复印件) and the bytes."""

    material: str
    data: bytes


def check_uploads(uploads: list[Upload], *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Refuse the whole intake (413 / 415 / 422) before anything is stored or filed."""
    if len(uploads) > MAX_FILES:
        raise ValidationFailed(f"一次最多上传 {MAX_FILES} 份材料", fields={"materials": "材料过多"})
    for upload in uploads:
        if not upload.material.strip() or len(upload.material) > MAX_LABEL:
            raise ValidationFailed("材料名称填写有误", fields={"material_names": f"应为 1–{MAX_LABEL} 字"})
        check_upload(upload.data, max_bytes=max_bytes)


def _phone(phone: Any) -> str | None:
    if phone in (None, ""):
        return None
    text = str(phone).strip()
    if not (text.isdigit() and 7 <= len(text) <= 15):
        raise ValidationFailed("联系电话填写有误", fields={"phone": "应为 7–15 位数字"})
    return text


async def window_intake(applications: ApplicationService, store: Store, *, service: str, form: Any,
                        name: Any, id_number: Any, phone: Any, uploads: list[Upload], clerk: str,
                        pii_keys: PiiKeys, max_bytes: int = DEFAULT_MAX_BYTES) -> CaseResult:
    """File the case for the walk-in citizen, store the scans and note them on the timeline."""
    clean_name, clean_id = check_real_name_input(name, id_number)
    clean_phone = _phone(phone)
    applications.validate_form(applications.catalog.get(service), form)
    check_uploads(uploads, max_bytes=max_bytes)
    citizen = await find_by_id_number(clean_id, pii_keys=pii_keys)
    openid = citizen.openid if citizen is not None else placeholder_openid(clean_id, pii_keys)
    # scans lose their metadata (EXIF position) like citizen uploads; an unreadable image refuses
    # the intake before any file is stored
    cleaned = [(u.material.strip(), await asyncio.to_thread(clean_upload, u.data, max_bytes=max_bytes))
               for u in uploads]
    stored: list[tuple[str, StoredFile]] = [
        (material, await asyncio.to_thread(put_file, store, material, kind, clean))
        for material, (kind, clean) in cleaned]
    files = [{"material": m, "key": f.key, "sha256": f.sha256, "size": f.size, "content_type": f.content_type}
             for m, f in stored]
    result = await applications.apply(
        service, form, applicant=Applicant(id_number=clean_id, name=clean_name, openid=openid, phone=clean_phone),
        channel=WINDOW_CHANNEL, actor=clerk, extra={"received_materials": files})
    summary = "；".join(f"{f['material']}（{f['size']} 字节）" for f in files) or "无纸质材料"
    now = applications.engine.deps.clock()
    async with in_transaction() as conn:
        await CaseEvent.create(case_id=result.id, kind="materials_received", actor=clerk,
                               department=WINDOW_DEPARTMENT, detail={"opinion": f"窗口收件：{summary}", "files": files},
                               created_at=now, using_db=conn)
        # the scans as files of the case (source "window"): the back office opens them like uploads
        await record_window_scans(result.id, clerk, files, now=now, using_db=conn)
        # the clerk took the citizen's identity and papers: the citizen sees it in their access log
        read = await log_data_access(
            conn, actor=clerk, department=WINDOW_DEPARTMENT, subject_hash=blind_index(clean_id, pii_keys.blind_index_key),
            subject_masked=mask_id_number(clean_id), dataset="window_intake",
            fields_read=["name", "id_number", *(["phone"] if clean_phone else []), "materials"], case_id=result.id,
            case_no=result.case_no, purpose=f"窗口受理「{applications.catalog.get(service).name}」", audit=False)
        await audit.append(conn, [audit.AuditEntry("intake", actor=clerk, department=WINDOW_DEPARTMENT,
                                                   case_no=result.case_no, detail={"files": files}),
                                  audit.access_entry(read)], now=now)
    return result


__all__ = ["MAX_FILES", "Upload", "check_uploads", "window_intake"]
