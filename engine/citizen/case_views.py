"""What a citizen sees of a case and what they may do with it.

``case_detail`` turns the stored case into the applicant's view: status, the timeline of steps
(department, action, time, opinion), the current step with its due time, the automatic decision
with its reason, the resulting certificates (masked) and the sub-cases. The operations —
supplement (补正), withdraw (撤回, before acceptance), review request (PIPL Art. 24) and the
evaluation (好差评, once, after the end; bad ones open a rectification case) — all check that the
case belongs to the caller and is in the right state.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any
from uuid import uuid4
from weakref import WeakKeyDictionary

from tortoise.transactions import in_transaction

from engine.bpmn.conventions import APPLICANT_LANES
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.kernel.cases import HELD_STATE, OPEN_TASK_STATES, CaseEngine, current_data
from engine.kernel.summary import decision_of, summary_of
from engine.store.identity_models import Citizen
from engine.store.models import Case, CaseEvent, Evaluation, HumanTask, Job

STATUS_LABELS = {"running": "办理中", "completed": "已办结", "failed": "办理异常", "withdrawn": "已撤回"}
EVENT_LABELS = {
    "case_started": "提交申请", "task_completed": "办理", "step_done": "自动处理", "case_completed": "办结",
    "sla_paused": "等待补正（计时暂停）", "sla_resumed": "补正完成（恢复计时）", "sla_warning": "即将超期提醒",
    "sla_escalated": "超期督办", "withdrawn": "申请人撤回", "review_requested": "申请人工复核",
    "evaluated": "评价", "supplement_requested": "要求补正", "supplement_received": "补正材料",
    "materials_received": "窗口收件", "applicant_bound": "申请人认领窗口办件",
    "task_claimed": "认领办理", "task_unclaimed": "退回待认领", "task_transferred": "转办",
    "task_returned": "退回重办", "completion_withdrawn": "撤回已办", "signer_added": "加签",
    "cosign_completed": "加签意见", "comment": "批注", "review_decided": "人工复核结论",
    "certificate_revoked": "证照撤销", "certificate_issued": "签发证照", "case_migrated": "流程版本升级",
    "urged": "催办", "cc_read": "抄送已阅",
    "message_received": "收到关联办件消息", "message_sent": "发出消息",
}
# timeline kinds the applicant does not need to see (internal handling between officers)
STAFF_ONLY_KINDS = frozenset({"bpmn_event", "task_claimed", "task_unclaimed", "comment", "task_transferred",
                              "signer_added", "cosign_completed", "cc_read", "message_sent"})
REVIEW_VERDICTS = {"uphold": "维持原决定", "overturn": "撤销原决定"}
LEVELS = {1: "非常满意", 2: "满意", 3: "基本满意", 4: "不满意", 5: "非常不满意"}
BAD_LEVELS = {4, 5}


async def load_case(case_id: int) -> Case:
    """The case row (its summary fields); ``DoesNotExist`` for a number no case has."""
    return await Case.get(id=case_id)


async def owned_case(case_id: int, applicant: str) -> Case:
    """The case if it belongs to ``applicant`` (an openid); ``NotFound`` otherwise (never reveal
    others' cases)."""
    case = await Case.get_or_none(id=case_id, applicant=applicant)
    if case is None:
        raise NotFound("办件不存在")
    return case


async def citizen_case(citizen_id: int, case_id: int) -> Case | None:
    """The case if it belongs to the citizen account ``citizen_id``, else ``None``: one query
    (the case joined to the account's openid), so never another's case. The same query brings
    what the applicant's view needs beside the row, so a cached view costs no other query:
    ``last_event``, the newest timeline event's id (with the row's version and ``updated_at``
    the stamp of the cached detail, ``case_detail``), and ``certificate_rows``, the case's
    certificates as they are now. A read-only row: every column but the workflow ``state`` (the
    largest, which no view needs), built without the query builder (hand-written SQL in the
    connection's dialect: the builder cost more CPU than the query)."""
    conn = Case._meta.db
    rows = await conn.execute_query_dict(_citizen_case_sql(conn.capabilities.dialect), [case_id, citizen_id])
    if not rows:
        return None
    row = dict(rows[0])
    last_event = row.pop("last_event")
    for column in _CERT_COLUMNS:
        row.pop(f"cert_{column}")
    case = Case._init_from_db(**row)  # partial (no ``state``): Tortoise refuses to save it whole
    case.last_event = last_event  # type: ignore[attr-defined]
    case.certificate_rows = [{c: r[f"cert_{c}"] for c in _CERT_COLUMNS}  # type: ignore[attr-defined]
                             for r in rows if r["cert_id"] is not None]
    return case


_SQL: dict[str, str] = {}
_CERT_COLUMNS = ("id", "identifier", "name", "number", "issuer_name", "issue_date", "holder_name",
                 "holder_code_type", "holder_code_masked", "state")


def _citizen_case_sql(dialect: str) -> str:
    from engine.store.certificate_models import Certificate

    sql = _SQL.get(dialect)
    if sql is None:
        p1, p2 = ("$1", "$2") if dialect == "postgres" else ("?", "?")
        columns = ", ".join(f'c."{column}"' for field, column in Case._meta.fields_db_projection.items()
                            if field != "state")
        certificate = ", ".join(f'k."{column}" AS "cert_{column}"' for column in _CERT_COLUMNS)
        sql = _SQL[dialect] = (
            f'SELECT {columns}, {certificate}, (SELECT MAX(e."id") FROM "{CaseEvent._meta.db_table}" e '
            f'WHERE e."case_id" = c."id") AS last_event FROM "{Case._meta.db_table}" c '
            f'LEFT JOIN "{Certificate._meta.db_table}" k ON k."case_id" = c."id" '
            f'WHERE c."id" = {p1} AND c."applicant" IN '
            f'(SELECT z."openid" FROM "{Citizen._meta.db_table}" z WHERE z."id" = {p2}) ORDER BY k."id"')
    return sql


async def citizen_cases(openid: str, *, page: int, size: int) -> tuple[list[Case], int]:
    """One page of the applicant's cases, newest first, and how many there are."""
    query = Case.filter(applicant=openid)
    total = await query.count()
    rows = await query.order_by("-created_at", "-id").offset((page - 1) * size).limit(size)
    return list(rows), total


async def waiting_for_applicant(case_ids: list[int]) -> set[int]:
    """Which of these cases wait for their applicant (an open 补正 or other applicant step): one query."""
    if not case_ids:
        return set()
    rows = await HumanTask.filter(case_id__in=case_ids, lane__in=sorted(APPLICANT_LANES),
                                  state__in=OPEN_TASK_STATES).values_list("case_id", flat=True)
    return {int(r) for r in rows}


async def case_started_by_request(openid: str, request_key: str, since: datetime) -> int | None:
    """The applicant's case whose start recorded ``request_key`` (an idempotency digest) since
    ``since``, if any: the database, not a cache, is the record of what committed."""
    events = await CaseEvent.filter(kind="case_started", case__applicant=openid,
                                    created_at__gte=since).values("case_id", "detail")
    for event in events:
        detail = event["detail"]
        if isinstance(detail, dict) and detail.get("request_key") == request_key:
            return int(event["case_id"])
    return None


async def case_summary(engine: CaseEngine, case: Case) -> dict[str, Any]:
    """The case's decision and result: stored with its state; rebuilt from the workflow only for
    a case last written before summaries were kept."""
    if case.summary is not None:
        return engine.deps.serializer.load_summary(case.summary)
    _, workflow, _ = await engine.load(case.id)
    return summary_of(current_data(workflow))


class DetailCache:
    """The applicant's view of recently read cases, per engine (so per API process), each under the
    stamp it was built for: the case row's ``version`` and ``updated_at`` and its newest timeline
    event's id (``last_event``, read with the row by ``citizen_case``). Whatever changes what the
    applicant sees changes one of them: a step (``CaseEngine.commit``) bumps the version, and every
    other write — a withdrawal, a 补正, a staff operation, an SLA pause, an evaluation, a review
    request — adds a timeline event in its transaction. A read with another stamp rebuilds the view,
    in every process, on the very next request. Certificates are not cached: their state (suspended,
    revoked) changes without the case, so each read takes them as they are now (in the row's query)."""

    SIZE = 2048

    def __init__(self) -> None:
        self.views: OrderedDict[int, tuple[tuple[Any, ...], dict[str, Any]]] = OrderedDict()

    def get(self, case_id: int, stamp: tuple[Any, ...]) -> dict[str, Any] | None:
        entry = self.views.get(case_id)
        if entry is None or entry[0] != stamp:
            return None
        self.views.move_to_end(case_id)
        return entry[1]

    def put(self, case_id: int, stamp: tuple[Any, ...], view: dict[str, Any]) -> None:
        self.views[case_id] = (stamp, view)
        self.views.move_to_end(case_id)
        while len(self.views) > self.SIZE:
            self.views.popitem(last=False)


_CACHES: WeakKeyDictionary[CaseEngine, DetailCache] = WeakKeyDictionary()


def detail_stamp(case: Case) -> tuple[Any, ...] | None:
    """The cache stamp of a row read by ``citizen_case`` (``None`` for a row read otherwise)."""
    if not hasattr(case, "last_event"):
        return None
    return case.version, case.updated_at, case.last_event, case.status


async def case_detail(engine: CaseEngine, case: Case) -> dict[str, Any]:
    """What the applicant sees of ``case``: from the engine's ``DetailCache`` when the row's stamp
    still matches, else built (five queries) and cached; certificates always as they are now (read
    with the row by ``citizen_case``, else one query)."""
    stamp = detail_stamp(case)
    cache = _CACHES.get(engine)
    if cache is None:
        cache = _CACHES.setdefault(engine, DetailCache())
    view = cache.get(case.id, stamp) if stamp is not None else None
    if view is None:
        view = await _build_detail(engine, case)
        if stamp is not None:
            cache.put(case.id, stamp, view)
    rows = getattr(case, "certificate_rows", None)
    certificates = _certificate_views(rows) if rows is not None else await _certificates(case.id)
    return {**view, "certificates": certificates}


async def _certificates(case_id: int) -> list[dict[str, Any]]:
    """The case's certificates, for a row not read by ``citizen_case`` (which brings them along)."""
    from engine.store.certificate_models import Certificate

    return _certificate_views(await Certificate.filter(case_id=case_id).order_by("id").values(*_CERT_COLUMNS))


def _certificate_views(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Certificates as the applicant sees them (holder name masked unless a company's)."""
    return [{"id": c["id"], "identifier": c["identifier"], "name": c["name"], "number": c["number"],
             "issuer_name": c["issuer_name"], "issue_date": _date_text(c["issue_date"]),
             "holder_name": c["holder_name"] if c["holder_code_type"] == "001"  # company names are public
             else c["holder_name"][:1] + "*" * (len(c["holder_name"]) - 1),
             "holder_code_masked": c["holder_code_masked"], "state": c["state"]} for c in rows]


def _date_text(value: Any) -> str:
    """A DATE column as ISO text: a ``date`` from asyncpg, already text from SQLite."""
    return value if isinstance(value, str) else value.isoformat()


async def _build_detail(engine: CaseEngine, case: Case) -> dict[str, Any]:
    summary = await case_summary(engine, case)
    departments = engine.deps.departments
    events = await CaseEvent.filter(case_id=case.id).order_by("id")
    steps = [{
        "kind": e.kind, "action": EVENT_LABELS.get(e.kind, e.kind), "step": e.task_name,
        "department": e.department, "department_name": departments.get(e.department or "", e.department),
        "opinion": (e.detail or {}).get("opinion") if isinstance(e.detail, dict) else None,
        "at": e.created_at.isoformat(),
    } for e in events if e.kind not in STAFF_ONLY_KINDS]
    all_tasks = await HumanTask.filter(case_id=case.id).order_by("created_at", "id")
    tasks = [t for t in all_tasks if t.state in OPEN_TASK_STATES]
    current = [{"name": t.name, "department": t.department,
                "department_name": departments.get(t.department or "", t.department),
                "waiting_for_applicant": t.lane in APPLICANT_LANES, "task_id": str(t.id),
                "reason": await _supplement_reason(t),
                "due_at": t.due_at.isoformat() if t.due_at else None} for t in tasks]
    pending = await _pending_supplement(engine, case)
    # 好差评 only after the end (``evaluate``): a running case has none to read
    evaluation = None if case.status == "running" else await Evaluation.get_or_none(case_id=case.id)
    return {
        "id": case.id, "case_no": case.case_no, "service": case.service, "status": case.status,
        "status_label": STATUS_LABELS.get(case.status, case.status), "channel": case.channel,
        "created_at": case.created_at.isoformat(), "due_at": case.due_at.isoformat() if case.due_at else None,
        "completed_at": case.completed_at.isoformat() if case.completed_at else None,
        "sla_paused": case.paused_at is not None, "current_steps": current, "steps": steps,
        "decision": summary.get("decision"), "result": summary.get("result") or {},
        "subcases": engine.subcases_of(case, [t for t in all_tasks if t.kind == "bpmn"]),
        "evaluation": {"level": evaluation.level, "label": LEVELS[evaluation.level],
                       "rectification_case_no": evaluation.rectification_case_no} if evaluation else None,
        "supplement": pending,
        "review": review_state(events),
        "actions": actions_of(case, summary, events, pending, evaluation),
    }


def review_state(events: list[CaseEvent]) -> dict[str, Any] | None:
    """The applicant's human review (人工复核): requested (pending) or decided, with the verdict."""
    asked = next((e for e in reversed(events) if e.kind == "review_requested"), None)
    if asked is None:
        return None
    decided = next((e for e in reversed(events) if e.kind == "review_decided"), None)
    view: dict[str, Any] = {"status": "pending", "requested_at": asked.created_at.isoformat(),
                            "reason": (asked.detail or {}).get("opinion") if isinstance(asked.detail, dict) else None}
    if decided is not None and isinstance(decided.detail, dict):
        d = decided.detail
        view.update(status="decided", verdict=d.get("verdict"), verdict_label=REVIEW_VERDICTS.get(d.get("verdict"), ""),
                    outcome=d.get("outcome"), decision_reason=d.get("opinion"),
                    decided_at=decided.created_at.isoformat())
    return view


def accepted(events: list[CaseEvent]) -> bool:
    """Whether an officer acted on the case (completed a step): from then on no 撤回."""
    return any(e.kind == "task_completed" and not (e.actor or "").startswith("citizen:") for e in events)


def actions_of(case: Case, summary: dict[str, Any], events: list[CaseEvent], pending: dict[str, Any] | None,
               evaluation: Any) -> list[str]:
    """What the applicant may do now: supplement, withdraw, review, evaluate."""
    actions = []
    if pending is not None:
        actions.append("supplement")
    if case.status == "running" and not accepted(events):
        actions.append("withdraw")
    if summary.get("decision") and not any(e.kind == "review_requested" for e in events):
        actions.append("review")
    if case.status in ("completed", "failed") and evaluation is None:
        actions.append("evaluate")
    return actions


async def _supplement_reason(task: HumanTask) -> str | None:
    """Why an officer asked for material (a generic 补正 side task); None for other steps."""
    from engine.kernel.supplement import SUPPLEMENT, reason_of

    return await reason_of(task) if task.kind == SUPPLEMENT else None


async def _pending_supplement(engine: CaseEngine, case: Case) -> dict[str, Any] | None:
    """The open 补正 as the citizen sees it: who asked is the department (市场监管局工作人员) or
    系统 for a step of the process — never a staff account name."""
    from engine.kernel.supplement import pending_request

    request = await pending_request(engine, case)
    if request is not None:
        department = engine.deps.departments.get(request.get("department") or "", request.get("department"))
        by = request.get("requested_by")
        request["requested_by"] = "系统" if not by or by == "system" else \
            f"{department}工作人员" if department else "工作人员"
    return request


OTHER_MATERIAL = "其他材料"  # files the applicant adds beyond the listed items


async def answer_supplement(engine: CaseEngine, case: Case, *, note: str, materials: dict[str, list[str]],
                            form: dict[str, Any] | None, actor: str, owner: str) -> None:
    """Answer the open 补正 with a note, files per requested item (uploads of ``owner``, attached
    to the case as source ``supplement``) and corrected form fields. Items must be ones the officer
    listed, files unexpired uploads of the applicant not used elsewhere (422 otherwise)."""
    from engine.kernel.supplement import pending_request
    from engine.platform import files

    pending = await pending_request(engine, case)
    if pending is None:
        raise Conflict("该办件当前无需补正")
    listed = set(pending["items"])
    unknown = [k for k in materials if k not in listed and k != OTHER_MATERIAL]
    if unknown:
        raise ValidationFailed("补正材料与补正事项不符", fields={
            "materials": f"「{unknown[0]}」不是本次要求补正的事项"})
    parsed = files.parse_material_files(materials, [*pending["items"], OTHER_MATERIAL])
    now = engine.deps.clock()
    await files.claim_uploads(owner, parsed, now)
    if pending["source"] == "officer":
        data: dict[str, Any] = {"note": note, "materials": materials}
        if form:
            data["form"] = form
    else:
        attachments = [i for ids in materials.values() for i in ids]
        data = {"supplement": {"note": note, **({"materials": materials} if materials else {}),
                               **({"attachments": attachments} if attachments else {}), **(form or {})}}
    await supplement(engine, case, data, actor=actor)
    await files.attach_uploads(case.id, owner, parsed, source="supplement", now=now)


async def supplement(engine: CaseEngine, case: Case, data: dict[str, Any], *, actor: str) -> None:
    """Answer the applicant's 补正 — a modelled step in lane ``applicant`` or an officer's generic
    request (``engine.kernel.supplement``); the SLA clock resumes."""
    from engine.kernel.supplement import SUPPLEMENT, supply

    task = await HumanTask.filter(case_id=case.id, state__in=OPEN_TASK_STATES,
                                  lane__in=sorted(APPLICANT_LANES)).order_by("created_at").first()
    if task is None:
        raise Conflict("该办件当前无需补正")
    if task.kind == SUPPLEMENT:
        await supply(engine, task, data, actor=actor)
        return
    await engine.complete_task(task.id, data, actor=actor, opinion="申请人补正材料")


async def withdraw(engine: CaseEngine, case: Case, *, actor: str, reason: str = "") -> None:
    """撤回: allowed while no officer has acted on the case yet (before acceptance)."""
    if case.status != "running":
        raise Conflict("办件已办结或已撤回，不能撤回")
    if accepted(list(await CaseEvent.filter(case_id=case.id, kind="task_completed"))):
        raise Conflict("办件已受理，不能撤回；如需停止办理请联系窗口")
    now = engine.deps.clock()
    async with in_transaction() as conn:
        updated = await Case.filter(id=case.id, version=case.version, status="running").using_db(conn).update(
            status="withdrawn", version=case.version + 1, completed_at=now)
        if updated == 0:
            raise Conflict()
        await HumanTask.filter(case_id=case.id, state__in=(*OPEN_TASK_STATES, HELD_STATE)).using_db(conn).update(
            state="cancelled", completed_at=now)
        await Job.filter(case_id=case.id, status__in=("pending", "paused")).using_db(conn).update(status="cancelled")
        await CaseEvent.create(case_id=case.id, kind="withdrawn", actor=actor, created_at=now,
                               detail={"opinion": reason} if reason else None, using_db=conn)


async def request_review(engine: CaseEngine, case: Case, *, actor: str, reason: str) -> None:
    """Ask a person to look again at an automatic decision (个人信息保护法 第二十四条)."""
    _, workflow, _ = await engine.load(case.id)
    decision = decision_of(current_data(workflow))
    if decision is None:
        raise Conflict("该办件没有自动决定，无需申请人工复核")
    if await HumanTask.filter(case_id=case.id, kind="review").exists():
        raise Conflict("已申请人工复核，请勿重复提交")
    department = (current_data(workflow).get("service") or {}).get("department") or "window"
    now = engine.deps.clock()
    async with in_transaction() as conn:
        await HumanTask.create(id=uuid4(), case_id=case.id, kind="review", task_spec="manual_review",
                               name="自动决定人工复核", lane=department, department=department, state="ready",
                               created_at=now, using_db=conn)
        await CaseEvent.create(case_id=case.id, kind="review_requested", actor=actor, department=department,
                               detail={"opinion": reason[:500], "decision": decision.get("outcome")},
                               created_at=now, using_db=conn)


async def evaluate(engine: CaseEngine, case: Case, *, evaluator_hash: str, level: int, comment: str,
                   start_rectification: Any = None) -> dict[str, Any]:
    """好差评: once per case, after it ended. Bad reviews (4, 5) start the rectification process
    through ``start_rectification(review: dict) -> CaseResult``; the evaluator stays confidential."""
    if level not in LEVELS:
        raise ValidationFailed(fields={"level": "评价等级应为 1–5"})
    if case.status == "running":
        raise Conflict("办件办结后才能评价")
    now: datetime = engine.deps.clock()
    try:
        evaluation = await Evaluation.create(case_id=case.id, level=level, comment=comment[:500],
                                             evaluator_hash=evaluator_hash, created_at=now)
    except Exception as exc:  # the unique constraint on case_id: once per case
        if await Evaluation.filter(case_id=case.id).exists():
            raise Conflict("该办件已评价") from None
        raise exc
    rectification = None
    try:
        if level in BAD_LEVELS and start_rectification is not None:
            _, workflow, _ = await engine.load(case.id)
            department = (current_data(workflow).get("service") or {}).get("department") or "window"
            result = await start_rectification({"level": LEVELS[level], "comment": comment[:500],
                                                "case_no": case.case_no, "service": case.service,
                                                "department": department})
            rectification = result.case_no
            await Evaluation.filter(id=evaluation.id).update(rectification_case_no=rectification)
    finally:
        # the timeline event last, whatever happened: it moves the stamp of the applicant's cached
        # view (``DetailCache``) after every write of the evaluation, the rectification number too
        await CaseEvent.create(case_id=case.id, kind="evaluated", detail={"level": level, "label": LEVELS[level]},
                               created_at=now)
    return {"level": level, "label": LEVELS[level], "rectification_case_no": rectification}
