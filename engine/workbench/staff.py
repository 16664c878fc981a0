"""The staff workbench: login with lockout, the department inbox, and acting on tasks.

Authorization lives here, not in the HTTP layer: every call takes the ``StaffUser`` and checks
that the task belongs to one of their departments (supervisors also see ``supervisor``).
Claims are atomic row updates (``state=ready`` → ``claimed``), so of two officers acting on one
task one wins and the other gets a 409; ``complete`` claims first, then runs the engine, so a
task is never completed twice. Every action writes the case timeline (actor, department, opinion).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import heapq
import itertools
from datetime import datetime, time, timedelta
from typing import Any, Callable
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from engine.accountability import audit
from engine.accountability.privacy import blind_index, is_valid_id_number, normalise_id
from engine.citizen.case_views import EVENT_LABELS
from engine.errors import (
    Conflict,
    Forbidden,
    GovflowError,
    NotFound,
    RateLimited,
    TaskNotReady,
    Unauthenticated,
    ValidationFailed,
)
from engine.kernel.cases import HELD_STATE, CaseEngine, utcnow
from engine.kernel.sla import CST
from engine.kernel.supplement import SUPPLEMENT, NotAProcessTask, WaitingForApplicant, supply
from engine.platform.kv import KV
from engine.store.db import db_connection
from engine.store.models import Case, CaseEvent, HumanTask, StaffUser
from engine.workbench import assignment, delegation

# Lockout: MAX_FAILURES wrong passwords for one account from one client address stop that pair for
# LOCK_S. One account attacked from many addresses is slowed down, never locked: past SLOW_AFTER
# failures in LOCK_S each attempt for it waits SLOW_STEP_S more, up to SLOW_MAX_S — its owner still
# gets in, and nobody can lock an account from anywhere.
MAX_FAILURES, LOCK_S = 5, 15 * 60
SLOW_AFTER, SLOW_STEP_S, SLOW_MAX_S = 20, 0.25, 3.0
SUPERVISOR_DEPARTMENT = "supervisor"
TASK_ROLES = frozenset({"clerk", "officer", "supervisor", "admin"})
STATUSES, DUES = ("ready", "mine", "done", "waiting"), ("overdue", "today", "soon")
COUNT_CAP = 1000  # inbox totals and badge counts stop here (shown as 999+)
STAFF_EVENT_LABELS = {**EVENT_LABELS, "task_claimed": "认领", "task_unclaimed": "释放任务", "comment": "批注",
                      "task_returned": "退回", "task_transferred": "转办", "signer_added": "加签",
                      "cosign_completed": "加签意见", "completion_withdrawn": "撤回已办"}
_hasher = PasswordHasher()


class InvalidCredentials(Unauthenticated):
    code, default_message = "invalid_credentials", "用户名或密码错误"


class AccountLocked(RateLimited):
    code = "account_locked"
    default_message = f"密码连续错误 {MAX_FAILURES} 次，从此网络地址登录该账号已暂停 {LOCK_S // 60} 分钟，请稍后再试"

    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after=retry_after)


class ForbiddenDepartment(Forbidden):
    code, default_message = "forbidden_department", "该任务不属于您所在的部门"


class TaskAlreadyClaimed(Conflict):
    code, default_message = "task_already_claimed", "该任务已被其他工作人员认领，请刷新待办列表"


class TaskAlreadyCompleted(Conflict):
    code, default_message = "task_already_completed", "该任务已办结（可能已被其他工作人员办理），请刷新"


class TaskNotClaimed(Conflict):
    code, default_message = "task_not_claimed", "该任务尚未被认领，无需退回"


class SignInstead(Conflict):
    code, default_message = "cosign_use_sign", "加签任务请由加签人签署意见（同意或不同意），不能认领或办结"


# ------------------------------------------------------------------ login
@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("govflow-unknown-user-timing-equaliser")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def login_lock_key(username: str, client: str) -> str:
    """The KV key of the lock on one (account, client address) pair."""
    return f"staff:login:locked:{_pair(username, client)}"


def _pair(username: str, client: str) -> str:
    return hashlib.sha256(f"{username}\n{client}".encode()).hexdigest()[:32]


def slow_down_s(failures: int) -> float:
    """Seconds every login attempt for an account waits after ``failures`` failed ones (all addresses)."""
    if failures < SLOW_AFTER:
        return 0.0
    return min(SLOW_MAX_S, SLOW_STEP_S * (failures - SLOW_AFTER + 1))


async def authenticate(kv: KV, username: str, password: str, *, client: str) -> StaffUser:
    """The active account for these credentials. Unknown users verify against a dummy hash (same
    cost, same ``invalid_credentials``). ``MAX_FAILURES`` failures in a row from one ``client``
    address lock that account for that address for ``LOCK_S``; failures from everywhere only slow
    the account's logins down (``slow_down_s``)."""
    username = username.strip()[:64]
    pair = _pair(username, client)
    fail_key, lock_key = f"staff:login:failures:{pair}", login_lock_key(username, client)
    account_key = f"staff:login:account-failures:{hashlib.sha256(username.encode()).hexdigest()[:32]}"
    if await kv.get(lock_key) is not None:
        raise AccountLocked(await kv.ttl(lock_key) or LOCK_S)
    delay = slow_down_s(int(await kv.get(account_key) or 0))
    if delay:
        await asyncio.sleep(delay)
    user = await StaffUser.get_or_none(username=username)
    ok = await asyncio.to_thread(_verify, user.password_hash if user else _dummy_hash(), password)
    if not ok or user is None or not user.active:
        await kv.incr_window(account_key, LOCK_S)
        if await kv.incr_window(fail_key, LOCK_S) >= MAX_FAILURES:
            await kv.set(lock_key, "1", ex=LOCK_S)
            await kv.delete(fail_key)
            raise AccountLocked(LOCK_S)
        raise InvalidCredentials()
    await kv.delete(fail_key)
    if _hasher.check_needs_rehash(user.password_hash):
        await StaffUser.filter(id=user.id).update(password_hash=await asyncio.to_thread(_hasher.hash, password))
    return user


