"""Absence delegation (代理): an officer away names a colleague who stands in for them for a period.

Rules (docs/operations-rules.md):

* **Who.** The delegate is an active staff account sharing at least one department with the officer
  (the same rule as 转办: work stays in the department that owns it). The officer sets and cancels
  their own delegation; a supervisor or admin may set or cancel one for an officer of one of their
  departments (someone fell ill). One delegation per officer at a time: periods may not overlap.
* **When.** ``[starts_at, ends_at)``, at most ``MAX_DAYS`` days. Every check compares with the
  clock at the moment of the request: the delegation ends by itself, no job needed.
* **What.** During the period the delegate sees, in their inbox, every open task the officer
  *holds* — claimed by the officer, transferred (转办) to them, 加签 side tasks assigned to them —
  including tasks that reach the officer during the period, and may claim, release, complete,
  return, transfer, add a signer and sign them. Ready tasks of the department pool are the
  delegate's own work anyway. A task handled for the officer stays the officer's (claiming it
  claims it for the officer), so when the period ends the officer finds it where they left it.
* **Identity.** The delegate is the person who signs: ``completed_by`` and the timeline's actor are
  the delegate, the timeline and the audit record add ``on_behalf_of`` (the officer). Distinct
  会签 signers and 回避 apply to the delegate's own identity: a delegate who signed one 会签
  instance cannot sign another for the officer, and the officer's earlier steps do not recuse the
  delegate (nor the other way round).
* **Outside the period** the officer's tasks are not in the delegate's inbox; opening or acting on
  one answers 403 ``delegation_not_active`` (before it starts, after it ended, or cancelled).
* Setting and cancelling are audited (``delegation.set`` / ``delegation.cancel``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from engine.accountability import audit
from engine.errors import Conflict, Forbidden, NotFound, ValidationFailed
from engine.store.models import Delegation, HumanTask, StaffUser

MAX_DAYS = 90
MANAGER_ROLES = ("supervisor", "admin")


class DelegationNotActive(Forbidden):
    code = "delegation_not_active"
    default_message = "不在代理期内（代理尚未开始、已结束或已取消），不能查看或办理该工作人员的任务"


class DelegateNotColleague(Forbidden):
    code = "delegate_other_department"
    default_message = "代理人须与被代理人同属一个部门"


class DelegationNotYours(Forbidden):
    code = "delegation_not_yours"
    default_message = "只能为本人设置或取消代理（科室负责人、管理员可为本部门人员设置）"


class DelegationOverlaps(Conflict):
    code = "delegation_overlaps"
    default_message = "该期间已有代理安排，请先取消原代理或调整时间"


def _utc(when: datetime) -> datetime:
    """Filters compare in UTC: SQLite compares the stored UTC text with the parameter's text."""
    return when.astimezone(UTC)


def is_active(d: Delegation, now: datetime) -> bool:
    return d.cancelled_at is None and d.starts_at <= now < d.ends_at


def state_of(d: Delegation, now: datetime) -> str:
    if d.cancelled_at is not None:
        return "cancelled"
    return "scheduled" if now < d.starts_at else "active" if now < d.ends_at else "ended"


STATE_LABELS = {"scheduled": "未开始", "active": "代理中", "ended": "已结束", "cancelled": "已取消"}


async def principals(username: str, now: datetime) -> dict[str, str]:
    """The officers ``username`` stands in for at ``now``: username → name."""
    now = _utc(now)
    rows = await Delegation.filter(delegate=username, ends_at__gt=now, starts_at__lte=now,
                                   cancelled_at__isnull=True).values_list("officer", flat=True)
    if not rows:
        return {}
    users = await StaffUser.filter(username__in=list(rows), active=True).values_list("username", "name")
    return dict(users)


async def holder(staff: StaffUser, task: HumanTask, now: datetime) -> tuple[str, dict[str, str] | None]:
    """Whose hands ``staff`` acts with on ``task``: ``(staff.username, None)``, or, when the task is
    held by an officer ``staff`` stands in for now, ``(officer, {"on_behalf_of": officer,
    "on_behalf_of_name": name})`` — the detail the timeline and the audit record carry."""
    owner = task.assignee
    if not owner or owner == staff.username:
        return staff.username, None
    officers = await principals(staff.username, now)
    if owner in officers:
        return owner, {"on_behalf_of": owner, "on_behalf_of_name": officers[owner]}
    return staff.username, None


async def check_outside_period(staff: StaffUser, task: HumanTask) -> None:
    """403 ``delegation_not_active`` when ``task``'s holder once named (or will name) ``staff`` their
    delegate but not now — the clear answer instead of "another department's task"."""
    if task.assignee and task.assignee != staff.username and await Delegation.filter(
            officer=task.assignee, delegate=staff.username).exists():
        raise DelegationNotActive()


