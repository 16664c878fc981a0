"""The case engine: start cases, complete human tasks, fire timers — durably.

Each step loads the stored workflow, runs it until it waits, and writes it back once, with an
optimistic version check, together with the task projection, the timeline and the timer jobs.
Two writers on one case: one wins, the other gets ``Conflict``; never a corrupted state.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, NamedTuple
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from engine.accountability import audit
from engine.bpmn.errors import describe_run_error
from engine.bpmn.parser import BundleCache, ProcessBundle, build_bundle, files_from_json, files_to_json
from engine.bpmn.serializer import StateSerializer
from engine.errors import (
    Conflict,
    GovflowError,
    ModelError,
    NotFound,
    ScriptError,
    TaskNotReady,
    ValidationFailed,
)
from engine.kernel import clocks as case_sla
from engine.kernel.connectors import ConnectorContext, ConnectorRegistry
from engine.kernel.messages import Mailbox, sync_subscriptions, thrown_messages
from engine.kernel.policy import ConnectorPolicy, check_call
from engine.kernel.sla import WorkingCalendar, plan
from engine.kernel.summary import result_columns, summary_of
from engine.store.db import insert_rows
from engine.store.models import Case, CaseEvent, HumanTask, Job, ProcessDefinition
from forms import validate_data

OPEN_TASK_STATES = ("ready", "claimed")
SIDE_TASK_KINDS = ("cosign", "supplement")  # closed with their case (engine.workbench.task_ops, kernel.supplement)
HELD_STATE = "waiting"  # a human task held while the applicant supplies material (engine.kernel.supplement)
_EVENT_COLUMNS = ("case_id", "kind", "task_id", "task_name", "actor", "department", "detail", "published",
                  "created_at")
TIMELINE_SPECS = {"UserTask", "ManualTask", "ScriptTask", "ServiceTask", "BusinessRuleTask",
                  "CallActivity", "SubWorkflowTask", "EndEvent"}


# Who deploys models from the repository's own folders (``seed-demo``, the service catalog, the
# CLI and benchmarks with no name): their scripts run in-process. Everything else — a person
# deploying through the designer — runs in the sandbox process pool (engine.bpmn.pool).
TRUSTED_DEPLOYERS = frozenset({None, "seed-demo", "catalog"})


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def default_case_no(service: str, now: datetime) -> str:
    """Human-readable and unique: ``SENIOR-CARD-20261129-7KQ2M9XA``."""
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    tail = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"{service.upper()[:20]}-{now:%Y%m%d}-{tail}"


@dataclass
class EngineDeps:
    """What the engine is given rather than builds: swap any of them in tests."""

    script_engine_factory: Callable[..., PythonScriptEngine]
    serializer: StateSerializer = field(default_factory=StateSerializer)
    bundles: BundleCache = field(default_factory=BundleCache)
    connectors: ConnectorRegistry = field(default_factory=ConnectorRegistry)
    departments: dict[str, str] = field(default_factory=dict)  # code -> name
    clock: Callable[[], datetime] = utcnow
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)
    # run engine steps in a worker thread, never on the event loop (build_engine: always on)
    offload_steps: bool = True
    keyring: Any = None  # e-certificate signing keys (engine.certificates.signing.KeyRing), when installed
    # called after a step committed: (case_id, status, event kinds) -> live status fan-out (SSE)
    publish: Callable[[int, str, list[str]], Awaitable[None]] | None = None
    case_no: Callable[[str, datetime], str] = default_case_no
    # kind -> async writer(conn, case_id, payload): stores what connectors recorded during a step
    record_writers: dict[str, Callable[[Any, int, dict[str, Any]], Awaitable[None]]] = field(default_factory=dict)
    # called in complete_task's transaction before the task closes: (conn, task row, actor, now);
    # may raise to refuse the completion (e.g. engine.workbench.task_ops: an added 'before' signer is open)
    completion_hooks: list[Callable[[Any, HumanTask, str | None, datetime], Awaitable[None]]] = field(
        default_factory=list)
    # called in complete_task before the task runs: (workflow, Spiff task, task row, actor); may raise
    # to refuse who completes it (e.g. engine.workbench.assignment: distinct 会签 signers, 回避)
    task_guards: list[Callable[[BpmnWorkflow, Any, HumanTask, str | None], Awaitable[None]]] = field(
        default_factory=list)
    pii_keys: Any = None  # engine.accountability.privacy.PiiKeys: blind indexes for the personal-data access log
    # called inside every step's transaction, after its rows are written: (conn, [StepWrite], now);
    # what they write commits or rolls back with the step (e.g. engine.platform.notify: the notification outbox)
    notifications: Any = None  # engine.platform.notify.Outbox, when installed (its catalogue, for the API)
    step_hooks: list[Callable[[Any, list["StepWrite"], datetime], Awaitable[None]]] = field(default_factory=list)
    # service slug -> what its process may call and issue (engine.kernel.policy; from item.yaml);
    # None (or a service without an item): no policy applies
    connector_policy: Callable[[str], ConnectorPolicy | None] | None = None
    # how long a BPMN message no case waits for yet is kept for a later receiver (engine.kernel.messages)
    message_keep: timedelta = timedelta(days=7)


@dataclass
class TaskView:
    id: str
    task_spec: str
    name: str
    lane: str | None
    department: str | None
    form_key: str | None


@dataclass
class CaseResult:
    """What a step left behind: the case row values and the human tasks now waiting."""

    id: int
    case_no: str
    status: str
    version: int
    data: dict[str, Any]
    ready_tasks: list[TaskView]


@dataclass
class Step:
    """What one step did, collected while the workflow ran: timeline entries and the automatic
    decisions made (both written and audited by ``CaseEngine.commit``)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)  # automatic decisions made (audited)
    new_tasks: list[HumanTask] = field(default_factory=list)  # human tasks the projection opened
    # BPMN messages the workflow threw to other cases: (name, correlation, payload), taken out of the
    # workflow before its state is stored (else every later load would throw them again)
    thrown: list[tuple[str, dict[str, Any], Any]] = field(default_factory=list)
    sent_messages: list[int] = field(default_factory=list)  # their stored ids (dispatched after the commit)


