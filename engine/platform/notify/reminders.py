"""催办 (urging a case along) by a supervisor or by the applicant: a ``urged`` timeline entry and
messages to whoever holds the case, in one transaction; once a working day per case and kind of
urger (``UrgeTooSoon`` otherwise)."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Any

from tortoise.transactions import in_transaction

from engine.errors import Conflict, NotFound, RateLimited
from engine.kernel.cases import CaseEngine, Step, StepWrite
from engine.kernel.sla import CST
from engine.store.models import Case, CaseEvent

URGERS = ("citizen", "supervisor")


class UrgeTooSoon(RateLimited):
    code = "urge_too_soon"
    default_message = "今天已催办过该办件，请下一个工作日再催办"


class CaseNotRunning(Conflict):
    code = "case_not_running"
    default_message = "办件已办结或已终止，无需催办"


def working_day_start(calendar: Any, now: datetime) -> datetime:
    """Midnight (China time) of the working day ``now`` falls in — the last one, on a day off."""
    day = now.astimezone(CST).date()
    for _ in range(40):
        if calendar.is_working_day(day):
            break
        day -= timedelta(days=1)
    return datetime.combine(day, time(0), CST)


def next_working_day_start(calendar: Any, now: datetime) -> datetime:
    day = now.astimezone(CST).date() + timedelta(days=1)
    for _ in range(40):
        if calendar.is_working_day(day):
            break
        day += timedelta(days=1)
    return datetime.combine(day, time(0), CST)


async def urge(engine: CaseEngine, case_id: int, *, by: str, actor: str, sender_name: str,
               reason: str | None = None) -> CaseEvent:
    """Urge a running case: officers holding it get a ``urged`` message (the console bell)."""
    if by not in URGERS:
        raise ValueError(f"urger must be one of {URGERS}")
    now = engine.deps.clock()
    calendar = engine.deps.calendar
    since = working_day_start(calendar, now).astimezone(timezone.utc)  # SQLite compares the stored text
    async with in_transaction() as conn:
        query = Case.filter(id=case_id).using_db(conn)
        if conn.capabilities.dialect == "postgres":
            query = query.select_for_update()  # two urges at once: the second waits and sees the first
        case = await query.first()
        if case is None:
            raise NotFound("办件不存在")
        if case.status != "running":
            raise CaseNotRunning()
        earlier = await CaseEvent.filter(case_id=case_id, kind="urged", created_at__gte=since).using_db(conn)
        if any((e.detail or {}).get("by") == by for e in earlier):
            raise UrgeTooSoon(retry_after=(next_working_day_start(calendar, now) - now).total_seconds())
        detail = {"by": by, "reason": reason or "请尽快办理", "sender_name": sender_name}
        event = await CaseEvent.create(case_id=case_id, kind="urged", actor=actor, detail=detail,
                                       created_at=now, using_db=conn)
        step = Step(events=[{"kind": "urged", "actor": actor, "detail": detail}])
        await engine.run_step_hooks(conn, [StepWrite(case=case, status=case.status, data=None, step=step)], now)
    return event


__all__ = ["CaseNotRunning", "URGERS", "UrgeTooSoon", "next_working_day_start", "urge", "working_day_start"]
