"""What the officer of a bad review's rectification (差评回访核实 / 整改) sees: the rating and its
comment, the original case (number, service, result, dates) and the applicant's phone — masked; the
full number only on an explicit, audited reveal (``reveal_phone``) which the citizen finds in their
access log (我的信息被谁查看). The evaluator's account is never shown: the phone comes from the
original case's application, as the citizen gave it for that case.
"""

from __future__ import annotations

from typing import Any

from engine.accountability.audit import log_data_access
from engine.accountability.privacy import blind_index, mask_phone
from engine.errors import Conflict
from engine.kernel.cases import CaseEngine, current_data
from engine.store.models import Case, HumanTask, StaffUser

SERVICE = "rectification"
STATUS = {"running": "办理中", "completed": "已办结", "failed": "办理异常", "withdrawn": "已撤回"}


def _phone(data: dict[str, Any]) -> str | None:
    applicant = data.get("applicant") if isinstance(data.get("applicant"), dict) else {}
    form = data.get("form") if isinstance(data.get("form"), dict) else {}
    legal = form.get("legal_representative") if isinstance(form.get("legal_representative"), dict) else {}
    for value in (applicant.get("phone"), form.get("phone"), legal.get("phone")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


async def _original(engine: CaseEngine, review: dict[str, Any]) -> tuple[Case | None, dict[str, Any]]:
    case_no = review.get("case_no")
    original = await Case.get_or_none(case_no=case_no) if isinstance(case_no, str) else None
    if original is None:
        return None, {}
    _, workflow, _ = await engine.load(original.id)
    return original, current_data(workflow)


async def rectification_view(engine: CaseEngine, case: Case, data: dict[str, Any]) -> dict[str, Any] | None:
    """The rating, comment, original case and masked phone for a rectification case's task."""
    if case.service != SERVICE:
        return None
    review = data.get("review") if isinstance(data.get("review"), dict) else {}
    original, original_data = await _original(engine, review)
    phone = _phone(original_data)
    summary = engine.deps.serializer.load_summary(original.summary) if original and original.summary else {}
    service = original_data.get("service") if isinstance(original_data.get("service"), dict) else {}
    return {
        "level": review.get("level"), "comment": review.get("comment") or "",
        "case_no": review.get("case_no"), "department": review.get("department"),
        "department_name": engine.deps.departments.get(str(review.get("department") or ""), review.get("department")),
        "deadlines": data.get("deadlines"),
        "original": None if original is None else {
            "id": original.id, "case_no": original.case_no, "service": original.service,
            "service_name": service.get("name") or original.service, "status": original.status,
            "status_label": STATUS.get(original.status, original.status),
            "created_at": original.created_at.isoformat(),
            "completed_at": original.completed_at.isoformat() if original.completed_at else None,
            "result": (summary or {}).get("result") or {}},
        "phone_masked": mask_phone(phone) if phone else None,
    }


async def reveal_phone(engine: CaseEngine, staff: StaffUser, task: HumanTask) -> dict[str, Any]:
    """The full phone for the 回访, logged as a personal-data read of the original applicant."""
    case: Case = await Case.get(id=task.case_id)  # type: ignore[attr-defined]
    if case.service != SERVICE:
        raise Conflict("只有差评整改任务可以查看评价人联系电话")
    _, workflow, _ = await engine.load(case.id)
    review = current_data(workflow).get("review") or {}
    original, original_data = await _original(engine, review if isinstance(review, dict) else {})
    phone = _phone(original_data)
    if original is None or phone is None:
        raise Conflict("原办件没有联系电话")
    applicant = original_data.get("applicant") if isinstance(original_data.get("applicant"), dict) else {}
    keys = engine.deps.pii_keys
    id_number = applicant.get("id_number")
    if keys is not None and isinstance(id_number, str) and id_number:
        await log_data_access(
            None, actor=staff.username, department=task.department,
            subject_hash=blind_index(id_number, keys.blind_index_key), subject_masked=applicant.get("id_masked"),
            dataset="case", fields_read=["phone"], case_id=original.id, case_no=original.case_no,
            purpose=f"差评回访（整改件 {case.case_no}）：查看联系电话", now=engine.deps.clock())
    return {"phone": phone, "phone_masked": mask_phone(phone), "case_no": original.case_no}


__all__ = ["rectification_view", "reveal_phone"]
