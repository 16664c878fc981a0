"""SLA jobs of a case: warning at 80 % of the promised time, escalation at the deadline,
paused while the case waits for the applicant (补正: a modelled step in lane
``applicant`` or an open side task there, see ``engine.kernel.supplement``) — all durable jobs in the main database."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable
from uuid import uuid4

from engine.bpmn.conventions import APPLICANT_LANES
from engine.kernel.sla import SlaPlan, WorkingCalendar, resume
from engine.store.models import Case, CaseEvent, HumanTask, Job

SLA_KINDS = ("sla_warning", "sla_escalation")
SUPERVISOR_DEPARTMENT = "supervisor"


async def schedule(conn: Any, case_id: int, sla: SlaPlan) -> None:
    await Job.bulk_create([
        Job(kind="sla_warning", case_id=case_id, due_at=sla.warn_at, status="pending"),
        Job(kind="sla_escalation", case_id=case_id, due_at=sla.due_at, status="pending"),
    ], using_db=conn)


async def on_save(conn: Any, case_id: int, *, lanes_waiting: Iterable[str | None], completed: bool,
                  due_at: datetime | None, paused_at: datetime | None, calendar: WorkingCalendar,
                  now: datetime) -> dict[str, Any]:
    """Pause, resume or close the clock after a step; returns case fields to update."""
    if due_at is None:
        return {}
    sla_jobs = Job.filter(case_id=case_id, kind__in=SLA_KINDS).using_db(conn)
    if completed:
        await sla_jobs.filter(status__in=("pending", "paused")).update(status="cancelled")
        return {}
    waiting_on_applicant = any(lane in APPLICANT_LANES for lane in lanes_waiting) or await HumanTask.filter(
        case_id=case_id, kind__not="bpmn", lane__in=sorted(APPLICANT_LANES),
        state__in=("ready", "claimed")).using_db(conn).exists()  # a generic 补正 (engine.kernel.supplement)
    if waiting_on_applicant and paused_at is None:
        await sla_jobs.filter(status="pending").update(status="paused")
        await CaseEvent.create(case_id=case_id, kind="sla_paused", detail={"due_at": due_at.isoformat()},
                               created_at=now, using_db=conn)
        return {"paused_at": now}
    if not waiting_on_applicant and paused_at is not None:
        new_due = resume(calendar, due_at, paused_at, now)
        paused_seconds = calendar.working_seconds(paused_at, now)
        for job in await sla_jobs.filter(status="paused"):
            await Job.filter(id=job.id).using_db(conn).update(
                status="pending", due_at=calendar.advance(job.due_at, paused_seconds))
        await HumanTask.filter(case_id=case_id, state__in=("ready", "claimed")).using_db(conn).update(
            due_at=new_due)
        await CaseEvent.create(case_id=case_id, kind="sla_resumed",
                               detail={"due_at": new_due.isoformat(), "paused_seconds": paused_seconds},
                               created_at=now, using_db=conn)
        return {"paused_at": None, "due_at": new_due}
    return {}


async def fire_warning(job: Job, conn: Any, now: datetime) -> bool:
    await CaseEvent.create(case_id=job.case_id, kind="sla_warning",  # type: ignore[attr-defined]
                           detail={"message": "办件即将超期（已用时限 80%）"}, created_at=now, using_db=conn)
    await Job.filter(id=job.id).using_db(conn).update(status="done", fired_at=now)
    return True


async def fire_escalation(job: Job, conn: Any, now: datetime) -> bool:
    """At the deadline the supervisor lane gets a 督办 task of its own."""
    case = await Case.filter(id=job.case_id).using_db(conn).first()  # type: ignore[attr-defined]
    if case is None or case.status != "running":
        await Job.filter(id=job.id).using_db(conn).update(status="cancelled")
        return False
    await HumanTask.create(id=uuid4(), case_id=case.id, kind="escalation", task_spec="sla_escalation",
                           name="超期督办", lane=SUPERVISOR_DEPARTMENT, department=SUPERVISOR_DEPARTMENT,
                           state="ready", created_at=now, due_at=None, using_db=conn)
    await CaseEvent.create(case_id=case.id, kind="sla_escalated", department=SUPERVISOR_DEPARTMENT,
                           detail={"message": "办件已超期，已转督办"}, created_at=now, using_db=conn)
    await Job.filter(id=job.id).using_db(conn).update(status="done", fired_at=now)
    return True
