"""Working-day calendar and SLA clocks (warning, escalation, pause during 补正) with an injected clock."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import chinese_calendar
import pytest

from engine import build_engine
from engine.kernel.jobs import JobRunner
from engine.kernel.sla import CST, WorkingCalendar, plan, resume
from engine.store.models import Case, CaseEvent, HumanTask, Job
from tests.conftest import model_files


def cst(*args: int) -> datetime:
    return datetime(*args, tzinfo=CST)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_statutory_holidays_and_make_up_days_follow_chinese_calendar() -> None:
    calendar = WorkingCalendar()
    assert not calendar.is_working_day(date(2026, 10, 1))  # National Day
    assert not calendar.is_working_day(date(2026, 11, 28))  # a Saturday
    assert calendar.is_working_day(date(2026, 11, 30))
    make_up = [d for d in (date(2026, 1, 1) + timedelta(days=i) for i in range(365))
               if d.weekday() >= 5 and chinese_calendar.is_workday(d)]
    assert make_up, "2026 has weekend make-up working days (调休)"
    assert all(calendar.is_working_day(d) for d in make_up)


def test_years_beyond_the_package_fall_back_to_weekdays_plus_overrides(tmp_path: Path) -> None:
    overrides = tmp_path / "calendar.yaml"
    overrides.write_text("holidays: [2027-10-01]\nworkdays: [2027-10-09]\n", encoding="utf-8")
    calendar = WorkingCalendar.load(overrides)
    assert not calendar.covers(date(2027, 3, 1)) and calendar.covers(date(2026, 3, 2))
    assert calendar.is_working_day(date(2027, 3, 1)) and not calendar.is_working_day(date(2027, 3, 6))
    assert not calendar.is_working_day(date(2027, 10, 1)) and calendar.is_working_day(date(2027, 10, 9))


def test_promised_days_end_at_the_end_of_the_nth_working_day() -> None:
    calendar = WorkingCalendar()
    friday = cst(2026, 11, 27, 10, 0)
    assert calendar.due_after_working_days(friday, 1) == cst(2026, 12, 1, 0, 0).astimezone(timezone.utc)
    assert calendar.due_after_working_days(friday, 5) == cst(2026, 12, 5, 0, 0).astimezone(timezone.utc)
    before_holiday = cst(2026, 9, 30, 16, 0)  # the National Day week is skipped
    due = calendar.due_after_working_days(before_holiday, 1).astimezone(CST)
    assert due.date() > date(2026, 10, 7) and calendar.is_working_day(due.date() - timedelta(days=1))


def test_working_time_skips_weekends_and_advance_inverts_it() -> None:
    calendar = WorkingCalendar()
    friday_noon, monday_noon = cst(2026, 11, 27, 12), cst(2026, 11, 30, 12)
    assert calendar.working_seconds(friday_noon, monday_noon) == 24 * 3600
    assert calendar.advance(friday_noon, 24 * 3600) == monday_noon
    sla = plan(calendar, friday_noon, 5)
    total = calendar.working_seconds(friday_noon, sla.due_at)
    assert calendar.working_seconds(friday_noon, sla.warn_at) == pytest.approx(total * 0.8)
    # a pause over a weekend costs only its working minute; the due time (end of Friday 12-04)
    # moves one working minute on, which is Monday 00:01
    assert sla.due_at == cst(2026, 12, 5, 0, 0)
    assert resume(calendar, sla.due_at, friday_noon.replace(hour=23, minute=59), cst(2026, 11, 30, 0)) \
        == cst(2026, 12, 7, 0, 1)
    assert resume(calendar, sla.due_at, cst(2026, 11, 30, 9), cst(2026, 12, 2, 9)) == \
        calendar.advance(sla.due_at, 2 * 86400)


async def test_case_sla_warns_then_escalates_to_the_supervisor(db: str, settings) -> None:
    clock = Clock(cst(2026, 11, 27, 10, 0))
    engine = build_engine(settings, deps_overrides={"clock": clock})
    definition = await engine.deploy(model_files("supplement"))
    started = await engine.start_case(definition, service="demo", sla_working_days=1)
    case = await Case.get(id=started.id)
    assert case.due_at == cst(2026, 12, 1, 0, 0)
    [task] = await HumanTask.filter(case_id=case.id)
    assert task.due_at == case.due_at
    warning, escalation = await Job.filter(case_id=case.id).order_by("due_at")
    assert (warning.kind, escalation.kind) == ("sla_warning", "sla_escalation")
    runner = JobRunner(engine)
    assert await runner.run_due() == 0
    clock.now = warning.due_at + timedelta(seconds=1)
    assert await runner.run_due() == 1
    assert await CaseEvent.filter(case_id=case.id, kind="sla_warning").count() == 1
    clock.now = case.due_at + timedelta(seconds=1)
    assert await runner.run_due() == 1 and await runner.run_due() == 0
    [escalated] = await HumanTask.filter(case_id=case.id, kind="escalation")
    assert escalated.department == "supervisor" and escalated.state == "ready" and escalated.name == "超期督办"


async def test_clock_pauses_while_waiting_for_the_applicant(db: str, settings) -> None:
    clock = Clock(cst(2026, 11, 30, 9, 0))  # Monday
    engine = build_engine(settings, deps_overrides={"clock": clock})
    definition = await engine.deploy(model_files("supplement"))
    started = await engine.start_case(definition, service="residence", sla_working_days=5)
    original_due = (await Case.get(id=started.id)).due_at
    clock.now = cst(2026, 11, 30, 15, 0)
    returned = await engine.complete_task(started.ready_tasks[0].id, {"needs_fix": True}, actor="clerk01")
    assert [t.lane for t in returned.ready_tasks] == ["applicant"]
    case = await Case.get(id=started.id)
    assert case.paused_at == clock.now
    assert await Job.filter(case_id=case.id, status="paused").count() == 2
    clock.now = cst(2026, 12, 3, 15, 0)  # three working days later the applicant resubmits
    resumed = await engine.complete_task(returned.ready_tasks[0].id, {"photo": "new.jpg"})
    case = await Case.get(id=started.id)
    assert case.paused_at is None
    assert case.due_at == WorkingCalendar().advance(original_due, 3 * 86400)
    jobs = await Job.filter(case_id=case.id, status="pending").order_by("due_at")
    assert [j.kind for j in jobs] == ["sla_warning", "sla_escalation"] and jobs[1].due_at == case.due_at
    [review] = await HumanTask.filter(id=resumed.ready_tasks[0].id)
    assert review.due_at == case.due_at
    kinds = [e.kind for e in await CaseEvent.filter(case_id=case.id).order_by("id")]
    assert kinds.index("sla_paused") < kinds.index("sla_resumed")
    done = await engine.complete_task(resumed.ready_tasks[0].id, {"needs_fix": False})
    assert done.status == "completed"
    assert await Job.filter(case_id=case.id, status="pending").count() == 0
