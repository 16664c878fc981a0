"""Four-eyes publishing: a designer's deploy is ``pending`` until a second person approves it.

Who may approve or reject: an ``admin``, or a ``supervisor`` of a department whose lanes the
process uses — and never the person who deployed the version (``self_approval``). An approved
version becomes live at its ``effective_at`` (at once when none is given); new cases start on
the live version (``CaseEngine.live_definition``), cases already running keep theirs.

States as the designer sees them (``version_state``): ``pending``, ``live`` (the newest approved
and effective version), ``scheduled`` (approved, effective later), ``superseded`` (approved,
replaced by a newer live one), ``rejected``. Every decision is in the designer audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from lxml import etree

from engine.bpmn.parser import BPMN_NS, files_from_json
from engine.designer import audit
from engine.designer.model_input import read_model
from engine.errors import Conflict, Forbidden, GovflowError, NotFound, ValidationFailed
from engine.kernel.cases import CaseEngine
from engine.store.models import ProcessDefinition

REVIEW_ROLES = ("admin", "supervisor")
NOTE_MAX = 500


class SelfApproval(Forbidden):
    code = "self_approval"
    default_message = "不能审批自己部署的版本（四眼原则：须由另一人审批）"


class NotReviewer(Forbidden):
    code = "not_reviewer"
    default_message = "只有管理员或流程所涉部门的负责人可以审批流程版本"


class NotPending(Conflict):
    code = "version_not_pending"
    default_message = "该版本不是待审批状态"


class VersionNotLive(Conflict):
    code = "version_not_live"
    default_message = "目标版本尚未审批生效，不能把办件迁入"


@dataclass
class Reviewer:
    username: str
    roles: list[str]
    departments: list[str]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def live_of(rows: Iterable[ProcessDefinition], now: datetime | None = None) -> ProcessDefinition | None:
    """The live version among ``rows`` (one process): newest approved version already effective."""
    now = now or _now()
    live = None
    for d in rows:
        if d.review_state == "approved" and (d.effective_at is None or d.effective_at <= now):
            if live is None or d.version > live.version:
                live = d
    return live


def version_state(d: ProcessDefinition, live: ProcessDefinition | None, now: datetime | None = None) -> str:
    now = now or _now()
    if d.review_state in ("pending", "rejected"):
        return d.review_state
    if live is not None and d.id == live.id:
        return "live"
    if d.effective_at is not None and d.effective_at > now:
        return "scheduled"
    return "superseded"


async def lane_departments(engine: CaseEngine, definition: ProcessDefinition) -> set[str]:
    """The department codes of the lanes the version's process uses."""
    bundle = await engine.bundle_for(definition.id)
    return {dept for lane in bundle.lanes.values() if (dept := engine.lane_department(lane))}


async def may_review(engine: CaseEngine, definition: ProcessDefinition, reviewer: Reviewer) -> bool:
    """Whether ``reviewer`` may approve or reject ``definition`` (apart from the self-approval rule)."""
    if "admin" in reviewer.roles:
        return True
    if "supervisor" not in reviewer.roles:
        return False
    return bool(await lane_departments(engine, definition) & set(reviewer.departments))


def _note(note: Any, *, required: bool) -> str | None:
    if note is None and not required:
        return None
    if not isinstance(note, str) or (required and not note.strip()):
        raise ValidationFailed("请填写审批意见", fields={"note": "驳回须说明理由" if required else "应为文本"})
    if len(note) > NOTE_MAX:
        raise ValidationFailed("审批意见过长", fields={"note": f"最多 {NOTE_MAX} 字"})
    return note.strip() or None


