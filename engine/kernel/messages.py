"""BPMN messages between cases, durably: subscriptions, the kept-message store and delivery.

A case waiting on a message (receive task, catching intermediate or boundary message event) is
stored with its *subscription* — the message name and the correlation values it waits for
(``message_subscriptions``, indexed by ``(name, correlation_key)``). The subscription rows are
rewritten in the transaction of every step of a case whose process uses messages, like timer jobs;
cases of processes without messages never touch these tables.

A message — thrown by another case (a message end/throw event: written in the sender's
transaction as ``pending``) or sent by an external system (``POST /messages``) — is stored once
per ``message_id`` (a repeated send is a no-op) and dispatched: every case subscribed to
``(name, correlation)`` catches it, each in its own versioned step (``CaseEngine.commit``: the
optimistic version check, audit, a ``message_received`` timeline entry). With no receiver the
message is ``kept`` for ``EngineDeps.message_keep`` (``GOVFLOW_MESSAGE_KEEP_DAYS``); when a matching
subscription appears later, the step that creates it schedules a ``message`` job and the worker
delivers the oldest kept message in the job's transaction. The worker also dispatches ``pending``
messages a crash left behind and drops expired ones.

Correlation: a message's correlation properties (``bpmn:correlationProperty`` with a retrieval
expression per message) give ``{property: value}`` on the sending side; the receiving case sets
the values it waits for with ``spiffworkflow:processVariableCorrelation`` on its catch event.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState
from tortoise.exceptions import IntegrityError

from engine.errors import Conflict, Unauthenticated, ValidationFailed
from engine.store.db import db_connection
from engine.store.models import BpmnMessage, Case, Job, MessageSubscription

if TYPE_CHECKING:
    from engine.bpmn.parser import ProcessBundle
    from engine.kernel.cases import CaseEngine

log = logging.getLogger("govflow.messages")
MESSAGE_JOB = "message"
MAX_NAME = 200
MAX_MESSAGE_ID = 128
MAX_PAYLOAD_BYTES = 256 * 1024
DELIVERY_ATTEMPTS = 3  # a concurrent step on the receiver: reload and catch again


@dataclass
class Delivery:
    """What sending one message did: to how many waiting cases it went, whether it is kept for a
    later receiver, and whether it was a repeat of a message already sent (same ``message_id``)."""

    message_id: str
    delivered: int
    kept: bool
    duplicate: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "delivered": self.delivered, "kept": self.kept,
                "duplicate": self.duplicate}


class SystemKeyInvalid(Unauthenticated):
    code = "system_key_invalid"
    default_message = "外部系统凭证无效：请在请求头 X-System-Key 中携带已配置的系统密钥"


MIN_SYSTEM_KEY = 32


class SystemKeys:
    """The external systems allowed to send messages (``GOVFLOW_SYSTEM_KEYS``: ``name=key,…``): only
    the keys' SHA-256 is kept in memory after start-up; a presented key is compared in constant time."""

    def __init__(self, clients: dict[str, str]) -> None:
        self._by_digest = {hashlib.sha256(key.encode("utf-8")).digest(): name for name, key in clients.items()}

    @classmethod
    def parse(cls, text: str) -> SystemKeys:
        clients: dict[str, str] = {}
        for item in (text or "").split(","):
            if not item.strip():
                continue
            name, sep, key = item.strip().partition("=")
            if not sep or not name.strip() or len(key.strip()) < MIN_SYSTEM_KEY:
                raise ValueError(f"GOVFLOW_SYSTEM_KEYS: 每项应为 名称=密钥，密钥至少 {MIN_SYSTEM_KEY} 个字符（{name.strip()[:40]!r}）")
            clients[name.strip()] = key.strip()
        return cls(clients)

    def authenticate(self, presented: str | None) -> str:
        """The client's actor name (``system:<name>``); ``SystemKeyInvalid`` (401) otherwise."""
        import hmac

        if not presented:
            raise SystemKeyInvalid()
        digest = hashlib.sha256(presented.strip().encode("utf-8")).digest()
        found = None
        for known, name in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                found = name
        if found is None:
            raise SystemKeyInvalid()
        return f"system:{found}"


