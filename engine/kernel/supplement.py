"""Generic 补正: an officer sends a case back to the applicant for supplementary material, on any
process — no 补正 step has to be modelled in the BPMN.

``request_supplement`` holds the officer's task (state ``waiting``: not completable, out of the
ready inbox, listed under ``status=waiting``) and opens a side task of kind ``supplement`` in lane
``applicant`` whose ``task_spec`` is ``supplement:<held task id>``. While such a task is open the
SLA clock is paused (``engine.kernel.clocks``). The citizen answers with the ordinary
``POST /applications/{id}/supplement`` (``engine.citizen.case_views.supplement``); window cases
(``channel=window``) put the side task in the ``window`` department so a clerk can also supply it
for the walk-in citizen (``complete`` on the side task). ``supply`` records the data in the held
task's workflow data (``supplements``; ``materials`` entries are appended to the case's materials),
gives the task back to the officer who asked (claimed) and resumes the clock. Both steps are on the
timeline (``supplement_requested`` / ``supplement_received``) with actor, department and reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from engine.errors import Conflict, NotFound
from engine.kernel import clocks as case_sla
from engine.kernel.cases import HELD_STATE, OPEN_TASK_STATES, CaseEngine, Step, StepWrite
from engine.store.models import Case, CaseEvent, HumanTask

SUPPLEMENT, HELD = "supplement", HELD_STATE
APPLICANT_LANE, WINDOW_DEPARTMENT = "applicant", "window"
MAX_MATERIALS = 50


class WaitingForApplicant(Conflict):
    code = "waiting_for_applicant"
    default_message = "该任务正在等待申请人补正材料，补正后才能继续办理"


class NotAProcessTask(Conflict):
    code = "not_a_process_task"
    default_message = "该操作只适用于流程办理任务，不适用于加签、补正、督办等附属任务"


def main_task_id(side: HumanTask) -> str:
    return side.task_spec.split(":", 1)[1]


async def request_supplement(engine: CaseEngine, task: HumanTask, *, actor: str, reason: str) -> HumanTask:
    """Hold ``task`` (a ready task or one claimed by ``actor``) and ask the applicant for
    material; returns the side task. 409 when the case does not run or the task moved on."""
    if task.kind != "bpmn":
        raise NotAProcessTask()
    now = engine.deps.clock()
    async with in_transaction() as conn:
        case = await Case.filter(id=task.case_id).using_db(conn).first()  # type: ignore[attr-defined]
        if case is None:
            raise NotFound("办件不存在")
        if case.status != "running":
            raise Conflict("办件不在办理中，不能要求补正")
        if not await Case.filter(id=case.id, version=case.version).using_db(conn).update(version=case.version + 1):
            raise Conflict("办件已被他人更新，请刷新后重试")
        held = await HumanTask.filter(Q(assignee__isnull=True) | Q(assignee=actor), id=task.id,
                                      state__in=OPEN_TASK_STATES).using_db(conn).update(state=HELD, assignee=actor)
        if not held:
            raise Conflict("任务状态已变化，请刷新后重试")
        department = WINDOW_DEPARTMENT if case.channel == "window" else None
        side = await HumanTask.create(
            id=uuid4(), case_id=case.id, kind=SUPPLEMENT, task_spec=f"{SUPPLEMENT}:{task.id}",
            name=f"补正材料：{task.name}", lane=APPLICANT_LANE, department=department, state="ready",
            created_at=now, due_at=None, using_db=conn)
        await CaseEvent.create(case_id=case.id, kind="supplement_requested", task_id=str(task.id),
                               task_name=task.name, actor=actor, department=task.department,
                               detail={"opinion": reason, "side_task_id": str(side.id)}, created_at=now,
                               using_db=conn)
        await _clock(engine, conn, case, now)
        step = Step(events=[{"kind": "supplement_requested", "actor": actor, "detail": {"opinion": reason}}])
        await engine.run_step_hooks(conn, [StepWrite(case=case, status=case.status, data=None, step=step,
                                                     new_tasks=[side])], now)  # notifications, same transaction
    return side


async def supply(engine: CaseEngine, side: HumanTask, data: dict[str, Any], *, actor: str,
                 department: str | None = None, opinion: str = "申请人补正材料") -> HumanTask:
    """Answer the request: record ``data`` on the held task, give it back to the officer who
    asked, resume the clock. 409 when already supplied (or the case moved on)."""
    main_id = UUID(main_task_id(side))
    case, workflow, bundle = await engine.load(side.case_id)  # type: ignore[attr-defined]
    if case.status != "running":
        raise Conflict("办件不在办理中")
    spiff_task = workflow.get_task_from_id(main_id)
    if spiff_task is None:
        raise Conflict("该补正要求已失效，请刷新")
    now = engine.deps.clock()
    request = await CaseEvent.filter(case_id=case.id, kind="supplement_requested", task_id=str(main_id)) \
        .order_by("-id").first()
    entry = {"reason": (request.detail or {}).get("opinion") if request else None,
             "requested_by": request.actor if request else None, "data": data, "supplied_by": actor,
             "at": now.isoformat()}
    spiff_task.data["supplements"] = [*(spiff_task.data.get("supplements") or []), entry]
    extra = data.get("materials")
    if isinstance(extra, list) and extra and len(extra) <= MAX_MATERIALS and all(isinstance(m, dict) for m in extra):
        spiff_task.data["materials"] = [*(spiff_task.data.get("materials") or []),
                                        *({**m, "supplemented": True} for m in extra)]
    # the workflow's data changed, not its position: no projection, no audited step
    async with engine.commit(case, workflow, bundle, Step(), project=False, audit_step=False,
                             publish=False) as tx:
        conn = tx.conn
        closed = await HumanTask.filter(id=side.id, state__in=OPEN_TASK_STATES).using_db(conn).update(
            state="completed", completed_at=now, completed_by=actor)
        if not closed:
            raise Conflict("该补正已提交，请勿重复提交")
        await HumanTask.filter(id=main_id, state=HELD).using_db(conn).update(state="claimed")
        await CaseEvent.create(case_id=case.id, kind="supplement_received", task_id=str(main_id),
                               task_name=side.name, actor=actor, department=department,
                               detail={"opinion": opinion, "side_task_id": str(side.id), "data": data},
                               created_at=now, using_db=conn)
        await _clock(engine, conn, case, now)
    return await HumanTask.get(id=main_id)


async def _clock(engine: CaseEngine, conn: Any, case: Case, now: datetime) -> None:
    """Pause or resume the SLA clock from the open tasks (``case_sla`` looks at side tasks too)."""
    lanes = await HumanTask.filter(case_id=case.id, state__in=OPEN_TASK_STATES).using_db(conn) \
        .values_list("lane", flat=True)
    changes = await case_sla.on_save(conn, case.id, lanes_waiting=list(lanes), completed=False, due_at=case.due_at,
                                     paused_at=case.paused_at, calendar=engine.deps.calendar, now=now)
    if changes:
        await Case.filter(id=case.id).using_db(conn).update(**changes)


async def requests_of(main_id: str) -> list[dict[str, Any]]:
    """The 补正 rounds of one task, oldest first: reason, who asked, what came back."""
    events = await CaseEvent.filter(task_id=main_id, kind__in=("supplement_requested", "supplement_received")) \
        .order_by("id")
    rounds: dict[str, dict[str, Any]] = {}
    for e in events:
        detail = e.detail if isinstance(e.detail, dict) else {}
        entry = rounds.setdefault(str(detail.get("side_task_id")), {
            "reason": None, "requested_by": None, "requested_at": None, "supplied_by": None,
            "supplied_at": None, "data": None})
        if e.kind == "supplement_requested":
            entry.update(reason=detail.get("opinion"), requested_by=e.actor, requested_at=e.created_at.isoformat())
        else:
            entry.update(supplied_by=e.actor, supplied_at=e.created_at.isoformat(), data=detail.get("data"))
    return list(rounds.values())


async def reason_of(side: HumanTask) -> str | None:
    event = await CaseEvent.filter(case_id=side.case_id, kind="supplement_requested",  # type: ignore[attr-defined]
                                   task_id=main_task_id(side)).order_by("-id").first()
    return (event.detail or {}).get("opinion") if event else None


__all__ = ["HELD", "SUPPLEMENT", "NotAProcessTask", "WaitingForApplicant", "main_task_id", "reason_of",
           "request_supplement", "requests_of", "supply"]