@dataclass
class StepWrite:
    """What a step hook sees of one case a step just wrote (``EngineDeps.step_hooks``): the case
    row, its status and current workflow data after the step (``data`` None when the step did not
    rebuild the workflow), the step's timeline entries and decisions, the connector records it
    stored and the human tasks it opened."""

    case: Case
    status: str
    data: dict[str, Any] | None
    step: Step
    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    new_tasks: list[HumanTask] = field(default_factory=list)


class _CaseNoTaken(Exception):
    """A new case's row was refused (``start_case`` checks whether its number was taken)."""


class Stepped(NamedTuple):
    """A case a timer stepped, waiting to be written (``CaseEngine._write_fired``)."""

    case: Case
    workflow: BpmnWorkflow
    bundle: ProcessBundle
    step: Step
    context: ConnectorContext


class Commit:
    """An open write of one step (``CaseEngine.commit``): its transaction ``conn``, its clock
    ``now`` and the case's new ``version``. Rows the caller adds through ``conn`` commit or roll
    back with the state."""

    def __init__(self, engine: CaseEngine, conn: Any, now: datetime, case: Case, workflow: BpmnWorkflow,
                 bundle: ProcessBundle, step: Step) -> None:
        self.conn, self.now, self.version = conn, now, case.version
        self._engine, self._case, self._workflow, self._bundle, self._step = engine, case, workflow, bundle, step
        self.projected = False

    async def project(self) -> None:
        """Write the task projection, SLA clock, timeline and timer jobs now (``commit`` does it on
        exit otherwise): for callers that adjust the projected rows within the same write."""
        if not self.projected:
            self.projected = True
            await self._engine._write_side_effects(self.conn, self._case, self._workflow, self._bundle,
                                                   self._step, self.now)


