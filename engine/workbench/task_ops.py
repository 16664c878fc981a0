"""Approval operations on top of ``CaseEngine``: 退回, 转办, 加签, 撤回已办, and the 会签 rule helper.

Each operation is one transaction with the case's optimistic version check, and leaves a
timeline event naming actor, department and opinion. Side tasks of 加签 are ``HumanTask`` rows
of kind ``cosign`` whose ``task_spec`` is ``cosign:<before|after>:<main task id>``; an 'after'
signer's row waits in state ``pending`` until the main task completes (``install`` hooks that).
"""

from __future__ import annotations

import inspect
from copy import deepcopy
from datetime import datetime
from typing import Any, Awaitable, Callable, Iterable
from uuid import UUID, uuid4

from SpiffWorkflow.util.task import TaskState
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from engine.accountability import audit
from engine.bpmn.multi_instance import instance_parent, reset_activity, reset_task
from engine.certificates.store import set_state
from engine.errors import Conflict, Forbidden, NotFound, TaskNotReady
from engine.kernel.cases import HELD_STATE, OPEN_TASK_STATES, CaseEngine, CaseResult, Step, as_uuid
from engine.store.certificate_models import Certificate, CertificateUse
from engine.store.models import Case, CaseEvent, HumanTask
from engine.workbench import assignment

COSIGN = "cosign"
POSITIONS = ("before", "after")
# timeline kinds that show the case moved on after a completion (a later step started)
PROGRESS_KINDS = ("task_completed", "step_done", "cosign_completed", "case_completed",
                  "task_returned", "completion_withdrawn", "supplement_requested")
StaffLookup = Callable[[str], "Iterable[str] | Awaitable[Iterable[str]] | None"]


class TransferForbidden(Forbidden):
    code = "transfer_other_department"
    default_message = "只能转办给本部门的工作人员"


class NotYourTask(Forbidden):
    code = "not_your_task"
    default_message = "只能办理或撤回本人的任务"


class WaitingForAddedSigner(Conflict):
    code = "waiting_for_added_signer"
    default_message = "需等待加签人签署意见后才能办理"


class NextStepStarted(Conflict):
    code = "next_step_started"
    default_message = "下一环节已开始办理，不能撤回"


# ---------------------------------------------------------------------------- 会签
def countersign_outcome(signatures: list[dict[str, Any]], rule: str | float = "all",
                        total: int | None = None) -> bool:
    """Whether a 会签 passed. A signature is ``{"decision": "approve"|"reject", ...}``.

    ``"all"``: every signer approved (``total`` signers expected, default: those who signed);
    ``"any_reject"``: passes unless someone rejected; a number in (0, 1]: the share of approvals
    among ``total`` signers reaches it (2/3 → at least two of three). Models call it as
    ``countersign(signatures, rule)`` in a script after the multi-instance task.
    """
    signed = [s for s in signatures or [] if isinstance(s, dict)]
    approvals = sum(1 for s in signed if s.get("decision") == "approve")
    rejects = sum(1 for s in signed if s.get("decision") == "reject")
    expected = max(total if total is not None else len(signed), 1)
    if rule == "all":
        return rejects == 0 and approvals >= expected
    if rule == "any_reject":
        return rejects == 0
    if isinstance(rule, (int, float)) and not isinstance(rule, bool) and 0 < rule <= 1:
        return approvals / expected >= rule - 1e-9
    raise ValueError(f"unknown countersign rule: {rule!r}")


