"""One task as the workbench page shows it: the task, its case (applicant masked), form, materials,
timeline, the 补正 rounds, and what the page may offer — ``return_targets`` (steps 退回 accepts),
``colleagues`` (for 转办 / 加签), ``actions`` (the operations open to the caller right now) and
``blocked`` (why each other operation of the task is not open now: the page shows the reason).

``actions`` is advice for the page; every operation checks its rules again on the server.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from SpiffWorkflow.util.task import TaskState

from engine.citizen.case_views import STATUS_LABELS
from engine.errors import GovflowError
from engine.kernel.cases import HELD_STATE, OPEN_TASK_STATES, CaseEngine, current_data
from engine.kernel.supplement import SUPPLEMENT, case_rounds, main_task_id
from engine.store.models import Case, CaseEvent, HumanTask, ProcessDefinition, StaffUser
from engine.workbench import assignment, delegation
from engine.workbench import staff as desk
from engine.workbench.files import application_view, materials_view
from engine.workbench.rectification import rectification_view
from engine.workbench.review import review_context
from engine.workbench.task_ops import completed_for

ACTIONS = ("claim", "unclaim", "complete", "return", "supplement_request", "transfer", "add_signer", "sign",
           "withdraw", "comment")
COSIGN = "cosign"
APPLICATION_FORM = "forms/apply.json"


def return_targets(workflow: Any) -> list[dict[str, str]]:
    """Completed human steps of the case, latest instance per step, in the order they were done:
    ``step`` is the ``to_step`` that ``engine.workbench.task_ops.return_to_step`` accepts."""
    latest: dict[str, Any] = {}
    for task in workflow.get_tasks(state=TaskState.COMPLETED):
        if task.task_spec.manual:
            known = latest.get(task.task_spec.name)
            if known is None or task.last_state_change > known.last_state_change:
                latest[task.task_spec.name] = task
    ordered = sorted(latest.values(), key=lambda t: t.last_state_change)
    return [{"step": t.task_spec.name, "name": t.task_spec.bpmn_name or t.task_spec.name} for t in ordered]


async def colleagues(staff: StaffUser, department: str | None) -> list[dict[str, str]]:
    """Active staff of ``department`` other than ``staff``, by username."""
    if not department:
        return []
    users = await StaffUser.filter(active=True).exclude(username=staff.username).order_by("username")
    return [{"username": u.username, "name": u.name} for u in users if department in (u.departments or [])]


async def _withdrawable(engine: CaseEngine, task: HumanTask, case: Case, workflow: Any) -> bool:
    from engine.workbench.task_ops import check_not_moved_on

    spiff = workflow.get_task_from_id(task.id)
    if case.status != "running" or spiff is None or spiff.state != TaskState.COMPLETED:
        return False
    try:
        await check_not_moved_on(case, task)
    except GovflowError:
        return False
    return True


async def allowed_actions(engine: CaseEngine, staff: StaffUser, task: HumanTask, case: Case, workflow: Any, *,
                          targets: list[dict[str, str]], peers: list[dict[str, str]]) -> list[str]:
    """The operations ``staff`` may perform on ``task`` now (in ``ACTIONS`` order)."""
    actions, _ = await action_state(engine, staff, task, case, workflow, targets=targets, peers=peers)
    return actions


async def action_state(engine: CaseEngine, staff: StaffUser, task: HumanTask, case: Case, workflow: Any, *,
                       targets: list[dict[str, str]],
                       peers: list[dict[str, str]]) -> tuple[list[str], dict[str, str]]:
    """``(actions, blocked)``: the operations ``staff`` may perform on ``task`` now (in ``ACTIONS``
    order), and for the operations this kind of task has but ``staff`` may not perform now, why
    not (Chinese, for the page to show beside a disabled button — never a silently missing one)."""
    allowed: set[str] = {"comment"}
    blocked: dict[str, str] = {}
    me, _ = await delegation.holder(staff, task, engine.deps.clock())  # 代理: the officer's hands
    free = task.state == "ready" and task.assignee in (None, me)
    mine = task.state == "claimed" and task.assignee == me
    running = case.status == "running"
    not_running = "办件已办结或已终止，不能再办理" if case.status != "running" else ""
    if task.kind == COSIGN:
        recused = await assignment.own_case_refusal(engine, task, staff.username, workflow=workflow) \
            if task.state in OPEN_TASK_STATES and task.assignee == me and running else None
        if recused is not None:  # the person signing, a delegate too (engine.workbench.assignment)
            blocked["sign"] = recused.message
        elif task.state in OPEN_TASK_STATES and task.assignee == me and running:
            allowed.add("sign")
        else:
            blocked["sign"] = not_running or ("该加签任务已签署" if task.state not in OPEN_TASK_STATES
                                              else f"仅加签人 {task.assignee or ''} 可以签署意见")
    elif (running or task.kind == "review") and (free or mine):  # a review follows a case that ended
        allowed |= {"claim"} if free else {"unclaim"}
        allowed.add("complete")
        if task.kind == "bpmn":
            allowed |= {"supplement_request", "add_signer"}
            if targets:
                allowed.add("return")
            else:
                blocked["return"] = "本办件还没有已办理的人工环节，无可退回的环节"
            if peers:
                allowed.add("transfer")
            else:
                blocked["transfer"] = "本部门没有其他在岗工作人员，无法转办"
            waiting = await HumanTask.filter(kind=COSIGN, task_spec=f"{COSIGN}:before:{task.id}",
                                             state__in=OPEN_TASK_STATES).values_list("assignee", flat=True)
            if waiting:
                allowed.discard("complete")
                blocked["complete"] = f"需等待加签人 {'、'.join(str(w) for w in waiting)} 签署意见后才能办结"
            spiff = workflow.get_task_from_id(task.id)
            # the person acting is the one who signs, also for an officer they stand in for (代理)
            problem = await assignment.refusal(workflow, spiff, staff.username,
                                               pii_key=assignment.index_key(engine)) if spiff is not None else None
            if problem is not None:  # own case, distinct 会签 signers, 回避 (engine.workbench.assignment)
                allowed -= {"claim", "complete"}
                blocked["complete"] = problem.message
                if free:
                    blocked["claim"] = problem.message
                if isinstance(problem, assignment.OwnCaseRecusal):  # nor 退回, 补正, 加签; 转办 hands it on
                    for action in ("return", "supplement_request", "add_signer"):
                        allowed.discard(action)
                        blocked[action] = problem.message
        else:  # 人工复核, window 补正, 督办: the own-case rule only
            recused = await assignment.own_case_refusal(engine, task, staff.username, workflow=workflow)
            if recused is not None:
                allowed -= {"claim", "complete"}
                blocked["complete"] = recused.message
                if free:
                    blocked["claim"] = recused.message
    elif task.kind == "bpmn" and task.state == "completed" and (
            task.completed_by == staff.username or await completed_for(task) == staff.username):  # 代理
        if await _withdrawable(engine, task, case, workflow):
            allowed.add("withdraw")
        else:
            blocked["withdraw"] = not_running or "下一环节已开始办理，不能撤回"
    else:
        reason = not_running or _closed_reason(task, me)
        for action in ("claim", "complete"):
            blocked[action] = reason
    return [a for a in ACTIONS if a in allowed], blocked


def _closed_reason(task: HumanTask, me: str) -> str:
    if task.state == HELD_STATE:
        return "已退回申请人补正，等待补正材料；申请人补正后任务回到经办人名下"
    if task.state == "completed":
        return f"该任务已由 {task.completed_by or '他人'} 办结"
    if task.state == "cancelled":
        return "该任务已取消（办件已流转到其他环节）"
    if task.assignee and task.assignee != me:
        verb = "认领" if task.state == "claimed" else "转办给"
        return f"该任务已{verb} {task.assignee}，只有 {task.assignee} 可以办理"
    return "该任务当前不能办理"


def application_spec(bundle: Any) -> dict[str, Any] | None:
    """The render spec of the item's application form (``forms/apply.json`` in the process folder)."""
    from forms import load_form

    text = bundle.files.get(APPLICATION_FORM) if bundle is not None else None
    return load_form(text).ui_spec() if text else None