# ------------------------------------------------------------------ set / cancel / list
def _period(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    if ends_at <= starts_at:
        raise ValidationFailed("代理结束时间须晚于开始时间", fields={"to": "应晚于开始时间"})
    if ends_at <= now:
        raise ValidationFailed("代理结束时间已过", fields={"to": "应晚于当前时间"})
    if ends_at - starts_at > timedelta(days=MAX_DAYS):
        raise ValidationFailed(f"代理期限最长 {MAX_DAYS} 天", fields={"to": f"期限不能超过 {MAX_DAYS} 天"})


async def _officer_for(actor: StaffUser, officer: str | None) -> StaffUser:
    if not officer or officer == actor.username:
        return actor
    user = await StaffUser.get_or_none(username=officer, active=True)
    if user is None:
        raise NotFound("被代理人不存在")
    manages = set(actor.roles or []) & set(MANAGER_ROLES)
    if "admin" not in (actor.roles or []) and not (manages and set(actor.departments or [])
                                                      & set(user.departments or [])):
        raise DelegationNotYours()
    return user


async def set_delegation(actor: StaffUser, *, delegate: str, starts_at: datetime, ends_at: datetime,
                         officer: str | None = None, reason: str | None = None,
                         now: datetime) -> dict[str, Any]:
    """Name ``delegate`` for ``officer`` (default: ``actor``) during ``[starts_at, ends_at)``."""
    _period(starts_at, ends_at, now)
    who = await _officer_for(actor, officer)
    if delegate == who.username:
        raise ValidationFailed("不能指定本人为代理人", fields={"delegate": "请选择其他工作人员"})
    stand_in = await StaffUser.get_or_none(username=delegate, active=True)
    if stand_in is None:
        raise NotFound("代理人不存在")
    if not set(stand_in.departments or []) & set(who.departments or []):
        raise DelegateNotColleague()
    async with in_transaction() as conn:
        if await Delegation.filter(officer=who.username, cancelled_at__isnull=True, starts_at__lt=_utc(ends_at),
                                   ends_at__gt=_utc(starts_at)).using_db(conn).exists():
            raise DelegationOverlaps()
        row = await Delegation.create(officer=who.username, delegate=delegate, starts_at=starts_at,
                                      ends_at=ends_at, reason=reason, created_by=actor.username,
                                      created_at=now, using_db=conn)
        await audit.record(conn, "delegation.set", actor=actor.username, subject=str(row.id), now=now,
                           detail={"officer": who.username, "delegate": delegate, "from": starts_at.isoformat(),
                                   "to": ends_at.isoformat(), **({"reason": audit.mask_text(reason)}
                                                                 if reason else {})})
    return await _view(row, now)


async def cancel_delegation(actor: StaffUser, delegation_id: int, *, now: datetime) -> dict[str, Any]:
    """End a delegation now (or drop a scheduled one); the officer, or a manager of their department."""
    row = await Delegation.get_or_none(id=delegation_id)
    if row is None:
        raise NotFound("代理安排不存在")
    await _officer_for(actor, row.officer)
    if row.cancelled_at is not None or row.ends_at <= now:
        raise Conflict("该代理已结束或已取消")
    async with in_transaction() as conn:
        done = await Delegation.filter(id=row.id, cancelled_at__isnull=True).using_db(conn).update(
            cancelled_at=now, cancelled_by=actor.username)
        if not done:
            raise Conflict("该代理已结束或已取消")
        await audit.record(conn, "delegation.cancel", actor=actor.username, subject=str(row.id), now=now,
                           detail={"officer": row.officer, "delegate": row.delegate})
    row.cancelled_at, row.cancelled_by = now, actor.username
    return await _view(row, now)


async def _view(d: Delegation, now: datetime, names: dict[str, str] | None = None) -> dict[str, Any]:
    if names is None:
        names = dict(await StaffUser.filter(username__in=[d.officer, d.delegate]).values_list("username", "name"))
    state = state_of(d, now)
    return {"id": d.id, "officer": d.officer, "officer_name": names.get(d.officer, d.officer),
            "delegate": d.delegate, "delegate_name": names.get(d.delegate, d.delegate),
            "from": d.starts_at.isoformat(), "to": d.ends_at.isoformat(), "reason": d.reason,
            "state": state, "state_label": STATE_LABELS[state], "created_by": d.created_by,
            "cancelled_at": d.cancelled_at.isoformat() if d.cancelled_at else None}


async def delegations_of(staff: StaffUser, now: datetime, *, limit: int = 50) -> dict[str, Any]:
    """``given``: the delegations where ``staff`` is the officer; ``received``: where they stand in;
    newest first, those ended more than 30 days ago left out."""
    since = _utc(now - timedelta(days=30))
    given = await Delegation.filter(officer=staff.username, ends_at__gt=since).order_by("-starts_at").limit(limit)
    received = await Delegation.filter(delegate=staff.username, ends_at__gt=since).order_by("-starts_at") \
        .limit(limit)
    people = {p for d in (*given, *received) for p in (d.officer, d.delegate)}
    names = dict(await StaffUser.filter(username__in=list(people)).values_list("username", "name"))
    return {"given": [await _view(d, now, names) for d in given],
            "received": [await _view(d, now, names) for d in received]}


__all__ = ["DelegateNotColleague", "DelegationNotActive", "DelegationNotYours", "DelegationOverlaps", "MAX_DAYS",
           "cancel_delegation", "check_outside_period", "delegations_of", "holder", "is_active", "principals",
           "set_delegation", "state_of"]