# ---------------------------------------------------------------------------- 退回 / 撤回
async def return_to_step(engine: CaseEngine, case_id: int, *, target_task_spec: str, actor: str,
                         department: str | None, reason: str,
                         on_behalf_of: dict[str, str] | None = None) -> CaseResult:
    """退回: reset the case to the latest completed instance of a human step; it is ready again.
    ``on_behalf_of``: the officer ``actor`` stands in for (代理), kept on the timeline and audit."""
    case, workflow, bundle = await engine.load(case_id)
    if case.status != "running":
        raise Conflict("办件不在办理中，不能退回")
    done = [t for t in workflow.get_tasks(state=TaskState.COMPLETED, spec_name=target_task_spec)
            if t.task_spec.manual]
    if not done:
        raise Conflict("只能退回到本办件已办理的人工环节")
    target = max(done, key=lambda t: t.last_state_change)
    spec = target.task_spec
    # e-certificates issued on the path the 退回 undoes were issued on a decision that no longer
    # stands: they are revoked with the reset (the step issues afresh if it is decided again)
    void = issued_below(instance_parent(target) or target)
    event = {"kind": "task_returned", "task_id": str(target.id), "task_name": spec.bpmn_name or spec.name,
             "actor": actor, "department": department,
             "detail": {"opinion": reason, "target_task_spec": target_task_spec, **(on_behalf_of or {}),
                        **({"certificates_revoked": void} if void else {})}}
    # a 会签 step restarts as a whole: every instance afresh, the collected signatures emptied
    return await _reset_to(engine, case, workflow, bundle, lambda: reset_activity(workflow, target), event,
                           assignee=None, void=void, void_reason=f"办件退回到「{spec.bpmn_name or spec.name}」重新办理，"
                                                                 f"原证照作废：{reason}")


ISSUE_CONNECTOR = "certificate.issue"


def issued_below(task: Any) -> list[str]:
    """Identifiers of the e-certificates that completed ``certificate.issue`` steps below ``task``
    issued — the ones a reset of ``task`` undoes (a parallel branch beside it is not below it)."""
    found, stack = [], list(task.children)
    while stack:
        below = stack.pop()
        stack.extend(below.children)
        spec = below.task_spec
        if below.state == TaskState.COMPLETED and getattr(spec, "operation_name", None) == ISSUE_CONNECTOR:
            result = below.data.get(getattr(spec, "result_variable", None) or "")
            if isinstance(result, dict) and isinstance(result.get("identifier"), str):
                found.append(result["identifier"])
    return found


async def completed_for(row: HumanTask) -> str | None:
    """The officer a delegate completed ``row`` for (代理: ``on_behalf_of`` of its last completion),
    or ``None`` when whoever completed it acted for themselves."""
    done = await CaseEvent.filter(case_id=row.case_id, kind="task_completed", task_id=str(row.id)) \
        .order_by("-id").first()  # type: ignore[attr-defined]
    return (done.detail or {}).get("on_behalf_of") if done is not None and isinstance(done.detail, dict) else None


async def withdraw_completion(engine: CaseEngine, task_id: str | UUID, *, actor: str) -> CaseResult:
    """撤回已办: the officer takes back their own completion while the next step has not started.
    A completion made for an officer by their delegate (代理) was made in the officer's name: the
    delegate or the officer may withdraw it, and the task goes back to the officer, whose task it
    stayed (the delegate acts on it again only while the delegation runs)."""
    task_uuid = as_uuid(task_id)
    row = await HumanTask.get_or_none(id=task_uuid)
    if row is None:
        raise NotFound("任务不存在")
    if row.kind != "bpmn" or row.state != "completed":
        raise Conflict("该任务未办结，无需撤回")
    behalf = await completed_for(row)
    if actor not in (row.completed_by, behalf):
        raise NotYourTask("只能撤回本人办理（或他人代本人办理）的任务")
    case, workflow, bundle = await engine.load(row.case_id)  # type: ignore[attr-defined]
    task = workflow.get_task_from_id(task_uuid)
    if case.status != "running" or task is None or task.state != TaskState.COMPLETED:
        raise NextStepStarted()
    await check_not_moved_on(case, row)
    spec = task.task_spec
    event = {"kind": "completion_withdrawn", "task_id": str(task.id), "task_name": spec.bpmn_name or spec.name,
             "actor": actor, "department": row.department,
             "detail": {"on_behalf_of": behalf} if behalf and behalf != actor else None}
    # only this completion is undone: a 会签 instance's signature leaves the collection again
    return await _reset_to(engine, case, workflow, bundle, lambda: reset_task(workflow, task, deepcopy(task.data)),
                           event, assignee=behalf or actor, reopened=task.id)


