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

from engine.accountability import audit
from engine.errors import Conflict, NotFound
from engine.kernel import clocks as case_sla
from engine.kernel.cases import HELD_STATE, OPEN_TASK_STATES, CaseEngine, Step, StepWrite
from engine.store.models import Case, CaseEvent, HumanTask

SUPPLEMENT, HELD = "supplement", HELD_STATE
APPLICANT_LANE, WINDOW_DEPARTMENT = "applicant", "window"
MAX_MATERIALS = 50
MAX_ITEMS = 10
ANSWER_WORKING_DAYS = 15  # the applicant's time to answer a 补正 (the case clock is paused meanwhile)


class WaitingForApplicant(Conflict):
    code = "waiting_for_applicant"
    default_message = "该任务正在等待申请人补正材料，补正后才能继续办理"


class NotAProcessTask(Conflict):
    code = "not_a_process_task"
    default_message = "该操作只适用于流程办理任务，不适用于加签、补正、督办等附属任务"


def main_task_id(side: HumanTask) -> str:
    return side.task_spec.split(":", 1)[1]


def due_of(engine: CaseEngine, requested_at: datetime) -> datetime:
    """When the applicant should have answered: ``ANSWER_WORKING_DAYS`` working days later."""
    return engine.deps.calendar.due_after_working_days(requested_at, ANSWER_WORKING_DAYS)


def clean_items(items: Any) -> list[str]:
    """The listed things to supply: distinct non-empty texts, in order (``MAX_ITEMS`` at most)."""
    if not isinstance(items, list):
        return []
    seen: list[str] = []
    for item in items:
        text = str(item).strip()[:100] if isinstance(item, (str, int, float)) else ""
        if text and text not in seen:
            seen.append(text)
    return seen[:MAX_ITEMS]


async def request_supplement(engine: CaseEngine, task: HumanTask, *, actor: str, reason: str,
                             items: list[str] | None = None,
                             on_behalf_of: dict[str, str] | None = None) -> HumanTask:
    """Hold ``task`` (a ready task or one claimed by ``actor`` — or by the officer ``actor`` stands
    in for, ``on_behalf_of``: 代理) and ask the applicant for material (``items``: what to supply,
    listed); returns the side task. 409 when the case does not run or the task moved on."""
    if task.kind != "bpmn":
        raise NotAProcessTask()
    now = engine.deps.clock()
    items = clean_items(items)
    due_at = due_of(engine, now)
    async with in_transaction() as conn:
        case = await Case.filter(id=task.case_id).using_db(conn).first()  # type: ignore[attr-defined]
        if case is None:
            raise NotFound("办件不存在")
        if case.status != "running":
            raise Conflict("办件不在办理中，不能要求补正")
        if not await Case.filter(id=case.id, version=case.version).using_db(conn).update(version=case.version + 1):
            raise Conflict("办件已被他人更新，请刷新后重试")
        holder = (on_behalf_of or {}).get("on_behalf_of") or actor  # 代理: the task stays the officer's
        held = await HumanTask.filter(Q(assignee__isnull=True) | Q(assignee=holder), id=task.id,
                                      state__in=OPEN_TASK_STATES).using_db(conn).update(state=HELD, assignee=holder)
        if not held:
            raise Conflict("任务状态已变化，请刷新后重试")
        department = WINDOW_DEPARTMENT if case.channel == "window" else None
        side = await HumanTask.create(
            id=uuid4(), case_id=case.id, kind=SUPPLEMENT, task_spec=f"{SUPPLEMENT}:{task.id}",
            name=f"补正材料：{task.name}", lane=APPLICANT_LANE, department=department, state="ready",
            created_at=now, due_at=due_at, using_db=conn)
        await CaseEvent.create(case_id=case.id, kind="supplement_requested", task_id=str(task.id),
                               task_name=task.name, actor=actor, department=task.department,
                               detail={"opinion": reason, "side_task_id": str(side.id), "items": items,
                                       "due_at": due_at.isoformat(), **(on_behalf_of or {})},
                               created_at=now, using_db=conn)
        await audit.record(conn, "task.supplement_request", actor=actor, department=task.department,
                           case_no=case.case_no, subject=str(task.id), now=now,
                           detail={"task_name": task.name, "items": items, "opinion": audit.mask_text(reason),
                                   **(on_behalf_of or {})})
        await _clock(engine, conn, case, now)
        step = Step(events=[{"kind": "supplement_requested", "actor": actor, "detail": {"opinion": reason, "items": items}}])
        await engine.run_step_hooks(conn, [StepWrite(case=case, status=case.status, data=None, step=step,
                                                     new_tasks=[side])], now)  # notifications, same transaction
    await engine.publish_status(case.id, case.status, ["supplement_requested"])
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
    if isinstance(extra, dict):  # the answer's shape: {"<item>": [upload ids]}
        extra = [{"name": str(item), "status": "supplemented", "uploads": list(ids), "source": "supplement"}
                 for item, ids in extra.items() if isinstance(ids, list)]
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
    await engine.publish_status(case.id, case.status, ["supplement_received"])
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


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value if isinstance(value, str) else None