async def link_identity(username: str, id_number: str | None, *, pii_key: bytes) -> StaffUser:
    """Link the staff account ``username`` to its officer's own ID number (``None``: unlink), stored
    as the keyed hash citizens are found by, never the number: from then on the officer is recused
    from the cases that name them (``engine.workbench.assignment``, 409 ``own_case_recusal``)."""
    user = await StaffUser.get_or_none(username=username)
    if user is None:
        raise NotFound("工作人员账号不存在")
    id_hash = None
    if id_number is not None:
        if not is_valid_id_number(id_number):
            raise ValidationFailed("身份证号不正确，请检查后重新输入", fields={"id_number": "身份证号不正确，请检查后重新输入"})
        id_hash = blind_index(normalise_id(id_number), pii_key)
    await StaffUser.filter(id=user.id).update(id_hash=id_hash)
    user.id_hash = id_hash
    return user


# ------------------------------------------------------------------ inbox
async def find_staff(staff_id: int) -> StaffUser | None:
    """The staff account with this id, or ``None`` (a token may outlive its account)."""
    return await StaffUser.get_or_none(id=staff_id)


async def active_departments(username: str) -> list[str] | None:
    """The departments of the active account ``username``; ``None`` when there is none."""
    user = await StaffUser.get_or_none(username=username, active=True)
    return list(user.departments or []) if user else None


async def task_with_case(task_id: str | UUID) -> HumanTask:
    """The task with its case loaded (for views that show the case number and status)."""
    return await HumanTask.get(id=task_id).select_related("case")


def departments_of(staff: StaffUser) -> list[str]:
    """Departments whose tasks ``staff`` sees; supervisors also see the 督办 lane."""
    codes = [str(d) for d in staff.departments or []]
    if "supervisor" in (staff.roles or []) and SUPERVISOR_DEPARTMENT not in codes:
        codes.append(SUPERVISOR_DEPARTMENT)
    return codes