class CaseEngine:
    def __init__(self, deps: EngineDeps) -> None:
        self.deps = deps
        self._bundle_by_definition: dict[int, ProcessBundle] = {}
        self._isolated: dict[int, bool] = {}  # definition id -> scripts run in the sandbox process pool
        dept = deps.departments
        self._lane_to_dept = {**{code: code for code in dept}, **{name: code for code, name in dept.items()}}
        self.messages = Mailbox(self)  # BPMN messages between cases and from external systems

    # ------------------------------------------------------------------ definitions
    async def deploy(self, files: dict[str, str], *, process_id: str | None = None,
                     deployed_by: str | None = None, name: str = "",
                     review_state: str = "approved") -> ProcessDefinition:
        """Store an immutable version; deploying identical content again returns the existing one.
        ``review_state``: ``approved`` (live at once: seeding, tests) or ``pending`` (four-eyes
        publishing, ``engine.designer.review``: a second person approves it)."""
        bundle = build_bundle(files, process_id)
        existing = await ProcessDefinition.get_or_none(process_id=bundle.process_id,
                                                       content_hash=bundle.content_hash)
        if existing is not None:
            return existing
        for _ in range(3):
            latest = await ProcessDefinition.filter(process_id=bundle.process_id).order_by("-version").first()
            try:
                async with in_transaction() as conn:
                    definition = await ProcessDefinition.create(
                        process_id=bundle.process_id, name=name or (bundle.spec.description or ""),
                        version=(latest.version + 1) if latest else 1, content_hash=bundle.content_hash,
                        files=files_to_json(bundle.files), deployed_by=deployed_by, using_db=conn,
                        review_state=review_state,
                    )
                    await audit.record(conn, "deploy", actor=deployed_by, subject=bundle.process_id,
                                       now=self.deps.clock(), detail={
                                           "version": definition.version, "content_hash": bundle.content_hash,
                                           "definition_id": definition.id, "files": sorted(bundle.files),
                                           "review_state": review_state})
            except IntegrityError:
                existing = await ProcessDefinition.get_or_none(process_id=bundle.process_id,
                                                               content_hash=bundle.content_hash)
                if existing is not None:
                    return existing
                continue
            self._bundle_by_definition[definition.id] = self.deps.bundles.put(bundle)
            self._isolated[definition.id] = deployed_by not in TRUSTED_DEPLOYERS
            return definition
        raise Conflict("并发部署冲突，请重试")

    async def latest_definition(self, process_id: str) -> ProcessDefinition:
        definition = await ProcessDefinition.filter(process_id=process_id).order_by("-version").first()
        if definition is None:
            raise NotFound(f"流程 {process_id} 尚未部署")
        return definition

    async def live_definition(self, process_id: str) -> ProcessDefinition:
        """The version new cases start on: the newest approved version whose effective time has
        come (four-eyes publishing: pending and rejected versions never run new cases)."""
        now = self.deps.clock()
        rows = await ProcessDefinition.filter(process_id=process_id, review_state="approved").order_by("-version")
        for definition in rows:
            if definition.effective_at is None or definition.effective_at <= now:
                return definition
        if rows or await ProcessDefinition.filter(process_id=process_id).exists():
            raise NotFound(f"流程 {process_id} 尚无已发布（审批生效）的版本")
        raise NotFound(f"流程 {process_id} 尚未部署")

    def lane_department(self, lane: str | None) -> str | None:
        """The department code a lane name (code or Chinese name) stands for."""
        return self._lane_to_dept.get(lane, lane) if lane else None

    async def bundle_for(self, definition_id: int, conn: Any = None) -> ProcessBundle:
        bundle = self._bundle_by_definition.get(definition_id)
        if bundle is None:
            definition = await ProcessDefinition.filter(id=definition_id).using_db(conn).first()
            if definition is None:
                raise NotFound("流程定义不存在")
            bundle = self.deps.bundles.load(files_from_json(definition.files), definition.process_id)
            self._isolated[definition_id] = definition.deployed_by not in TRUSTED_DEPLOYERS
            self._bundle_by_definition[definition_id] = bundle
        return bundle

    def isolated(self, definition_id: int) -> bool:
        """Whether the scripts of this version run in the sandbox process pool (a designer
        deployment) rather than in-process (a model shipped in the repository). Unknown: isolated."""
        return self._isolated.get(definition_id, True)

    # ------------------------------------------------------------------ cases
    async def start_case(self, definition: ProcessDefinition, *, service: str, data: dict[str, Any] | None = None,
                         applicant: str | None = None, actor: str | None = None,
                         sla_working_days: float | None = None, channel: str = "mobile",
                         item_version: str | None = None,
                         records: list[tuple[str, dict[str, Any]]] | None = None,
                         request_key: str | None = None, message: Any = None) -> CaseResult:
        """Start a case and run it until it waits. ``sla_working_days``: the promised limit;
        ``records``: rows to store with the new case (e.g. purpose-bound certificate uses);
        ``request_key``: an opaque digest of the request that started it, kept in the
        ``case_started`` event (committed with the case) so a retry can find it after a crash;
        ``message``: the BPMN message (``bpmn_messages`` row) its message start event catches
        (``engine.kernel.messages``)."""
        bundle = await self.bundle_for(definition.id)
        now = self.deps.clock()
        case_no = self.deps.case_no(service, now)
        context = ConnectorContext(case_no=case_no, service=service, actor=actor, purpose=f"办理 {service}",
                                   records=list(records or []))
        self._isolated.setdefault(definition.id, definition.deployed_by not in TRUSTED_DEPLOYERS)
        workflow = BpmnWorkflow(bundle.spec, bundle.subprocess_specs,
                                script_engine=self._script_engine(context, self.isolated(definition.id)))
        if data:
            workflow.task_tree.data.update(data)
            for task in workflow.get_tasks(state=TaskState.READY):
                task.data.update(data)
        started: dict[str, Any] = {"service": service}
        if request_key:
            started["request_key"] = request_key
        step = Step(events=[{"kind": "case_started", "actor": actor, "detail": started}])
        await self._step(self._advance, workflow, step)
        if message is not None:  # started by a message: its start event catches it, then the case runs on
            await self.messages.start_with(workflow, message, step)
        sla = plan(self.deps.calendar, now, sla_working_days) if sla_working_days else None
        state, summary, results = self.deps.serializer.dump(workflow), self.summary(workflow), self.result_columns(workflow)
        for attempt in range(3):  # the case number's random tail is checked by its unique index, not a query first
            try:
                async with in_transaction() as conn:
                    try:
                        case = await Case.create(
                            case_no=case_no, service=service, definition_id=definition.id, applicant=applicant,
                            agent=actor if channel == "window" else None, channel=channel, item_version=item_version,
                            status=_status(workflow), state=state, version=1, summary=summary, **results,
                            due_at=sla.due_at if sla and not workflow.completed else None,
                            completed_at=now if workflow.completed else None, using_db=conn,
                        )
                    except IntegrityError as exc:
                        raise _CaseNoTaken() from exc
                    await self._write_new_case(conn, case, workflow, bundle, step, context, sla, now)
                break
            except _CaseNoTaken as taken:
                if attempt == 2 or not await Case.filter(case_no=case_no).exists():
                    raise taken.__cause__ from None  # not the number: the row itself was refused
                case_no = context.case_no = self.deps.case_no(service, now)  # a random tail collided: draw again
        await self._published(case.id, workflow, step)
        return self._result(case.id, case_no, workflow, 1, bundle)

    async def _write_new_case(self, conn: Any, case: Case, workflow: BpmnWorkflow, bundle: ProcessBundle,
                              step: Step, context: ConnectorContext, sla: Any, now: datetime) -> None:
        """What a new case writes beside its row, in the same transaction."""
        if sla is not None and not workflow.completed:
            await case_sla.schedule(conn, case.id, sla)
        await self._write_side_effects(conn, case, workflow, bundle, step, now, new_case=True)
        records = list(context.records)
        await self._write_records(conn, case.id, context)
        await self.run_step_hooks(conn, [self._step_write(case, workflow, step, records)], now)
        await self._audit(conn, case.case_no, step, records, workflow, now)

    async def load(self, case_id: int, conn: Any = None, *,
                   context: ConnectorContext | None = None) -> tuple[Case, BpmnWorkflow, ProcessBundle]:
        """Read a case and rebuild its workflow (``conn``: inside a caller's transaction)."""
        case = await Case.filter(id=case_id).using_db(conn).first()
        if case is None:
            raise NotFound("办件不存在")
        context = context or ConnectorContext(case_no=case.case_no, service=case.service)
        if not context.case_no:
            context.case_no, context.service = case.case_no, case.service
        workflow, bundle = await self._rebuild(case, context, conn)
        return case, workflow, bundle

    async def _rebuild(self, case: Case, context: ConnectorContext, conn: Any = None) -> tuple[BpmnWorkflow,
                                                                                              ProcessBundle]:
        """The workflow of a case row already read, its connectors acting in ``context``."""
        bundle = await self.bundle_for(case.definition_id, conn)  # type: ignore[attr-defined]
        engine = self._script_engine(context, self.isolated(case.definition_id))  # type: ignore[attr-defined]
        return self.deps.serializer.load(case.state, bundle, engine), bundle

    async def complete_task(self, task_id: str | UUID, data: dict[str, Any] | None = None, *,
                            actor: str | None = None, opinion: str | None = None,
                            cc: list[str] | None = None, actor_name: str | None = None,
                            on_behalf_of: dict[str, str] | None = None) -> CaseResult:
        """Complete a ready human task with data; ``TaskNotReady`` when it is done or not reached.
        ``cc``: colleagues (usernames) the completed step is copied to (抄送, on its timeline entry).
        ``on_behalf_of``: ``{"on_behalf_of": officer, "on_behalf_of_name": name}`` when ``actor`` stands in
        for the officer holding the task (代理); kept on the timeline entry and its audit record."""
        task_uuid = as_uuid(task_id)
        row = await HumanTask.get_or_none(id=task_uuid)
        if row is None:
            raise NotFound("任务不存在")
        if row.state not in OPEN_TASK_STATES:
            raise TaskNotReady()
        context = ConnectorContext(case_no="", service="", actor=actor, purpose="办理任务")
        case, workflow, bundle = await self.load(row.case_id, context=context)  # type: ignore[attr-defined]
        task = workflow.get_task_from_id(task_uuid)
        if task is None or task.state != TaskState.READY or not task.task_spec.manual:
            raise TaskNotReady()
        for guard in self.deps.task_guards:
            await guard(workflow, task, row, actor)
        data = dict(data or {})
        form_name = bundle.forms.get(task.task_spec.name)
        if form_name and f"forms/{form_name}" in bundle.files:
            problems = validate_data(bundle.files[f"forms/{form_name}"], data)
            if problems:
                raise ValidationFailed(fields=problems)
        task.data.update(data)
        spec = task.task_spec
        step = Step(events=[{
            "kind": "task_completed", "task_id": str(task.id), "task_name": spec.bpmn_name or spec.name,
            "actor": actor, "department": row.department,
            "detail": {**({"opinion": opinion} if opinion else {}),
                       **({"cc": list(cc), "sender_name": actor_name or actor} if cc else {}),
                       **(on_behalf_of or {})} or None,
        }])
        await self._step(self._run_task_and_advance, task, workflow, step)
        async with self.commit(case, workflow, bundle, step, context=context) as tx:
            for hook in self.deps.completion_hooks:
                await hook(tx.conn, row, actor, tx.now)
            closed = await HumanTask.filter(id=task_uuid, state__in=OPEN_TASK_STATES).using_db(tx.conn).update(
                state="completed", completed_at=tx.now, completed_by=actor)
            if closed == 0:
                raise TaskNotReady()
        return self.result(case, workflow, tx.version, bundle)

    async def fire_timers(self, case_id: int, job_id: int | None = None, conn: Any = None) -> CaseResult | None:
        """Refresh due timers and continue. Returns ``None`` when the case no longer runs."""
        context = ConnectorContext(case_no="", service="", actor="system", purpose="定时器")
        case, workflow, bundle = await self.load(case_id, conn, context=context)
        if case.status != "running":
            return None
        step = Step()
        await self._step(self._advance, workflow, step)
        now = self.deps.clock()
        fired = [Stepped(case, workflow, bundle, step, context)]
        job_ids = [job_id] if job_id is not None else []
        if conn is not None:
            [version] = await self._write_fired(conn, fired, job_ids, now)  # the caller commits and publishes
        else:
            async with in_transaction() as c:
                [version] = await self._write_fired(c, fired, job_ids, now)
            await self._published(case.id, workflow, step)
        return self._result(case.id, case.case_no, workflow, version, bundle)

    async def fire_timer_batch(self, jobs: list[Job], conn: Any) -> list[tuple[int, str]]:
        """Fire many due timer jobs (locked by the caller, at most one per case) in the caller's
        transaction: one read of their cases, each workflow stepped, then one write per kind of row
        for all of them and one audit append — instead of ~11 round trips per timer. Any failure
        (a script error, a concurrent step's ``Conflict``) propagates: the caller rolls the batch
        back and fires the jobs one by one (``fire_timers``), so one broken case cannot hold up
        the rest. Returns ``(case_id, status)`` of the cases stepped, to publish after the commit."""
        now = self.deps.clock()
        cases = {c.id: c for c in await Case.filter(id__in=[j.case_id for j in jobs]).using_db(conn)}  # type: ignore[attr-defined]
        fired: list[Stepped] = []
        cancelled, done = [], []
        for job in jobs:
            case = cases.get(job.case_id)  # type: ignore[attr-defined]
            if case is None or case.status != "running":
                cancelled.append(job.id)
                continue
            context = ConnectorContext(case_no=case.case_no, service=case.service, actor="system", purpose="定时器")
            workflow, bundle = await self._rebuild(case, context, conn)
            step = Step()
            await self._step(self._advance, workflow, step)
            fired.append(Stepped(case, workflow, bundle, step, context))
            done.append(job.id)
        if cancelled:
            await Job.filter(id__in=cancelled).using_db(conn).update(status="cancelled")
        await self._write_fired(conn, fired, done, now)
        return [(f.case.id, _status(f.workflow)) for f in fired]

    async def _write_fired(self, conn: Any, fired: list[Stepped], job_ids: list[int], now: datetime) -> list[int]:
        """Store cases a timer stepped with their jobs done: each state (optimistic version check),
        then one write per kind of row for all of them and one audit append. Their new versions."""
        if job_ids:
            await Job.filter(id__in=job_ids).using_db(conn).update(status="done", fired_at=now)
        versions, records = [], []
        for f in fired:
            versions.append(await self._store(conn, f.case, f.workflow, now))
            records.append(list(f.context.records))
            await self._write_records(conn, f.case.id, f.context)
        await self._write_side_effects_many(conn, [(f.case, f.workflow, f.bundle, f.step) for f in fired], now)
        await self.run_step_hooks(conn, [self._step_write(f.case, f.workflow, f.step, recorded)
                                         for f, recorded in zip(fired, records, strict=True)], now)
        await audit.append(conn, [entry for f, recorded in zip(fired, records, strict=True)
                                  for entry in audit.step_entries(f.case.case_no, f.step.events, recorded,
                                                                  f.step.decisions, _status(f.workflow))], now=now)
        return versions

    async def timeline(self, case_id: int) -> list[CaseEvent]:
        return await CaseEvent.filter(case_id=case_id).order_by("id")

    async def subcases(self, case_id: int) -> list[dict[str, Any]]:
        """One sub-case per department the case reached (一件事 bundles fan out to several):
        ``<case_no>-<NN>`` numbered in the order departments first got a task."""
        case = await Case.get_or_none(id=case_id)
        if case is None:
            raise NotFound("办件不存在")
        rows = await HumanTask.filter(case_id=case_id, kind="bpmn").order_by("created_at", "id")
        return self.subcases_of(case, rows)

    def subcases_of(self, case: Case, rows: list[HumanTask]) -> list[dict[str, Any]]:
        """``subcases`` from the case's workflow task rows (``kind="bpmn"``) in creation order."""
        grouped: dict[str, list[HumanTask]] = {}
        for row in rows:
            grouped.setdefault(row.department or "-", []).append(row)
        result = []
        for index, (department, tasks) in enumerate(grouped.items(), start=1):
            open_tasks = [t for t in tasks if t.state in (*OPEN_TASK_STATES, HELD_STATE)]
            result.append({
                "subcase_no": f"{case.case_no}-{index:02d}", "department": department,
                "department_name": self.deps.departments.get(department, department),
                "status": "running" if open_tasks else "done",
                "tasks": [{"id": str(t.id), "name": t.name, "state": t.state} for t in tasks],
            })
        return result

    # ------------------------------------------------------------------ internals
    # ------------------------------------------------------------------ the one way to change a case
    async def advance(self, workflow: BpmnWorkflow, step: Step) -> None:
        """Run the workflow until it waits (off the event loop when configured), collecting the
        step's timeline entries and decisions into ``step``."""
        await self._step(self._advance, workflow, step)

    @asynccontextmanager
    async def commit(self, case: Case, workflow: BpmnWorkflow, bundle: ProcessBundle, step: Step, *,
                     context: ConnectorContext | None = None, project: bool = True, audit_step: bool = True,
                     publish: bool = True, conn: Any = None) -> AsyncIterator[Commit]:
        """One versioned write of a step, in one transaction: the state (optimistic: ``Conflict``
        when another writer stored first), then whatever the caller writes through ``tx.conn``,
        then (``project``) the task projection, SLA clock, timeline and timer jobs, the connector
        records of ``context`` and (``audit_step``) the audit entries; after the transaction
        commits, live listeners are told (``publish``) and the BPMN messages the step threw are
        dispatched. ``conn``: write inside the caller's transaction instead (the caller commits and
        publishes; a worker job). Task operations, 补正, migration, timers and messages all change cases this way."""
        now = self.deps.clock()
        if conn is not None:  # inside the caller's transaction (a worker job): the caller publishes
            tx = Commit(self, conn, now, case, workflow, bundle, step)
            tx.version = await self._store(conn, case, workflow, now)
            yield tx
            await self._finish_commit(tx, case, workflow, step, context, project, audit_step)
            return
        async with in_transaction() as own:
            tx = Commit(self, own, now, case, workflow, bundle, step)
            tx.version = await self._store(own, case, workflow, now)
            yield tx
            await self._finish_commit(tx, case, workflow, step, context, project, audit_step)
        if publish:
            await self._published(case.id, workflow, step)

    async def _finish_commit(self, tx: Commit, case: Case, workflow: BpmnWorkflow, step: Step,
                             context: ConnectorContext | None, project: bool, audit_step: bool) -> None:
        conn, now = tx.conn, tx.now
        if project:
            await tx.project()
        records = list(context.records) if context is not None else []
        if context is not None:
            await self._write_records(conn, case.id, context)
        await self.run_step_hooks(conn, [self._step_write(case, workflow, step, records)], now)
        if audit_step:
            await self._audit(conn, case.case_no, step, records, workflow, now)

    async def run_step_hooks(self, conn: Any, writes: list[StepWrite], now: datetime) -> None:
        """Give the step hooks (``EngineDeps.step_hooks``) what a step wrote, inside its transaction
        ``conn``: ``commit``, ``start_case`` and timers call it; so do writes that change a case
        without stepping its workflow (a 补正 request, an SLA job, a 催办)."""
        if writes:
            for hook in self.deps.step_hooks:
                await hook(conn, writes, now)

    def _step_write(self, case: Case, workflow: BpmnWorkflow, step: Step,
                    records: list[tuple[str, dict[str, Any]]]) -> StepWrite:
        return StepWrite(case=case, status=_status(workflow), data=current_data(workflow) if self.deps.step_hooks else None,
                         step=step, records=records, new_tasks=list(step.new_tasks))

    async def anonymise(self, case: Case, now: datetime, actor: str) -> bool:
        """Rewrite a finished case without personal data (retention); False when it changed meanwhile."""
        from engine.kernel.anonymise import anonymise_case

        return await anonymise_case(self, case, now, actor)

    def result(self, case: Case, workflow: BpmnWorkflow, version: int, bundle: ProcessBundle) -> CaseResult:
        """What a step returns to its caller: status, version, data and the ready human tasks."""
        return self._result(case.id, case.case_no, workflow, version, bundle)

    def _script_engine(self, context: ConnectorContext, isolated: bool = True) -> PythonScriptEngine:
        connectors = self.deps.connectors

        policy_of = self.deps.connector_policy

        def handler(name: str, params: dict[str, Any], data: dict[str, Any]) -> Any:
            policy = policy_of(context.service) if policy_of is not None else None
            if policy is not None:  # refused before the connector runs: nothing read, nothing issued
                check_call(policy, name, params, data)
            return connectors.call(name, params, context)

        if isolated:
            return self.deps.script_engine_factory(service_handler=handler, isolated=True)
        return self.deps.script_engine_factory(service_handler=handler)

    async def _step(self, func: Callable[..., None], *args: Any) -> None:
        """Run synchronous engine work; off the event loop when connectors may block (HTTP)."""
        if self.deps.offload_steps:
            await asyncio.to_thread(func, *args)
        else:
            func(*args)

    def _run_task_and_advance(self, task: Any, workflow: BpmnWorkflow, step: Step) -> None:
        try:
            task.run()
        except GovflowError:
            raise
        except Exception as exc:  # Spiff raises bare Exception too (e.g. an invalid timer duration)
            raise ScriptError(describe_run_error(exc)) from None
        self._advance(workflow, step)

    def _advance(self, workflow: BpmnWorkflow, step: Step) -> None:
        """Run engine steps until the workflow waits; collect timeline entries on the way."""

        def did_complete(task: Any) -> None:
            spec = task.task_spec
            if spec.__class__.__name__ in TIMELINE_SPECS and not spec.manual:
                step.events.append({"kind": "step_done", "task_id": str(task.id),
                                    "task_name": spec.bpmn_name or spec.bpmn_id or spec.name})
            decision = task.data.get("decision") if isinstance(task.data, dict) else None
            if isinstance(decision, dict) and "outcome" in decision:
                before = task.parent.data.get("decision") if task.parent is not None else None
                if before != decision:  # this task made (or changed) the decision
                    step.decisions.append({"task": spec.bpmn_id or spec.name, **{
                        k: decision[k] for k in ("outcome", "rule", "reason", "table", "inputs") if k in decision}})

        try:
            workflow.refresh_timers()
            workflow.do_engine_steps(did_complete_task=did_complete)
        except GovflowError:
            raise
        except Exception as exc:  # Spiff raises bare Exception too (e.g. an invalid timer duration)
            raise ScriptError(describe_run_error(exc)) from None
        if workflow.bpmn_events:  # messages for other cases leave with this step, never with the state
            step.thrown.extend(thrown_messages(workflow))
        if workflow.completed:
            step.events.append({"kind": "case_completed"})

    async def _published(self, case_id: int, workflow: BpmnWorkflow, step: Step) -> None:
        await self.publish_status(case_id, _status(workflow), [e["kind"] for e in step.events])
        if step.sent_messages:  # BPMN messages the step threw: to the cases waiting for them
            sent, step.sent_messages = step.sent_messages, []
            await self.messages.dispatch_ids(sent)

    async def publish_status(self, case_id: int, status: str, kinds: list[str]) -> None:
        """Tell live listeners (SSE) a change committed; a broken channel never fails the change."""
        if self.deps.publish is None:
            return
        try:
            await self.deps.publish(case_id, status, kinds)
        except Exception:  # noqa: BLE001 - status push is best effort; the state is committed
            import logging

            logging.getLogger("govflow.engine").warning("publish failed for case %s", case_id, exc_info=True)

    async def _audit(self, conn: Any, case_no: str, step: Step, records: list[tuple[str, dict[str, Any]]],
                     workflow: BpmnWorkflow, now: datetime) -> None:
        """Chain the step's accountable actions (task actions, decisions, certificates, personal-data
        reads); the last write of the step's transaction (``engine.accountability.audit`` holds the head lock)."""
        await audit.append(conn, audit.step_entries(case_no, step.events, records, step.decisions,
                                                    _status(workflow)), now=now)

    async def _write_records(self, conn: Any, case_id: int, context: ConnectorContext) -> None:
        for kind, payload in context.records:
            writer = self.deps.record_writers.get(kind)
            if writer is None:
                raise ModelError(f"no writer registered for connector record kind {kind!r}")
            await writer(conn, case_id, {**payload, "case_no": payload.get("case_no") or context.case_no})
        context.records.clear()

    async def _store(self, conn: Any, case: Case, workflow: BpmnWorkflow, now: datetime) -> int:
        version = case.version + 1
        updated = await Case.filter(id=case.id, version=case.version).using_db(conn).update(
            state=self.deps.serializer.dump(workflow), summary=self.summary(workflow), version=version, **self.result_columns(workflow),
            status=_status(workflow), updated_at=now, completed_at=now if workflow.completed else None,
        )
        if updated == 0:
            raise Conflict("办件已被他人更新，请刷新后重试")
        return version

    def summary(self, workflow: BpmnWorkflow) -> str:
        """The sealed summary stored with the state (``cases.summary``, ``engine.kernel.summary``)."""
        return self.deps.serializer.dump_summary(summary_of(current_data(workflow)))

    @staticmethod
    def result_columns(workflow: BpmnWorkflow) -> dict[str, str | None]:
        """``outcome`` and ``decided_by`` (auto | officer) in plain columns for the statistics."""
        return result_columns(current_data(workflow))

    async def _write_side_effects(self, conn: Any, case: Case, workflow: BpmnWorkflow, bundle: ProcessBundle,
                                  step: Step, now: datetime, new_case: bool = False) -> None:
        await self._write_side_effects_many(conn, [(case, workflow, bundle, step)], now, new_case)

    async def _write_side_effects_many(self, conn: Any, items: list[tuple[Case, BpmnWorkflow, ProcessBundle, Step]],
                                       now: datetime, new_case: bool = False) -> None:
        """The task projection, SLA clock, timeline and timer jobs of the cases just stepped — with
        one query per kind of row for all of them (a timer batch steps many cases at once)."""
        ids = [case.id for case, *_ in items]
        ready_by_case = {case.id: self._ready_human_tasks(workflow, bundle) for case, workflow, bundle, _ in items}
        if not new_case:  # held tasks (``waiting``: a generic 补正 is open) are still the workflow's
            open_rows = await HumanTask.filter(case_id__in=ids, kind="bpmn",
                                               state__in=(*OPEN_TASK_STATES, HELD_STATE)).using_db(conn)
            gone = [row.id for row in open_rows if str(row.id) not in ready_by_case[row.case_id]]  # type: ignore[attr-defined]
            if gone:
                await HumanTask.filter(id__in=gone).using_db(conn).update(state="cancelled", completed_at=now)
                await HumanTask.filter(case_id__in=ids, kind="supplement", state__in=OPEN_TASK_STATES,
                                       task_spec__in=[f"supplement:{g}" for g in gone]).using_db(conn).update(
                    state="cancelled", completed_at=now)
            known = {str(row.id) for row in open_rows}
            ended = [case.id for case, workflow, *_ in items if workflow.completed]
            if ended:  # a finished case leaves no side task (加签, 补正) that could never be done
                await HumanTask.filter(case_id__in=ended, kind__in=SIDE_TASK_KINDS,
                                       state__in=(*OPEN_TASK_STATES, "pending")).using_db(conn).update(
                    state="cancelled", completed_at=now)
        else:
            known = set()
        await sync_subscriptions(conn, self, items, now, new_case)  # processes with messages only
        new_tasks: list[HumanTask] = []
        events: list[tuple[Any, ...]] = []  # timeline rows, in _EVENT_COLUMNS order
        for case, workflow, _bundle, step in items:
            ready = ready_by_case[case.id]
            sla_changes = await case_sla.on_save(
                conn, case.id, lanes_waiting=[t.lane for t in ready.values()],
                completed=workflow.completed, due_at=case.due_at, paused_at=case.paused_at,
                calendar=self.deps.calendar, now=now)
            if sla_changes:
                await Case.filter(id=case.id).using_db(conn).update(**sla_changes)
                for key, value in sla_changes.items():
                    setattr(case, key, value)
            deadlines = _task_deadlines(workflow)  # an interrupting boundary timer ends the task earlier
            new_tasks.extend(
                HumanTask(id=UUID(t.id), case_id=case.id, task_spec=t.task_spec, name=t.name, lane=t.lane,
                          department=t.department, form_key=t.form_key, state="ready", created_at=now,
                          due_at=_earliest(case.due_at, deadlines.get(key)))
                for key, t in ready.items() if key not in known)
            if sla_changes.get("due_at") is not None:  # the clock resumed: open tasks got the case's new due
                for key in set(ready) & known & set(deadlines):
                    await HumanTask.filter(id=UUID(key)).using_db(conn).update(
                        due_at=_earliest(case.due_at, deadlines[key]))
            for event in workflow.get_events():  # outbox: stored with the state, published later
                step.events.append({"kind": "bpmn_event", "published": False, "detail": {
                    "name": event.event_definition.name, "type": event.event_definition.__class__.__name__,
                    "payload": _jsonable(event.payload)}})
            events.extend((case.id, e["kind"], e.get("task_id"), e.get("task_name"), e.get("actor"),
                           e.get("department"), e.get("detail"), e.get("published", True), now)
                          for e in step.events)
        if new_tasks:
            await HumanTask.bulk_create(new_tasks, using_db=conn)
            for case, _workflow, _bundle, step in items:
                step.new_tasks.extend(t for t in new_tasks if t.case_id == case.id)  # type: ignore[attr-defined]
        await insert_rows(conn, CaseEvent, _EVENT_COLUMNS, events)  # one statement, no instance per row
        await self._sync_timer_jobs(conn, [(case.id, workflow) for case, workflow, *_ in items], new_case)

    async def _sync_timer_jobs(self, conn: Any, items: list[tuple[int, BpmnWorkflow]], new_case: bool) -> None:
        """Pending timer jobs mirror the waiting timers of each case's workflow."""
        waiting = {case_id: dict(_waiting_timers(workflow)) for case_id, workflow in items}
        pending: list[Job] = [] if new_case else await Job.filter(
            case_id__in=list(waiting), kind="timer", status="pending").using_db(conn)
        keep: set[tuple[int, str | None]] = set()
        stale = []
        for job in pending:
            due = waiting[job.case_id].get(job.task_id or "")  # type: ignore[attr-defined]
            if due is not None and abs((job.due_at - due).total_seconds()) < 0.001:
                keep.add((job.case_id, job.task_id))  # type: ignore[attr-defined]
            else:
                stale.append(job.id)
        if stale:
            await Job.filter(id__in=stale).using_db(conn).update(status="cancelled")
        new_jobs = [Job(kind="timer", case_id=case_id, task_id=task_id, due_at=due, status="pending")
                    for case_id, timers in waiting.items() for task_id, due in timers.items()
                    if (case_id, task_id) not in keep]
        if new_jobs:
            await Job.bulk_create(new_jobs, using_db=conn)

    def _ready_human_tasks(self, workflow: BpmnWorkflow, bundle: ProcessBundle) -> dict[str, TaskView]:
        views: dict[str, TaskView] = {}
        for task in workflow.get_tasks(state=TaskState.READY, manual=True):
            spec = task.task_spec
            lane = getattr(spec, "lane", None)
            views[str(task.id)] = TaskView(
                id=str(task.id), task_spec=spec.name, name=spec.bpmn_name or spec.name, lane=lane,
                department=self._lane_to_dept.get(lane, lane) if lane else None,
                form_key=bundle.forms.get(spec.name),
            )
        return views

    def _result(self, case_id: int, case_no: str, workflow: BpmnWorkflow, version: int,
                bundle: ProcessBundle) -> CaseResult:
        return CaseResult(id=case_id, case_no=case_no, status=_status(workflow), version=version,
                          data=current_data(workflow),
                          ready_tasks=list(self._ready_human_tasks(workflow, bundle).values()))


