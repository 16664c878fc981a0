"""The window's case desk: find a case by its number or the applicant's ID number, and print the
受理回执 (acceptance receipt) a walk-in citizen takes home.

An ID-number search is a personal-data lookup: it is written to the applicant's access log. The
ID number is never stored or searched in clear — cases carry the citizen's openid or the window
placeholder derived from the ID's blind index (``engine.citizen.window_cases``).
"""

from __future__ import annotations

import re
from typing import Any

from engine.accountability.audit import log_data_access
from engine.accountability.privacy import PiiKeys, blind_index, is_valid_id_number, mask_id_number
from engine.certificates.qr import qr_svg
from engine.citizen.case_views import STATUS_LABELS
from engine.citizen.identity import find_by_id_number
from engine.citizen.window_cases import placeholder_openid
from engine.errors import NotFound, ValidationFailed
from engine.kernel.cases import CaseEngine, current_data
from engine.kernel.sla import CST
from engine.platform.files import case_files
from engine.store.models import Case, HumanTask, StaffUser
from engine.workbench.files import ForbiddenCaseFile, department_for
from engine.workbench.staff import departments_of

MAX_RESULTS = 50
MAX_CASE_ID = 2**31 - 1  # ids no row can have are a 404, not a database integer overflow
DESK_ROLES = frozenset({"clerk", "admin"})
_CASE_NO = re.compile(r"[A-Z0-9][A-Z0-9-]{5,39}")


def _row(case: Case, catalog: Any, applicant_id: str | None, task_id: str | None) -> dict[str, Any]:
    name = catalog.get(case.service).name if catalog is not None and case.service in catalog else case.service
    return {"id": case.id, "case_no": case.case_no, "service": case.service, "service_name": name,
            "status": case.status, "status_label": STATUS_LABELS.get(case.status, case.status),
            "channel": case.channel, "applicant_id": applicant_id, "created_at": case.created_at.isoformat(),
            "due_at": case.due_at.isoformat() if case.due_at else None, "task_id": task_id}


async def _my_task(staff: StaffUser, case: Case) -> str | None:
    task = await HumanTask.filter(case_id=case.id, department__in=departments_of(staff),
                                  state__in=("ready", "claimed", "waiting")).exclude(kind="cosign").first()
    return str(task.id) if task else None


async def search_cases(engine: CaseEngine, staff: StaffUser, query: Any, *, pii_keys: PiiKeys,
                       catalog: Any = None) -> list[dict[str, Any]]:
    """Cases by case number (exact) or by the applicant's ID number (newest first)."""
    text = query.strip().upper() if isinstance(query, str) else ""
    if is_valid_id_number(text):
        owners = [placeholder_openid(text, pii_keys)]
        citizen = await find_by_id_number(text, pii_keys=pii_keys)
        if citizen is not None:
            owners.append(citizen.openid)
        cases = await Case.filter(applicant__in=owners).order_by("-id").limit(MAX_RESULTS)
        await log_data_access(None, actor=staff.username, department=(departments_of(staff) or [None])[0],
                              subject_hash=blind_index(text, pii_keys.blind_index_key),
                              subject_masked=mask_id_number(text), dataset="case_search", fields_read=["id_number"],
                              purpose=f"窗口按身份证号查询办件（{len(cases)} 件）", now=engine.deps.clock())
        masked = mask_id_number(text)
        return [_row(c, catalog, masked, await _my_task(staff, c)) for c in cases]
    if _CASE_NO.fullmatch(text):
        case = await Case.get_or_none(case_no=text)
        return [_row(case, catalog, None, await _my_task(staff, case))] if case else []
    raise ValidationFailed("请输入办件编号或 18 位身份证号", fields={"q": "办件编号或身份证号"})


def _how(material: dict[str, Any], count: int) -> str:
    if material.get("by_certificate"):
        return "电子证照（免提交）"
    if material.get("source_type") == "shared_data":
        return "共享数据获取"
    if count:
        return f"已收取 {count} 份"
    if material.get("may_follow"):
        return "容缺受理，后补"
    return "未收取" if material.get("required", True) else "未提交（非必需）"


async def receipt(engine: CaseEngine, staff: StaffUser, case_id: int, *, catalog: Any = None,
                  base_url: str = "") -> dict[str, Any]:
    """The 受理回执 of a case: what was received, when it is promised, a QR to follow it."""
    case = await Case.get_or_none(id=case_id) if 1 <= case_id <= MAX_CASE_ID else None
    if case is None:
        raise NotFound("办件不存在")
    if not DESK_ROLES & set(staff.roles or []) and await department_for(staff, case) is None:
        raise ForbiddenCaseFile("该办件不属于您所在的部门")
    _, workflow, _ = await engine.load(case.id)
    data = current_data(workflow)
    applicant = data.get("applicant") if isinstance(data.get("applicant"), dict) else {}
    service = data.get("service") if isinstance(data.get("service"), dict) else {}
    files = await case_files(case.id)
    counts: dict[str, int] = {}
    for row in files:
        counts[row.material or "其他材料"] = counts.get(row.material or "其他材料", 0) + 1
    materials = []
    for material in data.get("materials") or []:
        if isinstance(material, dict):
            name = str(material.get("name"))
            materials.append({"name": name, "how": _how(material, counts.get(name, 0)), "files": counts.pop(name, 0)})
    materials += [{"name": name, "how": f"已收取 {n} 份", "files": n} for name, n in counts.items()]
    item = catalog.get(case.service) if catalog is not None and case.service in catalog else None
    track = f"{base_url}/m/#/cases/{case.id}"
    department = service.get("department") or (item.department if item else None)
    return {
        "case_no": case.case_no, "service_name": service.get("name") or (item.name if item else case.service),
        "applicant_name": applicant.get("name_masked"), "applicant_id": applicant.get("id_masked"),
        "department_name": engine.deps.departments.get(department or "", department),
        "received_at": case.created_at.isoformat(),
        "promised_date": case.due_at.astimezone(CST).date().isoformat() if case.due_at else None,
        "promised_days": item.promised_days if item else None, "clerk": case.agent or staff.username,
        "materials": materials, "track_url": track, "qr_svg": qr_svg(track)}


__all__ = ["MAX_RESULTS", "receipt", "search_cases"]