def _status_lanes(staff: StaffUser, status: str | None) -> list[Q]:
    """The ``status`` filter as OR-free parts, each one range of the (department, state, due_at)
    index: ready | mine | done | waiting (补正); otherwise the working set, ready + mine."""
    me = staff.username
    lanes = {"ready": Q(state="ready"), "mine": Q(state="claimed", assignee=me),
             "done": Q(state="completed", completed_by=me), "waiting": Q(state=HELD_STATE)}
    return [lanes[status]] if status in lanes else [lanes["ready"], lanes["mine"]]


def _due_q(due: str | None, now: datetime) -> Q:
    if due == "overdue":
        return Q(due_at__lt=now)
    if due == "today":
        end = datetime.combine(now.astimezone(CST).date() + timedelta(days=1), time.min, CST)
        return Q(due_at__gte=now, due_at__lt=end)
    if due == "soon":
        return Q(due_at__gte=now, due_at__lt=now + timedelta(hours=24))
    return Q()


async def _capped_count(query: Any) -> int:
    """How many rows ``query`` has, counting no further than ``COUNT_CAP``, in the database: an exact
    COUNT(*) reads every matching row (a department with a large backlog would make each inbox call
    slower), and fetching the capped ids to count them here cost more than the query."""
    inner = query.limit(COUNT_CAP).values("id")
    inner.sql()  # builds the query on its connection (Tortoise's public way), then take its parameters
    sql, params = inner.query.get_parameterized_sql()
    _, rows = await db_connection().execute_query(f"SELECT COUNT(*) AS n FROM ({sql}) AS capped", params)
    return int(dict(rows[0])["n"])


async def _capped_sum(parts: list[Any]) -> int:
    """``_capped_count`` of the union of disjoint OR-free ``parts`` (each one index range)."""
    total = 0
    for part in parts:
        total += await _capped_count(part)
        if total >= COUNT_CAP:
            return COUNT_CAP
    return total


def _parts(staff: StaffUser, status: str | None, due: str | None, now: datetime,
           officers: Any = ()) -> list[Any]:
    """The inbox filter as disjoint OR-free queries, each one range of an index: per department and
    state lane on (department, state, due_at); 加签 tasks assigned to ``staff`` on (kind, assignee, state).
    One query with the ORs would make the database read every matching row (bench/scale.py).
    ``officers``: those ``staff`` stands in for now (代理): the tasks they hold — claimed, transferred
    to them outside ``staff``'s departments (inside, the department lane lists them already), 加签."""
    lanes = _status_lanes(staff, status)
    mine = Q(kind="cosign", assignee=staff.username)
    due_q = _due_q(due, now)
    parts = [HumanTask.filter(department=d).exclude(kind="cosign").filter(lane).filter(due_q)
             for d in departments_of(staff) for lane in lanes]
    parts += [HumanTask.filter(mine).filter(lane).filter(due_q) for lane in lanes]
    own = departments_of(staff)
    for officer in officers:
        if status in (None, "mine"):
            parts.append(HumanTask.filter(kind__not="cosign", assignee=officer, state="claimed").filter(due_q))
        if status in (None, "ready"):
            parts.append(HumanTask.filter(kind__not="cosign", assignee=officer, state="ready")
                         .exclude(department__in=own).filter(due_q))
            parts.append(HumanTask.filter(kind="cosign", assignee=officer, state="ready").filter(due_q))
    return parts


async def _page(parts: list[Any], order: tuple[str, ...], skip: int, take: int) -> list[HumanTask]:
    """Rows ``skip``..``skip+take`` of the union of ``parts`` in ``order``: each part reads only its
    first ``skip+take`` rows along an index and the parts are merged here (an OR over states or an
    IN over departments would make the database sort every matching row first)."""
    if take <= 0:
        return []
    fetched = [await part.select_related("case").order_by(*order).limit(skip + take) for part in parts]
    merged = heapq.merge(*fetched, key=lambda t: tuple(getattr(t, f) for f in order))
    return list(itertools.islice(merged, skip, skip + take))