def current_data(workflow: BpmnWorkflow) -> dict[str, Any]:
    """Data of a finished workflow; while it runs, the data of the human task now waiting
    (or of the most recently completed task when none waits)."""
    if workflow.completed:
        return dict(workflow.data)
    ready = workflow.get_tasks(state=TaskState.READY, manual=True)
    if ready:
        return dict(ready[0].data)
    last = workflow.last_task
    return dict(last.data) if last is not None else dict(workflow.task_tree.data)


def _waiting_timers(workflow: BpmnWorkflow) -> Iterable[tuple[str, datetime]]:
    for task in list(workflow.event_manager.tasks.values()):
        definition = getattr(task.task_spec, "event_definition", None)
        if not isinstance(definition, TimerEventDefinition) or task.state != TaskState.WAITING:
            continue
        value = definition.details(task).value
        if isinstance(value, dict):
            value = value.get("next")
        if not value:
            continue
        try:
            due = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            continue
        if due.tzinfo is None:
            due = due.replace(tzinfo=timezone.utc)
        yield str(task.id), due


def _task_deadlines(workflow: BpmnWorkflow) -> dict[str, datetime]:
    """Ready human task id -> due time of the earliest interrupting boundary timer attached to it
    (差评回访 within 1 working day while the case has 15): the task's own deadline."""
    timers = dict(_waiting_timers(workflow))
    found: dict[str, datetime] = {}
    if not timers:
        return found
    for task in workflow.get_tasks(state=TaskState.READY, manual=True):
        split = task.parent
        if split is None or split.task_spec.__class__.__name__ != "BoundaryEventSplit":
            continue
        dues = [timers[str(c.id)] for c in split.children
                if str(c.id) in timers and getattr(c.task_spec, "cancel_activity", False)]
        if dues:
            found[str(task.id)] = min(dues)
    return found


def _earliest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _status(workflow: BpmnWorkflow) -> str:
    if workflow.completed:
        return "completed" if workflow.success else "failed"
    return "running"


def as_uuid(value: str | UUID) -> UUID:
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        raise NotFound("任务不存在") from None


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


__all__ = ["CaseEngine", "Commit", "EngineDeps", "CaseResult", "Step", "StepWrite", "TaskView", "as_uuid", "current_data", "ModelError"]
