"""The citizen's personal-data access log (个人信息查询记录): reads of a citizen's own data.

Rows are ``DataAccessLog`` entries whose subject is the citizen's own ID number (matched by its
keyed hash, the same blind index the real-name binding stored), so a citizen sees only reads of
their own data; an account without a real name has none. Actors are shown masked: the caller
is 本人, staff by a masked account name under their department, anonymous verifiers as such.
"""

from __future__ import annotations

from typing import Any

from engine.accountability.privacy import mask_middle
from engine.store.identity_models import Citizen
from engine.store.shared_models import DataAccessLog

DATASET_LABELS = {
    "citizen": "实名身份信息", "population": "人口库信息", "birth_records": "出生医学证明信息",
    "credit_blacklist": "失信名单核查", "certificate": "电子证照", "case": "办件申请信息",
    "window_intake": "窗口受理身份信息和材料",
}
FIELD_LABELS = {
    "name": "姓名", "id_number": "身份证号", "phone": "联系电话", "materials": "申请材料", "applicant": "申请人信息",
    "form": "申请表", "birth_date": "出生日期", "household_region": "户籍地", "state": "证照状态",
}


def actor_label(actor: str | None, citizen_id: int) -> str:
    """Who read the data, as the citizen sees it: never a full account name or another person."""
    if not actor or actor == "system":
        return "系统"
    if actor == f"citizen:{citizen_id}":
        return "本人"
    if actor.startswith("citizen:"):
        return "其他用户（扫码核验）"
    if actor.startswith("ip:"):
        return "匿名核验"
    if actor.startswith("verifier:"):  # a registered verifier (用证方): verifier:<id>:<institution>
        parts = actor.split(":", 2)
        return f"用证方：{parts[2]}" if len(parts) == 3 and parts[2] else "用证方"
    return mask_middle(actor, 2, 1)


def entry_view(row: DataAccessLog, citizen_id: int, departments: dict[str, str]) -> dict[str, Any]:
    return {
        "id": row.id, "at": row.created_at.isoformat(), "department": row.department,
        "department_name": departments.get(row.department or "", row.department) if row.department else None,
        "actor": actor_label(row.actor, citizen_id), "case_no": row.case_no, "purpose": row.purpose,
        "dataset": row.dataset, "dataset_label": DATASET_LABELS.get(row.dataset, row.dataset),
        "fields": [FIELD_LABELS.get(str(f), str(f)) for f in row.fields_read or []],
    }


async def citizen_access_log(citizen_id: int, *, page: int, size: int,
                             departments: dict[str, str]) -> dict[str, Any] | None:
    """The reads of the citizen's own data, newest first (none without a bound real name);
    ``None`` when the account does not exist."""
    citizen = await Citizen.get_or_none(id=citizen_id)
    if citizen is None:
        return None
    if not citizen.id_hash:
        return {"items": [], "page": page, "size": size, "total": 0}
    query = DataAccessLog.filter(subject_hash=citizen.id_hash)
    total = await query.count()
    rows = await query.order_by("-created_at", "-id").offset((page - 1) * size).limit(size)
    return {"items": [entry_view(r, citizen.id, departments) for r in rows], "page": page, "size": size,
            "total": total}


async def name_case(access_log_id: int, *, case_id: int, case_no: str) -> None:
    """Name the case a read was for once the case exists (an application reads the applicant's
    identity before its case has a number)."""
    await DataAccessLog.filter(id=access_log_id).update(case_id=case_id, case_no=case_no)


__all__ = ["DATASET_LABELS", "FIELD_LABELS", "actor_label", "citizen_access_log", "entry_view", "name_case"]