async def inbox(staff: StaffUser, *, status: str | None = None, due: str | None = None, page: int = 1,
                size: int = 20, now: datetime | None = None,
                department_names: dict[str, str] | None = None) -> dict[str, Any]:
    """Tasks of ``staff``'s departments (and 加签 side tasks assigned to them) filtered by ``status``
    (ready | mine | done | waiting (补正); default: ready + mine) and ``due`` (overdue | today (CST) |
    soon (24 h)), sorted by due time (none last) then creation; ``counts`` per filter for badges (due
    counts within ``status``). ``total`` and ``counts`` stop at ``COUNT_CAP`` (the page shows 999+):
    the cost of a call stays flat however large a department's backlog grows."""
    now = now or utcnow()
    officers = await delegation.principals(staff.username, now)
    parts = _parts(staff, status, due, now, officers)
    total = await _capped_sum(parts)
    offset = (page - 1) * size
    rows = await _page([p.filter(due_at__isnull=False) for p in parts], ("due_at", "created_at", "id"), offset,
                       size)
    if len(rows) < size:  # past the dated tasks: how many there are is known from the short page
        dated = offset + len(rows) if rows else await _capped_sum([p.filter(due_at__isnull=False) for p in parts])
        rows += await _page([p.filter(due_at__isnull=True) for p in parts], ("created_at", "id"),
                            max(0, offset - dated), size - len(rows))
    counts = {s: await _capped_sum(_parts(staff, s, None, now, officers)) for s in STATUSES}
    counts.update({d: await _capped_sum(_parts(staff, status, d, now, officers)) for d in DUES})
    people = await actor_names([t.assignee for t in rows], department_names or {})  # one query per page
    items = [{**task_view(t, department_names or {}, now, officers),
              "assignee_name": people.get(t.assignee) if t.assignee else None} for t in rows]
    return {"items": items, "page": page, "size": size, "total": total, "counts": counts}


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def task_view(task: HumanTask, department_names: dict[str, str], now: datetime | None = None,
              officers: dict[str, str] | None = None) -> dict[str, Any]:
    """One task as the workbench lists it (``task.case`` fetched). ``officers``: those the viewer
    stands in for (代理); a task one of them holds carries ``on_behalf_of`` (the page shows 代 张三)."""
    case: Case = task.case  # type: ignore[assignment]
    now = now or utcnow()
    behalf = task.assignee if officers and task.assignee in officers else None
    return {
        "id": str(task.id), "kind": task.kind, "task_spec": task.task_spec, "name": task.name,
        "department": task.department, "department_name": department_names.get(task.department or "",
                                                                               task.department),
        "form_key": task.form_key, "state": task.state, "assignee": task.assignee,
        "case_id": case.id, "case_no": case.case_no, "service": case.service,
        "created_at": task.created_at.isoformat(), "due_at": iso(task.due_at),
        "overdue": bool(task.due_at and task.due_at < now and task.state in ("ready", "claimed")),
        "completed_at": iso(task.completed_at), "completed_by": task.completed_by,
        "on_behalf_of": behalf, "on_behalf_of_name": (officers or {}).get(behalf or ""),
    }


# ------------------------------------------------------------------ one task
async def visible_task(staff: StaffUser, task_id: str | UUID, now: datetime | None = None) -> HumanTask:
    """The task (case fetched); 404 when absent, 403 when outside ``staff``'s departments — unless it
    is held by an officer ``staff`` stands in for now (代理; 403 ``delegation_not_active`` outside
    the period)."""
    try:
        uuid = task_id if isinstance(task_id, UUID) else UUID(str(task_id))
    except ValueError:
        raise NotFound("任务不存在") from None
    task = await HumanTask.get_or_none(id=uuid).select_related("case")
    if task is None:
        raise NotFound("任务不存在")
    if task.department not in departments_of(staff) and not (task.kind == "cosign"
                                                              and task.assignee == staff.username):
        _, behalf = await delegation.holder(staff, task, now or utcnow())
        if behalf is None:
            await delegation.check_outside_period(staff, task)
            raise ForbiddenDepartment()
    return task


SYSTEM_ACTORS = frozenset({"system", "cli", "worker", "timer"})
APPLICANT_PREFIXES = ("citizen:", "window:", "wx:", "dev:")  # the citizen (or their window placeholder)