def modelled_request(task_data: dict[str, Any]) -> tuple[str | None, list[str]]:
    """Reason and items of a 补正 step modelled in the BPMN (a user task in lane ``applicant``),
    by convention from the data the officer's form left: ``supplement_request`` (the listed items),
    ``review_opinion`` or ``supplement_notice`` (the reason)."""
    items = clean_items(task_data.get("supplement_request"))
    reason = task_data.get("review_opinion") or task_data.get("supplement_notice")
    return (str(reason) if reason else None), items


def answer_view(data: Any) -> dict[str, Any]:
    """What the applicant sent back, in one shape: ``{note, materials: {item: [upload ids]}, form}``."""
    if not isinstance(data, dict):
        return {"note": None, "materials": {}, "form": None}
    inner = data.get("supplement") if isinstance(data.get("supplement"), dict) else data
    materials = inner.get("materials")
    by_item: dict[str, list[str]] = {}
    if isinstance(materials, dict):
        by_item = {str(k): [str(x) for x in v] for k, v in materials.items() if isinstance(v, list)}
    elif isinstance(materials, list):  # the older shape: [{name, ref | uploads}]
        for m in materials:
            if isinstance(m, dict) and m.get("name"):
                refs = m.get("uploads") or ([m["ref"]] if m.get("ref") else [])
                by_item.setdefault(str(m["name"]), []).extend(str(r) for r in refs)
    form = inner.get("form") if isinstance(inner.get("form"), dict) else \
        {k: v for k, v in inner.items() if k not in ("note", "materials", "attachments")} or None
    return {"note": inner.get("note"), "materials": by_item, "form": form}


