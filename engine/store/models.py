"""Tortoise ORM models: definitions, cases (办件), the human-task projection, timeline, jobs.

Schema changes go through committed aerich migrations (``engine/store/migrations``).
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Department(Model):
    """A department; BPMN lanes name one by code or by Chinese name."""

    code = fields.CharField(max_length=32, primary_key=True)
    name = fields.CharField(max_length=100)

    class Meta:
        table = "departments"


class StaffUser(Model):
    """A staff account (window clerk, officer, supervisor, designer, admin)."""

    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=100)
    password_hash = fields.CharField(max_length=255)
    departments = fields.JSONField(default=list)  # department codes
    roles = fields.JSONField(default=list)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # the officer's own ID number as the same keyed hash (blind index) citizens are found by
    # (``citizens.id_hash``): never the number itself. Set, the officer is recused from cases whose
    # applicant, legal representative or subject they are (engine.workbench.assignment)
    id_hash = fields.CharField(max_length=64, null=True, db_index=True)

    class Meta:
        table = "staff_users"


class ProcessDefinition(Model):
    """An immutable, content-hashed version of one process and the files it needs."""

    id = fields.IntField(primary_key=True)
    process_id = fields.CharField(max_length=128, db_index=True)
    name = fields.CharField(max_length=200, default="")
    version = fields.IntField()
    content_hash = fields.CharField(max_length=64)
    files = fields.TextField()  # JSON object: file name -> text
    deployed_by = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # four-eyes publishing (engine.designer.review): pending | approved | rejected; whether an
    # approved version is live or superseded is computed (the newest approved and effective one is live)
    review_state = fields.CharField(max_length=16, default="approved", db_index=True)
    reviewed_by = fields.CharField(max_length=64, null=True)
    reviewed_at = fields.DatetimeField(null=True)
    review_note = fields.CharField(max_length=500, null=True)
    effective_at = fields.DatetimeField(null=True)  # approved versions become live from this time

    class Meta:
        table = "process_definitions"
        unique_together = (("process_id", "content_hash"), ("process_id", "version"))


class Case(Model):
    """A case (办件): one workflow instance and its serialized state.

    ``state`` is text on purpose (see ``engine.bpmn.serializer``); ``version`` guards every
    write: a writer that read version N may only store N+1.
    """

    id = fields.IntField(primary_key=True)
    case_no = fields.CharField(max_length=40, unique=True)
    service = fields.CharField(max_length=64, db_index=True)
    definition: fields.ForeignKeyRelation[ProcessDefinition] = fields.ForeignKeyField(
        "models.ProcessDefinition", related_name="cases", on_delete=fields.RESTRICT)
    applicant = fields.CharField(max_length=64, null=True, db_index=True)
    agent = fields.CharField(max_length=64, null=True)  # clerk or agent acting for the applicant
    channel = fields.CharField(max_length=16, default="mobile")  # mobile | window | web
    item_version = fields.CharField(max_length=32, null=True)  # service item version it started on
    status = fields.CharField(max_length=16, default="running", db_index=True)
    due_at = fields.DatetimeField(null=True)  # promised completion (SLA), paused during 补正
    paused_at = fields.DatetimeField(null=True)
    state = fields.TextField()
    # what the applicant's view needs of the state — decision and result (engine.kernel.summary) —
    # written with it and sealed like it, so reading a case never rebuilds the workflow
    summary = fields.TextField(null=True)
    # the result's outcome (approved, rejected, …) and who decided (auto | officer), plain so the
    # statistics (engine.workbench.stats) count them in SQL; not personal data
    outcome = fields.CharField(max_length=16, null=True)
    decided_by = fields.CharField(max_length=8, null=True)
    version = fields.IntField(default=1)
    error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    completed_at = fields.DatetimeField(null=True)
    # set when the retention purge anonymised the case's personal data (engine.accountability.retention)
    purged_at = fields.DatetimeField(null=True)

    class Meta:
        table = "cases"
        # (service, created_at, …): the statistics' cohort (engine.workbench.stats) read from the index
        # alone (an index-only scan: no heap row visited), so its columns are all the counts need
        indexes = (("service", "created_at", "status", "outcome", "decided_by", "due_at", "completed_at", "id"),
                   ("service", "completed_at"))


class HumanTask(Model):
    """Projection of a ready human task, rewritten at every save; inboxes query this."""

    id = fields.UUIDField(primary_key=True)  # the SpiffWorkflow task id (or a new id for side tasks)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="tasks", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=16, default="bpmn")  # bpmn | escalation (SLA side task)
    task_spec = fields.CharField(max_length=128)
    name = fields.CharField(max_length=200, default="")
    lane = fields.CharField(max_length=100, null=True)
    department = fields.CharField(max_length=32, null=True)
    form_key = fields.CharField(max_length=200, null=True)
    assignee = fields.CharField(max_length=64, null=True)
    state = fields.CharField(max_length=16, default="ready")  # ready|claimed|completed|cancelled
    created_at = fields.DatetimeField(auto_now_add=True)
    due_at = fields.DatetimeField(null=True)
    completed_at = fields.DatetimeField(null=True)
    completed_by = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "human_tasks"
        # (kind, assignee, state): the inbox's 加签 part (engine.workbench.staff._parts) reads only the few cosign rows
        indexes = (("department", "state", "due_at"), ("case_id", "state"), ("kind", "assignee", "state"))


class Delegation(Model):
    """代理: while ``starts_at <= now < ends_at`` (and not cancelled) ``delegate`` sees and handles the
    tasks ``officer`` holds, acting 代 ``officer`` (engine.workbench.delegation)."""

    id = fields.IntField(primary_key=True)
    officer = fields.CharField(max_length=64)
    delegate = fields.CharField(max_length=64)
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    reason = fields.CharField(max_length=200, null=True)
    created_by = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    cancelled_at = fields.DatetimeField(null=True)
    cancelled_by = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "delegations"
        # (delegate, ends_at): every inbox call asks "whom do I stand in for now" — a few rows per person
        indexes = (("delegate", "ends_at"), ("officer", "ends_at"))


class CaseEvent(Model):
    """The case timeline, and the outbox of BPMN events the workflow sent out."""

    id = fields.BigIntField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="events", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=32)
    task_id = fields.CharField(max_length=36, null=True)
    task_name = fields.CharField(max_length=200, null=True)
    actor = fields.CharField(max_length=64, null=True)
    department = fields.CharField(max_length=32, null=True)
    detail = fields.JSONField(null=True)
    published = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "case_events"
        # (kind, created_at, case_id): the statistics count a period's 补正 requests from the index alone
        indexes = (("case_id", "id"), ("kind", "created_at", "case_id"))


class Job(Model):
    """A durable job: a timer to fire, a warning to send. Done in the same transaction as
    the case write it causes, so it never fires twice."""

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=32)
    case: fields.ForeignKeyNullableRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="jobs", null=True, on_delete=fields.CASCADE)
    task_id = fields.CharField(max_length=36, null=True)
    due_at = fields.DatetimeField()
    status = fields.CharField(max_length=16, default="pending")  # pending|done|failed|cancelled
    attempts = fields.IntField(default=0)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    fired_at = fields.DatetimeField(null=True)

    class Meta:
        table = "jobs"
        indexes = (("status", "due_at"),)


class MessageSubscription(Model):
    """A case waiting for a BPMN message (receive task, catching message event): the message name
    and the correlation values it waits for (``engine.kernel.messages``). Rewritten with every step
    of a case whose process uses messages; delivery finds the waiting cases by ``(name, key)``."""

    id = fields.BigIntField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="message_subscriptions", on_delete=fields.CASCADE)
    task_id = fields.CharField(max_length=36)
    name = fields.CharField(max_length=200)
    correlation_key = fields.CharField(max_length=64)  # sha256 of the canonical correlation JSON
    correlation = fields.JSONField(default=dict)  # {property: value}
    created_at = fields.DatetimeField()

    class Meta:
        table = "message_subscriptions"
        indexes = (("name", "correlation_key"),)


class BpmnMessage(Model):
    """A message sent to cases — by another case (a throwing message event) or an external system
    (``POST /messages``). ``kept`` until a waiting case takes it or ``expires_at`` passes (the worker
    drops it, ``expired``); ``delivered`` once taken. ``message_id`` makes a repeated send a no-op."""

    id = fields.BigIntField(primary_key=True)
    message_id = fields.CharField(max_length=128, unique=True)
    name = fields.CharField(max_length=200)
    correlation_key = fields.CharField(max_length=64)
    correlation = fields.JSONField(default=dict)
    payload = fields.TextField()  # JSON, sealed like case state when a PII key is configured
    source = fields.CharField(max_length=128)  # case number of the sender, or system:<client>
    status = fields.CharField(max_length=16, default="kept")  # kept | delivered | expired
    delivered = fields.IntField(default=0)  # cases it was delivered to
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    delivered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "bpmn_messages"
        indexes = (("name", "correlation_key", "status"), ("status", "expires_at"))


class Evaluation(Model):
    """好差评: one rating per case after it ended. The evaluator is kept only as a keyed hash
    (confidential); a bad rating links the rectification case it opened."""

    id = fields.IntField(primary_key=True)
    case: fields.OneToOneRelation[Case] = fields.OneToOneField(
        "models.Case", related_name="evaluation", on_delete=fields.CASCADE)  # once per case
    level = fields.IntField()  # 1 非常满意 … 5 非常不满意
    comment = fields.TextField(default="")
    evaluator_hash = fields.CharField(max_length=64)
    rectification_case_no = fields.CharField(max_length=40, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "evaluations"
        # the statistics count a period's ratings from the index alone (a rating follows its case)
        indexes = (("created_at", "case_id", "level"),)


class Upload(Model):
    """A stored material file (engine.platform.files): a citizen's upload, owned by them until an
    application or a 补正 attaches it to a case, or a window clerk's scan (attached at once).
    ``key`` addresses the bytes in the file store (content-addressed: rows may share a key);
    ``name`` is generated from the material name — the original file name is never kept."""

    id = fields.UUIDField(primary_key=True)
    owner = fields.CharField(max_length=64)  # citizen:<id> | staff:<username>
    case: fields.ForeignKeyNullableRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="files", null=True, on_delete=fields.CASCADE)
    material = fields.CharField(max_length=100, null=True)
    source = fields.CharField(max_length=16, default="applicant")  # applicant | window | supplement
    name = fields.CharField(max_length=120, default="")
    key = fields.CharField(max_length=80)
    content_type = fields.CharField(max_length=64)
    size = fields.IntField()
    sha256 = fields.CharField(max_length=64)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(null=True)  # unattached uploads only
    attached_at = fields.DatetimeField(null=True)

    class Meta:
        table = "uploads"
        indexes = (("owner", "case_id"), ("case_id", "material"), ("expires_at",), ("key",))