def parse_effective_at(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationFailed("生效时间格式有误", fields={"effective_at": "应为 ISO 8601 时间"})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed("生效时间格式有误", fields={"effective_at": "应为 ISO 8601 时间，如 2026-12-01T00:00:00+08:00"}) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


async def _pending(engine: CaseEngine, process_id: str, version: int, reviewer: Reviewer) -> ProcessDefinition:
    definition = await ProcessDefinition.get_or_none(process_id=process_id, version=version)
    if definition is None:
        raise NotFound(f"流程 {process_id} 没有版本 {version}")
    if not await may_review(engine, definition, reviewer):
        raise NotReviewer()
    if definition.deployed_by == reviewer.username:
        raise SelfApproval()
    if definition.review_state != "pending":
        raise NotPending(f"该版本当前为「{definition.review_state}」，只能审批待审批的版本")
    return definition


async def _decide(definition: ProcessDefinition, state: str, reviewer: Reviewer, note: str | None,
                  effective_at: datetime | None) -> ProcessDefinition:
    now = _now()
    changed = await ProcessDefinition.filter(id=definition.id, review_state="pending").update(
        review_state=state, reviewed_by=reviewer.username, reviewed_at=now, review_note=note,
        effective_at=effective_at)
    if not changed:  # another reviewer decided first
        raise NotPending()
    await audit.record("approve" if state == "approved" else "reject", actor=reviewer.username,
                       process_id=definition.process_id, version=definition.version,
                       content_hash=definition.content_hash,
                       detail={"note": note, "deployed_by": definition.deployed_by,
                               "effective_at": effective_at.isoformat() if effective_at else None})
    return await ProcessDefinition.get(id=definition.id)


async def approve(engine: CaseEngine, process_id: str, version: int, reviewer: Reviewer, *,
                  note: Any = None, effective_at: Any = None) -> ProcessDefinition:
    """Approve a pending version: it becomes live at ``effective_at`` (ISO 8601; now if absent)."""
    note_text = _note(note, required=False)
    when = parse_effective_at(effective_at)
    definition = await _pending(engine, process_id, version, reviewer)
    return await _decide(definition, "approved", reviewer, note_text, when)


async def reject(engine: CaseEngine, process_id: str, version: int, reviewer: Reviewer, *,
                 note: Any = None) -> ProcessDefinition:
    """Reject a pending version (a reason is required); the live version stays live."""
    note_text = _note(note, required=True)
    definition = await _pending(engine, process_id, version, reviewer)
    return await _decide(definition, "rejected", reviewer, note_text, None)


async def require_live(process_id: str, version: int) -> None:
    """Refuse to move cases into a version that is not approved (pending or rejected)."""
    definition = await ProcessDefinition.get_or_none(process_id=process_id, version=version)
    if definition is not None and definition.review_state != "approved":
        raise VersionNotLive()


# ------------------------------------------------------------------ diff of two versions

_DI_NAMESPACES = ("http://www.omg.org/spec/BPMN/20100524/DI", "http://www.omg.org/spec/DD/20100524/DI",
                  "http://www.omg.org/spec/DD/20100524/DC")


def _canonical(element: etree._Element) -> str:
    """An element's meaning without its diagram: tag, attributes and text of it and its children
    that have no id of their own (those are compared separately)."""
    parts = [etree.QName(element).localname, repr(sorted(element.attrib.items())), (element.text or "").strip()]
    for child in element:
        if not isinstance(child.tag, str) or child.get("id") or etree.QName(child).namespace in _DI_NAMESPACES:
            continue
        if etree.QName(child).localname in ("incoming", "outgoing", "flowNodeRef"):
            parts.append(f"{etree.QName(child).localname}:{(child.text or '').strip()}")
            continue
        parts.append(_canonical(child))
    return "|".join(parts)


def _elements(files: dict[str, str]) -> dict[str, tuple[str, str]]:
    """id -> (canonical form, display name) of every identified BPMN element of the bundle's BPMN files."""
    found: dict[str, tuple[str, str]] = {}
    for name, text in files.items():
        if not name.endswith(".bpmn"):
            continue
        try:
            root = read_model(text, name).root
        except GovflowError:
            continue
        for element in root.iter():
            if not isinstance(element.tag, str) or etree.QName(element).namespace != BPMN_NS:
                continue
            element_id = element.get("id")
            if element_id and etree.QName(element).localname != "definitions":
                found[element_id] = (_canonical(element), element.get("name") or element_id)
    return found


def _other_files(files: dict[str, str]) -> dict[str, str]:
    return {n: t for n, t in files.items() if not n.endswith(".bpmn")}


async def diff(process_id: str, version: int) -> dict[str, Any]:
    """What version ``version`` changes against the live version: element ids added, removed and
    changed (diagram positions ignored), and other files (forms, DMN) changed."""
    rows = list(await ProcessDefinition.filter(process_id=process_id).order_by("version"))
    target = next((d for d in rows if d.version == version), None)
    if target is None:
        raise NotFound(f"流程 {process_id} 没有版本 {version}")
    live = live_of(rows)
    new_files = files_from_json(target.files)
    old_files = files_from_json(live.files) if live is not None else {}
    new, old = _elements(new_files), _elements(old_files)
    changed = sorted(i for i in new.keys() & old.keys() if new[i][0] != old[i][0])
    added, removed = sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys())
    other_new, other_old = _other_files(new_files), _other_files(old_files)
    return {
        "process_id": process_id, "version": version, "against_version": live.version if live else None,
        "added": added, "removed": removed, "changed": changed,
        "names": {i: (new.get(i) or old[i])[1] for i in [*added, *removed, *changed]},
        "files_changed": sorted(n for n in other_new.keys() | other_old.keys() if other_new.get(n) != other_old.get(n)),
    }


__all__ = ["REVIEW_ROLES", "NotPending", "NotReviewer", "Reviewer", "SelfApproval", "VersionNotLive", "approve",
           "diff", "lane_departments", "live_of", "may_review", "parse_effective_at", "reject", "require_live",
           "version_state"]