async def case_rounds(engine: CaseEngine, case_id: int, workflow: Any = None) -> list[dict[str, Any]]:
    """Every 补正 round of a case, oldest first, officer requests and modelled steps alike:
    ``{reason, items, requested_by, requested_at, due_at, supplied_by, supplied_at, answer, task_id}``
    (``answer``: ``answer_view``; ``None`` while the applicant has not answered)."""
    events = await CaseEvent.filter(case_id=case_id).order_by("id")
    rounds: list[dict[str, Any]] = []
    by_side: dict[str, dict[str, Any]] = {}
    for e in events:
        detail = e.detail if isinstance(e.detail, dict) else {}
        if e.kind == "supplement_requested":
            entry = {"source": "officer", "task_id": str(detail.get("side_task_id")), "reason": detail.get("opinion"),
                     "items": list(detail.get("items") or []), "requested_by": e.actor,
                     "department": e.department, "requested_at": e.created_at.isoformat(),
                     "due_at": detail.get("due_at"), "supplied_by": None, "supplied_at": None, "answer": None,
                     "data": None}
            by_side[entry["task_id"]] = entry
            rounds.append(entry)
        elif e.kind == "supplement_received" and str(detail.get("side_task_id")) in by_side:
            by_side[str(detail.get("side_task_id"))].update(
                supplied_by=e.actor, supplied_at=e.created_at.isoformat(), answer=answer_view(detail.get("data")),
                data=detail.get("data"))
    modelled = await HumanTask.filter(case_id=case_id, kind="bpmn", lane=APPLICANT_LANE).order_by("created_at")
    if modelled:
        if workflow is None:
            _, workflow, _ = await engine.load(case_id)
        completions = [e for e in events if e.kind == "task_completed"]
        for row in modelled:
            if row.state == "cancelled":
                continue
            try:  # a row renamed by 退回 (engine.workbench.task_ops) has no workflow task any more
                spiff = workflow.get_task_from_id(row.id)
            except Exception:  # noqa: BLE001 - TaskNotFoundException
                spiff = None
            data = dict(spiff.data) if spiff is not None else {}
            reason, items = modelled_request(data)
            asked = [e for e in completions if e.created_at <= row.created_at and e.department != APPLICANT_LANE]
            by = asked[-1] if asked else None
            done = row.state == "completed"
            rounds.append({
                "source": "process", "task_id": str(row.id), "reason": reason, "items": items,
                "requested_by": by.actor if by else None, "department": by.department if by else row.department,
                "requested_at": row.created_at.isoformat(),
                "due_at": _iso(row.due_at) or due_of(engine, row.created_at).isoformat(),
                "supplied_by": row.completed_by if done else None, "supplied_at": _iso(row.completed_at) if done else None,
                "answer": answer_view(data.get("supplement")) if done else None,
                "data": {"supplement": data.get("supplement")} if done else None})
    rounds.sort(key=lambda r: r["requested_at"])
    await _with_files(case_id, rounds)
    return rounds


async def _with_files(case_id: int, rounds: list[dict[str, Any]]) -> None:
    """Each answer's files (``answer.files``: id, name, type, size, material) from the case's uploads."""
    from engine.store.models import Upload

    wanted = {i for r in rounds if r["answer"] for ids in r["answer"]["materials"].values() for i in ids}
    if not wanted:
        for r in rounds:
            if r["answer"] is not None:
                r["answer"]["files"] = []
        return
    ids = []
    for value in wanted:
        try:
            ids.append(UUID(str(value)))
        except ValueError:
            continue
    rows = {str(u.id): u for u in await Upload.filter(case_id=case_id, id__in=ids)} if ids else {}
    for r in rounds:
        if r["answer"] is None:
            continue
        by_item = r["answer"]["materials"]  # listed items first, in the officer's order (JSONB sorts keys)
        order = [i for i in r["items"] if i in by_item] + sorted(k for k in by_item if k not in r["items"])
        r["answer"]["files"] = [
            {"id": str(row.id), "name": row.name, "content_type": row.content_type, "size": row.size,
             "material": item, "source": row.source}
            for item in order for ref in by_item[item] if (row := rows.get(str(ref)))]


async def pending_request(engine: CaseEngine, case: Case, workflow: Any = None) -> dict[str, Any] | None:
    """The 补正 the applicant has to answer now, if any (the latest open round)."""
    if case.status != "running":
        return None
    if not await HumanTask.filter(case_id=case.id, lane=APPLICANT_LANE, state__in=OPEN_TASK_STATES).exists():
        return None
    open_rounds = [r for r in await case_rounds(engine, case.id, workflow) if r["supplied_at"] is None]
    if not open_rounds:
        return None
    r = open_rounds[-1]
    return {k: r[k] for k in ("reason", "items", "requested_by", "department", "requested_at", "due_at", "task_id",
                              "source")}


async def reason_of(side: HumanTask) -> str | None:
    event = await CaseEvent.filter(case_id=side.case_id, kind="supplement_requested",  # type: ignore[attr-defined]
                                   task_id=main_task_id(side)).order_by("-id").first()
    return (event.detail or {}).get("opinion") if event else None


__all__ = ["ANSWER_WORKING_DAYS", "HELD", "SUPPLEMENT", "NotAProcessTask", "WaitingForApplicant", "answer_view",
           "case_rounds", "clean_items", "main_task_id", "modelled_request", "pending_request", "reason_of",
           "request_supplement", "requests_of", "supply"]
