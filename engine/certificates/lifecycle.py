"""Certificate lifecycle for staff: suspend, revoke, restore — by the issuing department, with a reason.

The issuing department of a certificate is its type's ``department`` in
``processes/certificate_types.yaml``. Its officers and supervisors (and admins) may act; others
get 403 ``not_issuing_department``. Transitions: 暂停 suspend (01 → 02), 吊销 revoke (01/02 → 03,
final), 恢复 restore (02 → 01). Each change goes through ``store.set_state`` (audited in the same
transaction, kind ``certificate.state``); ``/certificates/verify`` reads the register on every
scan, so the new state is answered at once. ``history`` is the certificate's audit trail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from tortoise.transactions import in_transaction

from engine.accountability.audit import log_data_access
from engine.accountability.privacy import blind_index, mask_name, normalise_id
from engine.certificates.signing import CertState
from engine.certificates.state_cache import state_changed
from engine.certificates.store import set_state
from engine.errors import Conflict, Forbidden, NotFound, ValidationFailed
from engine.store.audit_models import AuditRecord
from engine.store.certificate_models import Certificate

MANAGE_ROLES = ("officer", "supervisor", "admin")
REASON_MAX = 200
# action -> (states it applies to, new state, Chinese verb)
ACTIONS: dict[str, tuple[frozenset[CertState], CertState, str]] = {
    "suspend": (frozenset({CertState.VALID}), CertState.SUSPENDED, "暂停"),
    "revoke": (frozenset({CertState.VALID, CertState.SUSPENDED}), CertState.REVOKED, "吊销"),
    "restore": (frozenset({CertState.SUSPENDED}), CertState.VALID, "恢复"),
}
SEARCH_PURPOSE = "证照管理：按持证人查询"


class NotIssuingDepartment(Forbidden):
    code = "not_issuing_department"
    default_message = "只有签发该证照的部门可以变更其状态"


class StateChangeRefused(Conflict):
    code = "certificate_state_conflict"
    default_message = "证照当前状态不能执行该操作"


@dataclass
class Manager:
    """Who acts: a staff member (username, roles, departments) or the CLI operator (``system``)."""

    username: str
    roles: list[str]
    departments: list[str]
    system: bool = False


@lru_cache(maxsize=8)
def _types(path: str, _mtime: float) -> dict[str, dict[str, Any]]:
    from engine.certificates.connector import load_certificate_types

    return load_certificate_types(Path(path))


def certificate_types(processes_dir: Path | str) -> dict[str, dict[str, Any]]:
    path = Path(processes_dir) / "certificate_types.yaml"
    return _types(str(path), path.stat().st_mtime) if path.exists() else {}


def issuing_department(row: Certificate, types: dict[str, dict[str, Any]]) -> str | None:
    return (types.get(row.type_code) or {}).get("department")


def may_manage(row: Certificate, manager: Manager, types: dict[str, dict[str, Any]]) -> bool:
    if manager.system or "admin" in manager.roles:
        return True
    department = issuing_department(row, types)
    return bool(department) and department in manager.departments and bool(set(manager.roles) & set(MANAGE_ROLES))


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed("请填写变更原因", fields={"reason": "不能为空"})
    if len(reason) > REASON_MAX:
        raise ValidationFailed("变更原因过长", fields={"reason": f"最多 {REASON_MAX} 字"})
    return reason.strip()


async def find(key: int | str) -> Certificate:
    """A certificate by id (int or digits) or identifier (证照标识)."""
    row = None
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit() and len(key) < 10):
        row = await Certificate.get_or_none(id=int(key))
    if row is None and isinstance(key, str):
        row = await Certificate.get_or_none(identifier=key.strip())
    if row is None:
        raise NotFound("电子证照不存在")
    return row


async def change_state(key: int | str, action: str, manager: Manager, reason: Any,
                       types: dict[str, dict[str, Any]],
                       after: Callable[[Any, Certificate, str], Awaitable[None]] | None = None) -> Certificate:
    """Suspend, revoke or restore a certificate (see the module docstring). ``after(conn, row,
    reason)`` runs in the same transaction once the state is stored (the holder's notice)."""
    if action not in ACTIONS:
        raise ValidationFailed("操作应为 suspend、revoke 或 restore", fields={"action": "未知操作"})
    text = _reason(reason)
    row = await find(key)
    if not may_manage(row, manager, types):
        raise NotIssuingDepartment()
    allowed, target, verb = ACTIONS[action]
    current = CertState(row.state)
    if current not in allowed:
        raise StateChangeRefused(f"证照当前状态为「{current.label}」，不能{verb}")
    async with in_transaction() as conn:
        changed = await set_state(row.identifier, target, conn, actor=manager.username, reason=text)
        if after is not None:
            await after(conn, changed, text)
    await state_changed()  # committed: every process's verification cache re-reads the register
    return changed


async def history(identifier: str) -> list[dict[str, Any]]:
    """Issue and state changes of the certificate, oldest first (from the audit chain)."""
    import json

    # row id, not seq: a record waiting for the sequencer (batch mode) has no seq yet; one
    # certificate's changes are serialised by its row, so their ids follow their order
    rows = await AuditRecord.filter(subject=identifier, kind__in=["certificate.issue", "certificate.state"]).order_by(
        "id")
    out = []
    for r in rows:
        detail = json.loads(r.detail or "{}")
        out.append({"at": r.at.isoformat(), "kind": r.kind, "actor": r.actor, "from": detail.get("from"),
                    "to": detail.get("to") or (CertState.VALID.value if r.kind == "certificate.issue" else None),
                    "reason": detail.get("reason"), "case_no": r.case_no})
    return out


async def search(query: str, manager: Manager, types: dict[str, dict[str, Any]], *, pii_key: bytes,
                 limit: int = 50) -> list[Certificate]:
    """Certificates by identifier or the holder's ID number (credit code for companies), limited to
    those the manager's departments issued. A search by holder is a personal-data read: logged."""
    text = (query or "").strip()
    if not text or len(text) > 128:
        raise ValidationFailed("请输入证照标识或持证人证件号码", fields={"q": "1–128 个字符"})
    rows = list(await Certificate.filter(identifier=text).limit(1))
    by_holder = not rows
    if by_holder:
        hashed = blind_index(normalise_id(text), pii_key)
        rows = list(await Certificate.filter(holder_code_hash=hashed).order_by("-issue_date", "-id").limit(limit))
    visible = [r for r in rows if may_manage(r, manager, types)]
    if by_holder and visible:
        masked = visible[0].holder_code_masked
        await log_data_access(None, actor=manager.username, department=(manager.departments or [None])[0],
                              subject_hash=visible[0].holder_code_hash, subject_masked=masked,
                              dataset="certificate", fields_read=["identifier", "name", "state"],
                              purpose=SEARCH_PURPOSE)
    return visible


def staff_view(row: Certificate, types: dict[str, dict[str, Any]], state: CertState) -> dict[str, Any]:
    """What the console shows: masked holder, stored and effective state, issuing department."""
    from engine.certificates.signing import HOLDER_CITIZEN_ID

    holder = mask_name(row.holder_name) if row.holder_code_type == HOLDER_CITIZEN_ID else row.holder_name
    return {"id": row.id, "identifier": row.identifier, "name": row.name, "number": row.number,
            "type_code": row.type_code, "issuer_name": row.issuer_name,
            "department": issuing_department(row, types), "holder_name": holder,
            "holder_code_masked": row.holder_code_masked, "issue_date": row.issue_date.isoformat(),
            "valid_to": row.valid_to.isoformat() if row.valid_to else None, "state": state.value,
            "state_label": state.label, "case_id": row.case_id}


__all__ = ["ACTIONS", "MANAGE_ROLES", "Manager", "NotIssuingDepartment", "StateChangeRefused", "certificate_types",
           "change_state", "find", "history", "issuing_department", "may_manage", "search", "staff_view"]