# ------------------------------------------------------------------ pure helpers (no database)
def correlation_key(correlation: dict[str, Any]) -> str:
    """The indexed form of a correlation: sha256 of its canonical JSON (sorted keys)."""
    text = json.dumps(correlation or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def uses_messages(bundle: ProcessBundle) -> bool:
    """Whether any task of the bundle throws or catches a BPMN message (cached on the bundle)."""
    cached = getattr(bundle, "_uses_messages", None)
    if cached is None:
        cached = any(isinstance(getattr(ts, "event_definition", None), MessageEventDefinition)
                     for spec in bundle.all_specs.values() for ts in spec.task_specs.values())
        bundle._uses_messages = cached  # type: ignore[attr-defined]
    return bool(cached)


def _keys_and_properties(definition: MessageEventDefinition) -> tuple[set[str], set[str]]:
    props = [*definition.correlation_properties, *getattr(definition, "process_correlations", [])]
    return {k for p in props for k in p.correlation_keys}, {p.name for p in props}


def waiting_subscriptions(workflow: BpmnWorkflow) -> dict[str, tuple[str, dict[str, Any]]]:
    """Task id -> (message name, {property: value}) for every message the workflow now waits for."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for task in list(workflow.event_manager.tasks.values()):
        definition = getattr(task.task_spec, "event_definition", None)
        if not isinstance(definition, MessageEventDefinition) or task.state != TaskState.WAITING:
            continue
        keys, props = _keys_and_properties(definition)
        correlations = task.workflow.correlations or {}
        flat = {prop: value for key in sorted(keys) for prop, value in (correlations.get(key) or {}).items()
                if prop in props}
        found[str(task.id)] = (definition.name, flat)
    return found


def thrown_messages(workflow: BpmnWorkflow) -> list[tuple[str, dict[str, Any], Any]]:
    """Take the message events a step threw that no task of its own workflow caught out of
    ``workflow.bpmn_events`` (other events stay for the timeline): (name, {property: value}, payload)."""
    out = []
    events: Iterable[BpmnEvent] = workflow.bpmn_events
    workflow.bpmn_events = [e for e in events if not isinstance(e.event_definition, MessageEventDefinition)]
    for event in events:
        if isinstance(event.event_definition, MessageEventDefinition):
            flat = {prop: value for values in (event.correlations or {}).values() for prop, value in values.items()}
            out.append((event.event_definition.name, flat, event.payload))
    return out


def catch(workflow: BpmnWorkflow, task_id: str, name: str, payload: Any,
          correlation: dict[str, Any]) -> Any | None:
    """Let the waiting task ``task_id`` catch message ``name``: the task found by the stored
    subscription (the index already matched the correlation), so Spiff's own matching is not
    repeated. Returns the task, or ``None`` when it no longer waits for this message."""
    try:
        task = workflow.get_task_from_id(UUID(task_id))
    except (ValueError, KeyError):
        return None
    definition = getattr(task.task_spec, "event_definition", None) if task is not None else None
    if (task is None or task.state != TaskState.WAITING or not isinstance(definition, MessageEventDefinition)
            or definition.name != name):
        return None
    keys, props = _keys_and_properties(definition)
    correlations = {key: {p: v for p, v in correlation.items() if p in props} for key in keys}
    event = BpmnEvent(definition, payload=payload, correlations=correlations)
    task.workflow.correlations.update(correlations)
    definition.update_internal_data(task, event)  # the payload, copied into task data when it runs
    task._set_internal_data(event_fired=True)
    task.task_spec._update(task)
    return task


def check_message(name: Any, correlation: Any, payload: Any, message_id: Any) -> tuple[str, dict[str, Any], Any,
                                                                                       str | None]:
    """Validate an incoming message (``POST /messages``), with Chinese field messages."""
    problems: dict[str, str] = {}
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        problems["name"] = f"应为不超过 {MAX_NAME} 个字符的消息名称"
    if correlation is None:
        correlation = {}
    if not isinstance(correlation, dict) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in correlation.items()):
        problems["correlation"] = "应为对象：关联属性名 → 文本或数字"
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        problems["payload"] = "应为对象"
    elif len(json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")) > MAX_PAYLOAD_BYTES:
        problems["payload"] = f"不能超过 {MAX_PAYLOAD_BYTES // 1024} KB"
    if message_id is not None and (not isinstance(message_id, str) or not message_id.strip()
                                   or len(message_id) > MAX_MESSAGE_ID):
        problems["id"] = f"应为不超过 {MAX_MESSAGE_ID} 个字符的文本（幂等键）"
    if problems:
        raise ValidationFailed("消息格式不正确", fields=problems)
    return name.strip(), correlation, payload, message_id.strip() if isinstance(message_id, str) else None


# ------------------------------------------------------------------ in a step's transaction
async def sync_subscriptions(conn: Any, engine: CaseEngine, items: list[tuple[Case, BpmnWorkflow, ProcessBundle, Any]],
                             now: datetime, new_case: bool) -> None:
    """Mirror the messages each case waits for into ``message_subscriptions``, store what the step
    threw as ``pending`` messages (dispatched after the commit), and schedule a ``message`` job for
    every new subscription a kept message already matches. Cases of processes without messages:
    nothing, not even a query."""
    relevant = [(case, workflow, step) for case, workflow, bundle, step in items if uses_messages(bundle)]
    if not relevant:
        return
    ids = [case.id for case, *_ in relevant]
    existing = [] if new_case else await MessageSubscription.filter(case_id__in=ids).using_db(conn)
    have = {(row.case_id, row.task_id, row.name, row.correlation_key): row.id for row in existing}  # type: ignore[attr-defined]
    keep: set[int] = set()
    fresh: list[MessageSubscription] = []
    for case, workflow, step in relevant:
        for task_id, (name, correlation) in waiting_subscriptions(workflow).items():
            key = correlation_key(correlation)
            known = have.get((case.id, task_id, name, key))
            if known is not None:
                keep.add(known)
            else:
                fresh.append(MessageSubscription(case_id=case.id, task_id=task_id, name=name, correlation_key=key,
                                                 correlation=correlation, created_at=now))
        thrown, step.thrown = list(step.thrown), []
        for index, (name, correlation, payload) in enumerate(thrown):
            message = await BpmnMessage.create(
                message_id=f"case:{case.case_no}:{case.version + 1}:{index}:{secrets.token_hex(4)}", name=name,
                correlation_key=correlation_key(correlation), correlation=correlation,
                payload=engine.deps.serializer.dump_payload(payload), source=case.case_no, status="pending",
                created_at=now, expires_at=now + engine.deps.message_keep, using_db=conn)
            step.events.append({"kind": "message_sent", "actor": "system", "detail": {
                "message": name, "message_id": message.message_id, "correlation": correlation}})
            step.sent_messages.append(message.id)
    stale = [row_id for row_id in have.values() if row_id not in keep]
    if stale:
        await MessageSubscription.filter(id__in=stale).using_db(conn).delete()
    if not fresh:
        return
    await MessageSubscription.bulk_create(fresh, using_db=conn)
    jobs = []
    for sub in fresh:
        if await BpmnMessage.filter(name=sub.name, correlation_key=sub.correlation_key, status="kept",
                                    expires_at__gt=now).using_db(conn).exists():
            jobs.append(Job(kind=MESSAGE_JOB, case_id=sub.case_id, task_id=sub.task_id, due_at=now, status="pending"))  # type: ignore[attr-defined]
    if jobs:
        await Job.bulk_create(jobs, using_db=conn)


# ------------------------------------------------------------------ the mailbox
class Mailbox:
    """Send messages to waiting cases and run the worker's message jobs (``CaseEngine.messages``)."""

    def __init__(self, engine: CaseEngine) -> None:
        self.engine = engine

    async def send(self, name: str, correlation: dict[str, Any], payload: Any, *, source: str,
                   message_id: str | None = None) -> Delivery:
        """Store a message once per ``message_id`` and deliver it to every case waiting for it now;
        kept for a later receiver when none waits."""
        now = self.engine.deps.clock()
        message_id = message_id or f"auto:{secrets.token_hex(16)}"
        try:
            row = await BpmnMessage.create(
                message_id=message_id, name=name, correlation_key=correlation_key(correlation),
                correlation=correlation, payload=self.engine.deps.serializer.dump_payload(payload),
                source=source[:128], status="pending", created_at=now, expires_at=now + self.engine.deps.message_keep)
        except IntegrityError:
            row = await BpmnMessage.get_or_none(message_id=message_id)
            if row is None:
                raise Conflict("消息正在处理，请稍后重试") from None
            return Delivery(message_id, row.delivered, row.status == "kept", duplicate=True)
        return await self.dispatch(row)

    async def dispatch(self, row: BpmnMessage) -> Delivery:
        """Deliver a ``pending`` message to the cases subscribed now; then mark it delivered or kept."""
        subs = await MessageSubscription.filter(name=row.name, correlation_key=row.correlation_key).order_by("id")
        delivered = 0
        seen: set[tuple[int, str]] = set()
        for sub in subs:
            if (sub.case_id, sub.task_id) in seen:  # type: ignore[attr-defined]
                continue
            seen.add((sub.case_id, sub.task_id))  # type: ignore[attr-defined]
            if await self._deliver_retrying(sub.case_id, sub.task_id, row):  # type: ignore[attr-defined]
                delivered += 1
        if not delivered:  # nobody waits: a process whose message start event catches it starts a case
            delivered = await self._start_cases(row)
        now = self.engine.deps.clock()
        status = "delivered" if delivered else "kept"
        await BpmnMessage.filter(id=row.id, status="pending").update(
            status=status, delivered=delivered, delivered_at=now if delivered else None)
        if not delivered:  # a subscription may have appeared while it was pending: its job finds it now
            await self._schedule_for_kept(row)
        return Delivery(row.message_id, delivered, not delivered)

    async def _start_cases(self, row: BpmnMessage) -> int:
        """Start a case of every live process whose message start event catches this message (no
        case was waiting for it): e.g. 企业开办一件事 asks psb's seal-engraving process for a seal."""
        from engine.store.models import ProcessDefinition

        engine, started = self.engine, 0
        process_ids = await ProcessDefinition.filter(review_state="approved").distinct().values_list(
            "process_id", flat=True)
        for process_id in sorted(set(process_ids)):
            try:
                definition = await engine.live_definition(str(process_id))
            except Exception:  # noqa: BLE001 - not live yet: no case to start
                continue
            bundle = await engine.bundle_for(definition.id)
            if not any(isinstance(getattr(ts, "event_definition", None), MessageEventDefinition)
                       and ts.event_definition.name == row.name for ts in bundle.spec.bpmn_start_events):
                continue
            await engine.start_case(definition, service=str(process_id).replace("_", "-"), actor=row.source,
                                    channel="system", message=row)
            started += 1
        return started

    async def start_with(self, workflow: BpmnWorkflow, row: BpmnMessage, step: Any) -> None:
        """A new case's message start event catches ``row`` and the case runs on (``start_case``)."""
        waiting = waiting_subscriptions(workflow)
        for task_id, (name, _correlation) in waiting.items():
            if name != row.name:
                continue
            payload = self.engine.deps.serializer.load_payload(row.payload)
            task = catch(workflow, task_id, row.name, payload, row.correlation or {})
            if task is None:
                continue
            spec = task.task_spec
            step.events.append({"kind": "message_received", "task_id": task_id,
                                "task_name": spec.bpmn_name or spec.bpmn_id or spec.name, "actor": row.source,
                                "detail": {"message": row.name, "message_id": row.message_id, "source": row.source,
                                           "correlation": row.correlation or {}}})
            await self.engine.advance(workflow, step)
            return

    async def _schedule_for_kept(self, row: BpmnMessage) -> None:
        subs = await MessageSubscription.filter(name=row.name, correlation_key=row.correlation_key)
        now = self.engine.deps.clock()
        for sub in subs:
            await Job.create(kind=MESSAGE_JOB, case_id=sub.case_id, task_id=sub.task_id, due_at=now)  # type: ignore[attr-defined]

    async def _deliver_retrying(self, case_id: int, task_id: str, row: BpmnMessage) -> bool:
        for _ in range(DELIVERY_ATTEMPTS):
            try:
                return await self.deliver(case_id, task_id, row)
            except Conflict:
                continue  # another step wrote the case first: reload and try again
        log.warning("message %s not delivered to case %s: the case kept changing", row.message_id, case_id)
        return False

    async def deliver(self, case_id: int, task_id: str, row: BpmnMessage, conn: Any = None) -> bool:
        """One waiting case catches the message, in one versioned step (``conn``: the caller's
        transaction, e.g. the worker's job; the caller then publishes). False when it no longer waits."""
        from engine.kernel.cases import Step
        from engine.kernel.connectors import ConnectorContext

        engine = self.engine
        context = ConnectorContext(case_no="", service="", actor=row.source, purpose="接收消息")
        case, workflow, bundle = await engine.load(case_id, conn, context=context)
        if case.status != "running":
            return False
        payload = engine.deps.serializer.load_payload(row.payload)
        task = catch(workflow, task_id, row.name, payload, row.correlation or {})
        if task is None:
            return False
        spec = task.task_spec
        step = Step(events=[{"kind": "message_received", "task_id": task_id,
                             "task_name": spec.bpmn_name or spec.bpmn_id or spec.name, "actor": row.source,
                             "detail": {"message": row.name, "message_id": row.message_id, "source": row.source,
                                        "correlation": row.correlation or {}}}])
        await engine.advance(workflow, step)
        async with engine.commit(case, workflow, bundle, step, context=context, conn=conn):
            pass
        return True

    async def run_job(self, job: Job, conn: Any) -> str | None:
        """The worker's ``message`` job: the subscribed case takes the oldest kept message that
        matches its subscription, in the job's transaction (the message row locked on PostgreSQL)."""
        sub = await MessageSubscription.filter(case_id=job.case_id, task_id=job.task_id).using_db(conn).first()  # type: ignore[attr-defined]
        await Job.filter(id=job.id).using_db(conn).update(status="done", fired_at=self.engine.deps.clock())
        if sub is None:
            return None
        now = self.engine.deps.clock()
        query = BpmnMessage.filter(name=sub.name, correlation_key=sub.correlation_key, status="kept",
                                   expires_at__gt=now).order_by("id").using_db(conn)
        if db_connection().capabilities.dialect == "postgres":
            query = query.select_for_update(skip_locked=True)
        row = await query.first()
        if row is None:
            return None
        if not await self.deliver(sub.case_id, sub.task_id, row, conn=conn):  # type: ignore[attr-defined]
            return None
        await BpmnMessage.filter(id=row.id).using_db(conn).update(status="delivered", delivered=row.delivered + 1,
                                                                  delivered_at=now)
        case = await Case.filter(id=sub.case_id).using_db(conn).first()  # type: ignore[attr-defined]
        return case.status if case is not None else None

    async def run_pending(self, limit: int = 50) -> int:
        """Worker pass: dispatch messages left ``pending`` (a crash between the sender's commit and
        its dispatch) and drop kept messages past their time. Returns how many were handled."""
        now = self.engine.deps.clock()
        expired = await BpmnMessage.filter(status="kept", expires_at__lte=now).update(status="expired")
        rows = await BpmnMessage.filter(status="pending", created_at__lte=now).order_by("id").limit(limit)
        for row in rows:
            await self.dispatch(row)
        return int(expired or 0) + len(rows)

    async def dispatch_ids(self, ids: list[int]) -> None:
        """After a sender's commit: dispatch the messages its step threw (best effort; the worker
        retries what a failure leaves pending)."""
        for row in await BpmnMessage.filter(id__in=ids, status="pending").order_by("id"):
            try:
                await self.dispatch(row)
            except Exception:  # noqa: BLE001 - the sender's step is committed; the worker dispatches later
                log.warning("dispatch of message %s failed; the worker retries", row.message_id, exc_info=True)


__all__ = ["Delivery", "Mailbox", "SystemKeyInvalid", "SystemKeys", "MESSAGE_JOB", "catch", "check_message", "correlation_key", "sync_subscriptions",
           "thrown_messages", "uses_messages", "waiting_subscriptions"]