async def check_not_moved_on(case: Case, row: HumanTask) -> None:
    done = await CaseEvent.filter(case_id=case.id, kind="task_completed", task_id=str(row.id)) \
        .order_by("-id").first()
    if done is None:
        raise NextStepStarted()
    later = CaseEvent.filter(case_id=case.id, id__gt=done.id, kind__in=PROGRESS_KINDS) \
        .exclude(created_at=done.created_at)
    started = HumanTask.filter(case_id=case.id, created_at__gte=done.created_at) \
        .filter(state__in=("claimed", "completed", HELD_STATE)).exclude(id=row.id)
    issued = Certificate.filter(case_id=case.id, created_at__gte=done.created_at)
    used = CertificateUse.filter(case_no=case.case_no, created_at__gte=done.created_at)
    for query in (later, started, issued, used):
        if await query.exists():
            raise NextStepStarted()


async def _reset_to(engine: CaseEngine, case: Case, workflow: Any, bundle: Any, reset: Callable[[], Any],
                    event: dict[str, Any], *, assignee: str | None, reopened: Any = None,
                    void: Iterable[str] = (), void_reason: str = "") -> CaseResult:
    """Reset the workflow (``reset``: keeping the data the task was completed with), run, store;
    ``reopened`` (the withdrawn task) goes back to ``assignee``; the certificates ``void`` are
    revoked (吊销, audited) in the same transaction."""
    reset()
    step = Step(events=[event])
    await engine.advance(workflow, step)
    async with engine.commit(case, workflow, bundle, step) as tx:
        # tasks ready again keep their Spiff ids: their old (completed or cancelled) rows stay in the
        # history under new ids
        ready = [t.id for t in workflow.get_tasks(state=TaskState.READY, manual=True)]
        for old in await HumanTask.filter(id__in=ready, state__not_in=(*OPEN_TASK_STATES, HELD_STATE)) \
                .using_db(tx.conn):
            await HumanTask.filter(id=old.id).using_db(tx.conn).delete()
            old.id = uuid4()
            await old.save(using_db=tx.conn, force_create=True)
        await tx.project()
        if assignee is not None and reopened is not None:
            await HumanTask.filter(id=reopened, state__in=OPEN_TASK_STATES).using_db(tx.conn).update(
                assignee=assignee, state="claimed")
        await _cancel_orphan_cosigns(tx.conn, case.id, tx.now)
        for identifier in void:
            if await Certificate.filter(identifier=identifier, state__in=("01", "02")).using_db(tx.conn).exists():
                await set_state(identifier, "03", tx.conn, actor=event.get("actor"), reason=void_reason)
    return engine.result(case, workflow, tx.version, bundle)


# ---------------------------------------------------------------------------- 转办
async def transfer(engine: CaseEngine, task_id: str | UUID, *, actor: str, to_username: str,
                   staff_lookup: StaffLookup, reason: str | None = None,
                   on_behalf_of: dict[str, str] | None = None) -> HumanTask:
    """转办: give an open task — free, or held by ``actor`` (or by the officer ``actor`` stands in for,
    ``on_behalf_of``: 代理) — to another staff member of the task's department; ``TaskNotReady``
    (409) when it was claimed by someone else or closed meanwhile."""
    holder = on_behalf_of["on_behalf_of"] if on_behalf_of else actor
    row = await _open_row(task_id)
    departments = staff_lookup(to_username)
    if inspect.isawaitable(departments):
        departments = await departments
    if not departments:
        raise NotFound("接收人不存在")
    if row.department not in set(departments):
        raise TransferForbidden()
    await assignment.check_row(engine, row, to_username, subject=to_username)
    now = engine.deps.clock()
    async with in_transaction() as conn:
        case = await _bump_version(conn, row.case_id)  # type: ignore[attr-defined]
        # only a free task or one's own: a colleague's claim committed meanwhile makes this a 409
        updated = await HumanTask.filter(Q(assignee__isnull=True) | Q(assignee=holder), id=row.id,
                                         state__in=OPEN_TASK_STATES).using_db(conn).update(assignee=to_username)
        if updated == 0:
            raise TaskNotReady()
        detail = {"from": row.assignee, "to": to_username, "opinion": reason, **(on_behalf_of or {})}
        await CaseEvent.create(case_id=row.case_id, kind="task_transferred",  # type: ignore[attr-defined]
                               task_id=str(row.id), task_name=row.name, actor=actor, department=row.department,
                               detail=detail, created_at=now, using_db=conn)
        await audit.record(conn, "task.transfer", actor=actor, department=row.department, case_no=case.case_no,
                           subject=str(row.id), now=now,  # free text masked, as everywhere in the chain
                           detail={"task_name": row.name, **detail, "opinion": _masked_text(reason)})
    row.assignee = to_username
    return row