async def actor_names(actors: Any, departments: dict[str, str]) -> dict[str, str]:
    """Display names of timeline actors: 申请人 for the citizen, the staff member's name with their
    department (王芳（市场监管局）), 系统 for the engine, timers and the CLI — never a raw id."""
    wanted = {a for a in actors if a}
    staff = {u.username: u for u in await StaffUser.filter(username__in=sorted(wanted))} if wanted else {}
    shown: dict[str, str] = {}
    for actor in wanted:
        user = staff.get(actor)
        if user is not None:
            codes = [d for d in user.departments or [] if isinstance(d, str)]
            where = "、".join(departments.get(c, c) for c in codes[:2])
            shown[actor] = f"{user.name or '工作人员'}（{where}）" if where else (user.name or "工作人员")
        elif actor.startswith(APPLICANT_PREFIXES):
            shown[actor] = "申请人"
        elif actor in SYSTEM_ACTORS or actor.isascii():
            shown[actor] = "系统"
        else:  # a named source written in Chinese (好差评)
            shown[actor] = actor
    return shown


def actor_name(actor: str | None, names: dict[str, str]) -> str:
    return names.get(actor or "", "系统") if actor else "系统"


def timeline_view(events: list[CaseEvent], names: dict[str, str],
                  people: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The staff timeline; ``people`` (``actor_names``) gives each entry its ``actor_name``."""
    people = people or {}
    return [{
        "kind": e.kind, "action": STAFF_EVENT_LABELS.get(e.kind, e.kind), "step": e.task_name,
        "task_id": e.task_id, "actor": e.actor, "actor_name": actor_name(e.actor, people),
        "department": e.department, "department_name": names.get(e.department or "", e.department),
        "opinion": _opinion(e, people), "at": e.created_at.isoformat(), "decision": _decision(e),
        **_behalf(e, people),
    } for e in events if e.kind != "bpmn_event"]


def _behalf(event: CaseEvent, people: dict[str, str]) -> dict[str, Any]:
    """代理: the officer the actor stood in for, and the label the timeline shows (李四（…） 代 张三)."""
    detail = event.detail if isinstance(event.detail, dict) else {}
    officer = detail.get("on_behalf_of")
    who = actor_name(event.actor, people)
    if not officer:
        return {"on_behalf_of": None, "actor_label": who}
    return {"on_behalf_of": officer,
            "actor_label": f"{who} 代 {detail.get('on_behalf_of_name') or people.get(officer) or officer}"}


def event_people(events: list[CaseEvent]) -> list[str]:
    """Everyone a timeline names: the actors, whom steps were copied to (抄送) and whom they stood in for."""
    named = [e.actor for e in events if e.actor]
    for e in events:
        detail = e.detail if isinstance(e.detail, dict) else {}
        named += [c for c in detail.get("cc") or [] if isinstance(c, str)]
        if isinstance(detail.get("on_behalf_of"), str):
            named.append(detail["on_behalf_of"])
    return named


def _opinion(event: CaseEvent, people: dict[str, str] | None = None) -> str | None:
    detail = event.detail if isinstance(event.detail, dict) else {}
    if event.kind == "urged":
        return detail.get("reason")
    opinion = detail.get("opinion")
    if detail.get("cc"):  # 抄送: whom the step was copied to, by name
        shown = "、".join((people or {}).get(c, c) for c in detail["cc"])
        opinion = f"{opinion or ''}（抄送：{shown}）".strip()
    return opinion


def _decision(event: CaseEvent) -> str | None:
    """An added signer's decision (加签意见): approve | reject."""
    if event.kind != "cosign_completed" or not isinstance(event.detail, dict) or "approve" not in event.detail:
        return None
    return "approve" if event.detail["approve"] else "reject"


_AUDIT_KINDS = {"task_claimed": "task.claim", "task_unclaimed": "task.unclaim", "task_completed": "task.complete",
                "comment": "task.comment"}


async def log_case_read(engine: CaseEngine, staff: StaffUser, task: HumanTask, case: Case,
                         applicant: dict[str, Any]) -> None:
    """Opening a task shows the applicant's case data: a personal-data read the citizen sees in
    their access log (department, case, purpose) and the audit chain records."""
    id_number, keys = applicant.get("id_number"), engine.deps.pii_keys
    if not isinstance(id_number, str) or not id_number or keys is None:
        return
    await audit.log_data_access(
        None, actor=staff.username, department=task.department,
        subject_hash=blind_index(id_number, keys.blind_index_key), subject_masked=applicant.get("id_masked"),
        dataset="case", fields_read=["applicant", "form", "materials"], case_id=case.id, case_no=case.case_no,
        purpose=f"办理「{task.name}」：查看申请信息", now=engine.deps.clock())


async def _event(task: HumanTask, kind: str, staff: StaffUser, now: datetime, opinion: str | None = None,
                 conn: Any = None, **detail: Any) -> None:
    """The timeline event and its audit record, in the caller's transaction (or one of its own)."""
    if conn is None:
        async with in_transaction() as own:
            return await _event(task, kind, staff, now, opinion, conn=own, **detail)
    body = {**{k: v for k, v in detail.items() if v is not None}, **({"opinion": opinion} if opinion else {})}
    await CaseEvent.create(case_id=task.case_id, kind=kind, task_id=str(task.id),  # type: ignore[attr-defined]
                           task_name=task.name, actor=staff.username, department=task.department,
                           detail=body or None, created_at=now, using_db=conn)
    case_no = task.case.case_no if isinstance(task.case, Case) else None  # type: ignore[attr-defined]
    await audit.record(conn, _AUDIT_KINDS.get(kind, f"task.{kind}"), actor=staff.username,
                       department=task.department, case_no=case_no, subject=str(task.id), now=now,
                       detail={"task_name": task.name, "task_kind": task.kind,
                               **({"on_behalf_of": body["on_behalf_of"]} if body.get("on_behalf_of") else {}),
                               **({"opinion": audit.mask_text(opinion)} if opinion else {})})


async def _refused(task_id: UUID, staff: StaffUser, holder: str | None = None) -> GovflowError:
    """Why a conditional update on ``task_id`` touched no row (``holder``: whose hands ``staff``
    acts with — the officer they stand in for, 代理)."""
    task = await HumanTask.get(id=task_id)
    if task.state in ("completed", "cancelled"):
        return TaskAlreadyCompleted()
    if task.state == HELD_STATE:
        return WaitingForApplicant()
    me = holder or staff.username
    if task.assignee and task.assignee != me:
        try:
            await delegation.check_outside_period(staff, task)
        except delegation.DelegationNotActive as outside:
            return outside
    if task.state == "claimed" and task.assignee != me:
        return TaskAlreadyClaimed(f"该任务已被 {task.assignee} 认领，请刷新待办列表")
    if task.state == "ready" and task.assignee not in (None, me):
        return TaskAlreadyClaimed(f"该任务已转办给 {task.assignee}，请刷新待办列表")
    return TaskNotClaimed()


async def open_task_of(staff: StaffUser, task_id: str, now: datetime | None = None, *,
                       engine: CaseEngine | None = None) -> tuple[HumanTask, dict[str, str] | None]:
    """A visible open process task that is ready or claimed by ``staff`` (or by an officer ``staff``
    stands in for now, 代理) — the task an operation (return, transfer, add a signer, complete) may
    act on; the same 409s as the inbox otherwise. With ``engine``: also 409 ``own_case_recusal``
    when the case names ``staff``'s own person (退回, 补正, 加签 act on the decision; handing one's
    own case on with 转办 stays allowed). The person acting is ``staff``, also for a delegation.
    Returns the task and, as ``acting_on`` does, for whom ``staff`` acts on it."""
    task, behalf = await acting_on(staff, task_id, now)
    if task.state in ("completed", "cancelled"):
        raise TaskAlreadyCompleted()
    if task.state == HELD_STATE:
        raise WaitingForApplicant()
    if task.assignee and task.assignee != staff.username and behalf is None:
        await delegation.check_outside_period(staff, task)  # 403 delegation_not_active
        raise TaskAlreadyClaimed(f"该任务已被 {task.assignee} 认领")  # claimed by, or transferred to, someone else
    if task.kind != "bpmn":
        raise NotAProcessTask()
    if engine is not None:
        await assignment.check_own_case(engine, task, staff.username, subject="您")
    return task, behalf


async def acting_on(staff: StaffUser, task_id: str | UUID,
                    now: datetime | None = None) -> tuple[HumanTask, dict[str, str] | None]:
    """The visible task and, when ``staff`` acts on it for the officer holding it (代理), the
    ``on_behalf_of`` detail for the timeline and audit; ``None`` when they act for themselves."""
    now = now or utcnow()
    task = await visible_task(staff, task_id, now)
    _, behalf = await delegation.holder(staff, task, now)
    return task, behalf


def _free_for(username: str) -> Q:
    """A ready task nobody holds, or one transferred (转办) to ``username``."""
    return Q(assignee__isnull=True) | Q(assignee=username)


async def claim(staff: StaffUser, task_id: str, *, now: datetime | None = None,
                engine: CaseEngine | None = None) -> HumanTask:
    """Take a ready task of one's department (free or transferred to one); 409 when someone else
    has it or it is done, or (with ``engine``) when the task's rules exclude ``staff`` (a second
    会签 instance of the same case, 回避: engine.workbench.assignment)."""
    now = now or utcnow()
    task, behalf = await acting_on(staff, task_id, now)
    who = behalf["on_behalf_of"] if behalf else staff.username  # 代理: claimed for the officer
    if task.kind == "cosign":
        raise SignInstead()
    if engine is not None and task.state == "ready":
        await assignment.check_row(engine, task, staff.username)
        if task.kind != "bpmn":  # 人工复核, window 补正, 督办: the own-case rule holds on side tasks too
            await assignment.check_own_case(engine, task, staff.username, subject="您")
    async with in_transaction() as conn:
        taken = await HumanTask.filter(_free_for(who), id=task.id, state="ready").using_db(conn).update(
            state="claimed", assignee=who)
        if taken:
            await _event(task, "task_claimed", staff, now, conn=conn, **(behalf or {}))
    if not taken:
        raise await _refused(task.id, staff, who)
    return await HumanTask.get(id=task.id).select_related("case")


async def unclaim(staff: StaffUser, task_id: str, *, now: datetime | None = None) -> HumanTask:
    """Put one's own claimed task back to ready; only the claimer may."""
    now = now or utcnow()
    task, behalf = await acting_on(staff, task_id, now)
    who = behalf["on_behalf_of"] if behalf else staff.username
    async with in_transaction() as conn:
        freed = await HumanTask.filter(id=task.id, state="claimed", assignee=who).using_db(conn).update(
            state="ready", assignee=None)
        if freed:
            await _event(task, "task_unclaimed", staff, now, conn=conn, **(behalf or {}))
    if not freed:
        raise await _refused(task.id, staff, who)
    return await HumanTask.get(id=task.id).select_related("case")


async def complete(engine: CaseEngine, staff: StaffUser, task_id: str, data: dict[str, Any] | None = None,
                   opinion: str | None = None, *, cc: list[str] | None = None,
                   certificate_type_of: Callable[[str], str | None] = lambda _service: None) -> HumanTask:
    """Complete a ready task or one's own claimed task. The task is claimed first (atomically),
    so a concurrent second officer gets 409; invalid data → 422 and the claim is undone.
    ``cc``: colleagues the completed step is copied to (抄送; process tasks only)."""
    now = engine.deps.clock()
    task, behalf = await acting_on(staff, task_id, now)
    who = behalf["on_behalf_of"] if behalf else staff.username  # 代理: the task stays the officer's
    if task.kind == "cosign":
        raise SignInstead()
    if task.kind != "bpmn":  # process tasks: the engine's completion guard (engine.workbench.assignment)
        await assignment.check_own_case(engine, task, staff.username, subject="您")
    if cc:
        if task.kind != "bpmn":
            raise ValidationFailed("抄送只适用于流程办理任务", fields={"cc": "加签、补正、督办等附属任务不能抄送"})
        await check_colleagues(cc)
    auto = await HumanTask.filter(_free_for(who), id=task.id, state="ready").update(
        state="claimed", assignee=who)
    if not auto and not await HumanTask.filter(id=task.id, state="claimed", assignee=who).exists():
        raise await _refused(task.id, staff, who)
    try:
        if task.kind == SUPPLEMENT:  # a clerk supplies for a walk-in citizen
            await supply(engine, task, data or {}, actor=staff.username, department=task.department,
                         opinion=opinion or "窗口代申请人补正材料")
        elif task.kind == "review":  # 人工复核: uphold or overturn the decision (engine.workbench.review)
            from engine.workbench.review import decide

            await decide(engine, staff, task, data, certificate_type_of=certificate_type_of)
        elif task.kind != "bpmn":
            await _complete_side_task(task, staff, data, opinion, now, who, behalf)
        else:
            await _complete_bpmn(engine, staff, task, data, opinion, cc, who, behalf)
    except BaseException:
        if auto:  # back as it was: free, or still transferred (转办) to this officer
            await HumanTask.filter(id=task.id, state="claimed", assignee=who).update(
                state="ready", assignee=task.assignee)
        raise
    return await HumanTask.get(id=task.id).select_related("case")


async def _complete_bpmn(engine: CaseEngine, staff: StaffUser, task: HumanTask, data: dict[str, Any] | None,
                         opinion: str | None, cc: list[str] | None = None, who: str | None = None,
                         behalf: dict[str, str] | None = None) -> None:
    for attempt in range(3):  # another department's task on the same case may commit in between
        try:
            # the signer is the person acting (distinct 会签 signers, 回避 check their identity)
            await engine.complete_task(task.id, data, actor=staff.username, opinion=opinion, cc=cc,
                                       actor_name=staff.name, on_behalf_of=behalf)
            return
        except TaskNotReady:
            raise TaskAlreadyCompleted() from None
        except Conflict:
            still_mine = await HumanTask.filter(id=task.id, state="claimed",
                                                assignee=who or staff.username).exists()
            if not still_mine or attempt == 2:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))