def _with_urls(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The 补正 files open in the material viewer (``url``: staff token, every open logged)."""
    from engine.workbench.files import FILE_URL

    for r in rounds:
        for f in (r.get("answer") or {}).get("files") or []:
            f["url"] = FILE_URL.format(id=f["id"])
    return rounds


async def task_detail(engine: CaseEngine, staff: StaffUser, task_id: str) -> dict[str, Any]:
    """The task, its case summary (applicant masked), form render spec, the application form
    (``application``: rows, personal values masked), materials with their files, timeline,
    补正 rounds, ``return_targets``, ``colleagues`` and ``actions``."""
    from forms import load_form

    task = await desk.visible_task(staff, task_id, engine.deps.clock())
    case: Case = task.case  # type: ignore[assignment]
    names = engine.deps.departments
    _, workflow, bundle = await engine.load(case.id)
    main_id = main_task_id(task) if task.kind == SUPPLEMENT else \
        task.task_spec.split(":", 2)[2] if task.kind == COSIGN else str(task.id)
    try:  # side tasks (review, escalation) are no workflow task: Spiff raises for an unknown id
        spiff = workflow.get_task_from_id(UUID(main_id))
    except Exception:  # noqa: BLE001 - TaskNotFoundException
        spiff = None
    data = dict(spiff.data) if spiff is not None and not workflow.completed else current_data(workflow)
    definition = await ProcessDefinition.get(id=case.definition_id)  # type: ignore[attr-defined]
    applicant = data.get("applicant") if isinstance(data.get("applicant"), dict) else {}
    form_file = f"forms/{task.form_key}" if task.form_key else None
    form = load_form(bundle.files[form_file]).ui_spec() if form_file and form_file in bundle.files else None
    materials = await materials_view(case.id, [m for m in data.get("materials") or [] if isinstance(m, dict)])
    application = application_view(data.get("form"), application_spec(bundle))
    events = await CaseEvent.filter(case_id=case.id).order_by("id")
    rounds = _with_urls(await case_rounds(engine, case.id, workflow))
    # who did what, as people read it: 申请人, 王芳（市场监管局）, 系统 — not citizen:1 or samr01
    people = await desk.actor_names(desk.event_people(events) + [r.get("requested_by") for r in rounds]
                                    + [task.assignee], names)
    for r in rounds:
        r["requested_by_name"] = desk.actor_name(r["requested_by"], people) if r.get("requested_by") else None
    open_process_task = task.kind == "bpmn" and task.state in (*OPEN_TASK_STATES, HELD_STATE)
    targets = return_targets(workflow) if open_process_task and case.status == "running" else []
    peers = await colleagues(staff, task.department) if task.kind == "bpmn" else []
    await desk.log_case_read(engine, staff, task, case, applicant)
    actions, blocked = await action_state(engine, staff, task, case, workflow, targets=targets, peers=peers)
    return {
        "task": {**desk.task_view(task, names, officers=await delegation.principals(staff.username,
                                                                                      engine.deps.clock())),
                 "assignee_name": desk.actor_name(task.assignee, people) if task.assignee else None},
        "form": form, "materials": materials, "application": application,
        "case": {"id": case.id, "case_no": case.case_no, "service": case.service,
                 "service_name": definition.name or case.service, "status": case.status,
                 "status_label": STATUS_LABELS.get(case.status, case.status), "channel": case.channel,
                 "applicant_name": applicant.get("name_masked"), "applicant_id": applicant.get("id_masked"),
                 "created_at": case.created_at.isoformat(), "due_at": desk.iso(case.due_at),
                 "sla_paused": case.paused_at is not None},
        "timeline": desk.timeline_view(events, names, people),
        "supplements": rounds,
        "review": await review_context(engine, task) if task.kind == "review" else None,
        "rectification": await rectification_view(engine, case, data),
        "return_targets": targets, "colleagues": peers,
        "actions": actions, "blocked": blocked,
    }


__all__ = ["ACTIONS", "action_state", "allowed_actions", "application_spec", "colleagues", "return_targets",
           "task_detail"]