def _masked_text(text: Any) -> Any:
    """Free text (a 转办 reason, a 加签 opinion) as the immutable audit chain keeps it: ID numbers and
    phone numbers masked, as in every other audit record; the case's own event keeps the text."""
    return audit.mask_text(text) if isinstance(text, str) else text


# ---------------------------------------------------------------------------- 加签
async def add_signer(engine: CaseEngine, task_id: str | UUID, *, actor: str, user: str,
                     position: str, opinion: str | None = None,
                     on_behalf_of: dict[str, str] | None = None) -> HumanTask:
    """加签: 'before' blocks the main task until ``user`` signed; 'after' asks ``user`` to sign
    once the main task is completed. Returns the side task row."""
    if position not in POSITIONS:
        raise Conflict("加签位置只能是 before 或 after")
    row = await _open_row(task_id)
    if row.kind != "bpmn":
        raise Conflict("只能对流程任务加签")
    await assignment.check_own_case(engine, row, user, subject=user)
    now = engine.deps.clock()
    async with in_transaction() as conn:
        case = await _bump_version(conn, row.case_id)  # type: ignore[attr-defined]
        side = await HumanTask.create(
            id=uuid4(), case_id=row.case_id, kind=COSIGN,  # type: ignore[attr-defined]
            task_spec=f"{COSIGN}:{position}:{row.id}", name=f"加签：{row.name}", lane=row.lane,
            department=row.department, form_key=row.form_key, assignee=user,
            state="ready" if position == "before" else "pending", created_at=now, due_at=row.due_at,
            using_db=conn)
        await CaseEvent.create(case_id=row.case_id, kind="signer_added",  # type: ignore[attr-defined]
                               task_id=str(row.id), task_name=row.name, actor=actor, department=row.department,
                               detail={"user": user, "position": position, "side_task_id": str(side.id),
                                       "opinion": opinion, **(on_behalf_of or {})}, created_at=now,
                               using_db=conn)
        await audit.record(conn, "task.add_signer", actor=actor, department=row.department, case_no=case.case_no,
                           subject=str(row.id), now=now, detail={"task_name": row.name, "user": user,
                                                                 "position": position,
                                                                 "opinion": _masked_text(opinion),
                                                                 "side_task_id": str(side.id),
                                                                 **(on_behalf_of or {})})
    return side


async def complete_cosign(engine: CaseEngine, side_task_id: str | UUID, *, actor: str, opinion: str,
                          approve: bool, on_behalf_of: dict[str, str] | None = None) -> HumanTask:
    """The added signer (or whoever stands in for them, ``on_behalf_of``: 代理) gives an opinion; a
    'before' signer thereby unblocks the main task."""
    row = await _open_row(side_task_id)
    if row.kind != COSIGN:
        raise Conflict("该任务不是加签任务")
    if row.assignee != (on_behalf_of["on_behalf_of"] if on_behalf_of else actor):
        raise NotYourTask("只能办理本人的加签任务")
    await assignment.check_own_case(engine, row, actor, subject="您")  # the person signing (a delegate too)
    _, position, main_id = row.task_spec.split(":", 2)
    now = engine.deps.clock()
    async with in_transaction() as conn:
        case = await _bump_version(conn, row.case_id)  # type: ignore[attr-defined]
        closed = await HumanTask.filter(id=row.id, state__in=OPEN_TASK_STATES).using_db(conn).update(
            state="completed", completed_at=now, completed_by=actor)
        if closed == 0:
            raise TaskNotReady()
        await CaseEvent.create(case_id=row.case_id, kind="cosign_completed",  # type: ignore[attr-defined]
                               task_id=str(row.id), task_name=row.name, actor=actor, department=row.department,
                               detail={"opinion": opinion, "approve": approve, "position": position,
                                       "main_task_id": main_id, **(on_behalf_of or {})},
                               created_at=now, using_db=conn)
        await audit.record(conn, "task.cosign", actor=actor, department=row.department, case_no=case.case_no,
                           subject=str(row.id), now=now, detail={"task_name": row.name,
                                                                 "opinion": _masked_text(opinion),
                                                                 "approve": approve, "main_task_id": main_id,
                                                                 **(on_behalf_of or {})})
    row.state, row.completed_by = "completed", actor
    return row