async def _complete_side_task(task: HumanTask, staff: StaffUser, data: dict[str, Any] | None,
                              opinion: str | None, now: datetime, who: str | None = None,
                              behalf: dict[str, str] | None = None) -> None:
    """Escalation and review tasks are not workflow tasks: mark done, note it on the timeline."""
    async with in_transaction() as conn:
        done = await HumanTask.filter(id=task.id, state="claimed", assignee=who or staff.username) \
            .using_db(conn).update(state="completed", completed_at=now, completed_by=staff.username)
        if not done:
            raise TaskAlreadyCompleted()
        await _event(task, "task_completed", staff, now, opinion, conn=conn, **({"data": data} if data else {}),
                     **(behalf or {}))


MAX_CC = 10


async def check_colleagues(usernames: Any) -> list[str]:
    """The 抄送 list: at most ``MAX_CC`` usernames of active staff accounts (422 naming the unknown)."""
    if (not isinstance(usernames, list) or len(usernames) > MAX_CC
            or not all(isinstance(u, str) and 0 < len(u) <= 64 for u in usernames)):
        raise ValidationFailed("抄送人填写有误", fields={"cc": f"应为至多 {MAX_CC} 个工作人员用户名的数组"})
    wanted = list(dict.fromkeys(usernames))
    found = set(await StaffUser.filter(username__in=wanted, active=True).values_list("username", flat=True))
    unknown = [u for u in wanted if u not in found]
    if unknown:
        raise ValidationFailed("抄送人不存在", fields={"cc": f"没有这些工作人员：{'、'.join(unknown[:5])}"})
    return wanted


async def colleagues(staff: StaffUser) -> list[dict[str, Any]]:
    """Active staff sharing a department with ``staff`` (the 抄送 picker), oneself excluded."""
    mine = set(departments_of(staff))
    rows = await StaffUser.filter(active=True).exclude(id=staff.id).order_by("username")
    return [{"username": u.username, "name": u.name, "departments": list(u.departments or [])}
            for u in rows if mine & set(u.departments or [])]


async def comment(staff: StaffUser, task_id: str, text: str, *, now: datetime | None = None) -> dict[str, Any]:
    """A note on the case timeline by a staff member of the task's department."""
    now = now or utcnow()
    task = await visible_task(staff, task_id, now)
    await _event(task, "comment", staff, now, text)
    return {"task_id": str(task.id), "actor": staff.username, "department": task.department, "opinion": text,
            "at": now.isoformat()}