async def on_task_completing(conn: Any, row: HumanTask, actor: str | None, now: datetime) -> None:
    """Completion hook (``EngineDeps.completion_hooks``): refuse while a 'before' signer is
    open; open the side tasks of 'after' signers."""
    before = HumanTask.filter(kind=COSIGN, task_spec=f"{COSIGN}:before:{row.id}",
                              state__in=OPEN_TASK_STATES).using_db(conn)
    if await before.exists():
        raise WaitingForAddedSigner()
    await HumanTask.filter(kind=COSIGN, task_spec=f"{COSIGN}:after:{row.id}", state="pending") \
        .using_db(conn).update(state="ready", created_at=now)


def install(engine: CaseEngine) -> CaseEngine:
    """Hook 加签 and the assignment rules (distinct 会签 signers, 回避) into
    ``CaseEngine.complete_task`` (idempotent)."""
    hooks = engine.deps.completion_hooks
    if on_task_completing not in hooks:
        hooks.append(on_task_completing)
    if not any(getattr(guard, "assignment_rules", False) for guard in engine.deps.task_guards):
        engine.deps.task_guards.append(assignment.completion_guard(assignment.index_key(engine)))
    return engine


# ---------------------------------------------------------------------------- internals
async def _open_row(task_id: str | UUID) -> HumanTask:
    row = await HumanTask.get_or_none(id=as_uuid(task_id))
    if row is None:
        raise NotFound("任务不存在")
    if row.state not in OPEN_TASK_STATES:
        raise TaskNotReady()
    return row


async def _bump_version(conn: Any, case_id: int) -> Case:
    """Optimistic check for operations that change rows but not the workflow state."""
    case = await Case.filter(id=case_id).using_db(conn).first()
    if case is None:
        raise NotFound("办件不存在")
    if case.status != "running":
        raise Conflict("办件不在办理中")
    updated = await Case.filter(id=case_id, version=case.version).using_db(conn).update(version=case.version + 1)
    if updated == 0:
        raise Conflict("办件已被他人更新，请刷新后重试")
    return case


async def _cancel_orphan_cosigns(conn: Any, case_id: int, now: datetime) -> None:
    """Side tasks whose main task was cancelled (e.g. by 退回 past it) are cancelled too."""
    side = await HumanTask.filter(case_id=case_id, kind=COSIGN,
                                  state__in=(*OPEN_TASK_STATES, "pending")).using_db(conn)
    main_ids = {r.task_spec.split(":", 2)[2] for r in side}
    alive = {str(i) for i in await HumanTask.filter(id__in=list(main_ids), state__not="cancelled")
             .using_db(conn).values_list("id", flat=True)} if main_ids else set()
    gone = [r.id for r in side if r.task_spec.split(":", 2)[2] not in alive]
    if gone:
        await HumanTask.filter(id__in=gone).using_db(conn).update(state="cancelled", completed_at=now)


__all__ = ["countersign_outcome", "return_to_step", "withdraw_completion", "transfer", "add_signer",
           "complete_cosign", "install", "on_task_completing", "TransferForbidden", "NotYourTask",
           "WaitingForAddedSigner", "NextStepStarted"]
