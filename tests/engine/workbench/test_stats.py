"""The statistics' pieces that need no database: working days from the prefix sum agree with the
SLA calendar's own day-by-day count (holidays, 调休 make-up days, weekends, partial days), and the
period and department rules."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import pytest

from engine.errors import ValidationFailed
from engine.kernel.sla import CST, DAY, WorkingCalendar
from engine.workbench.stats import (
    StatsDepartmentForbidden,
    WorkingDays,
    table_rows,
    visible_departments,
    window,
)


def test_working_days_agree_with_the_calendar() -> None:
    calendar = WorkingCalendar(holidays={date(2026, 6, 3)}, workdays={date(2026, 6, 6)})
    days = WorkingDays(calendar, date(2025, 12, 31), date(2027, 1, 2))
    rng = random.Random(20)
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for _ in range(3000):
        start = base + timedelta(minutes=rng.randrange(0, 330 * 24 * 60))
        end = start + timedelta(minutes=rng.randrange(0, 30 * 24 * 60))
        expected = calendar.working_seconds(start, end) / DAY
        assert days.between(start, end) == pytest.approx(expected, abs=1e-9)
        assert days.between_epochs(start.timestamp(), end.timestamp()) == pytest.approx(expected, abs=1e-9)
    # the listed holiday (Wed 3 June) does not count, the listed make-up Saturday (6 June) does
    assert days.between(datetime(2026, 6, 2, 12, tzinfo=CST), datetime(2026, 6, 4, 12, tzinfo=CST)) == 1
    assert days.between(datetime(2026, 6, 5, 12, tzinfo=CST), datetime(2026, 6, 8, 12, tzinfo=CST)) == 2
    assert days.between(datetime(2026, 11, 16, 12, tzinfo=CST), datetime(2026, 11, 20, 12, tzinfo=CST)) == 4


def test_period_and_departments() -> None:
    today = date(2026, 12, 6)
    assert window(None, None, today) == (date(2026, 11, 7), today)
    assert window("2026-01-01", "2026-01-31", today) == (date(2026, 1, 1), date(2026, 1, 31))
    for since, until in (("2026-02-30", None), ("2026-02-01", "2026-01-01"), ("2024-01-01", "2026-01-01")):
        with pytest.raises(ValidationFailed):
            window(since, until, today)
    assert visible_departments(["admin"], [], None) is None
    assert visible_departments(["admin"], [], "psb") == {"psb"}
    assert visible_departments(["supervisor"], ["samr", "mca"], None) == {"samr", "mca"}
    with pytest.raises(StatsDepartmentForbidden):
        visible_departments(["supervisor"], ["samr"], "psb")


def test_table_rows_have_one_column_per_rating_level() -> None:
    item = {"service": "s", "service_name": "事项", "department": "d", "department_name": "部门", "received": 2,
            "completed": 1, "in_progress": 1, "auto_decided": 0, "refused": 0, "on_time": 1, "overdue": 0,
            "on_time_rate": 1.0, "avg_working_days": 0.5, "p90_working_days": 0.5, "supplements": 0,
            "ratings": {"非常满意": 1, "满意": 0, "基本满意": 0, "不满意": 0, "非常不满意": 0}, "bad_rating_rate": 0.0}
    headers, [row] = table_rows([item])
    assert len(headers) == len(row) and dict(zip(headers, row, strict=True))["评价-非常满意"] == 1


async def test_fast_path_equals_the_portable_path(db: str) -> None:
    """300 cases with random receipt and completion instants (weekends, a holiday, a make-up day,
    late and on-time, running past due, refused, 秒批, 补正, ratings): ``service_stats`` (on PostgreSQL
    the index-only SQL with working days and p90 computed in the database) equals ``_fill``, the
    portable path that reads the rows into Python."""
    from engine.store.models import Case, CaseEvent, Evaluation, ProcessDefinition
    from engine.workbench import stats

    calendar = WorkingCalendar(holidays={date(2026, 10, 1), date(2026, 10, 2)}, workdays={date(2026, 10, 10)})
    now = datetime(2026, 10, 20, 9, 30, tzinfo=CST)
    definition = await ProcessDefinition.create(process_id="p", name="p", version=1, content_hash="0" * 64, files="{}")
    rng = random.Random(7)
    for i in range(300):
        created = now - timedelta(minutes=rng.randrange(0, 40 * 24 * 60))
        status = rng.choice(["completed", "completed", "running", "withdrawn"])
        completed = created + timedelta(minutes=rng.randrange(0, 15 * 24 * 60)) if status == "completed" else None
        due = None if rng.random() < 0.2 else created + timedelta(days=rng.randrange(1, 10))
        case = await Case.create(case_no=f"T{i:05d}", service=rng.choice(["a", "b", "c"]), definition=definition,
                                 status=status, state="{}", due_at=due, completed_at=completed,
                                 outcome=rng.choice(["approved", "rejected"]) if completed else None,
                                 decided_by=rng.choice(["auto", "officer"]) if completed else None)
        await Case.filter(id=case.id).update(created_at=created)
        if rng.random() < 0.2:
            await CaseEvent.create(case=case, kind="supplement_requested", detail={})
        if completed and rng.random() < 0.4:
            await Evaluation.create(case=case, level=rng.randrange(1, 6), evaluator_hash="x" * 64)
    services = {s: stats.ServiceInfo(s, s.upper(), "d1" if s != "c" else "d2") for s in ("a", "b", "c", "z")}
    start, end = date(2026, 9, 21), date(2026, 10, 20)
    fast = await stats.service_stats(services, {}, departments=None, start=start, end=end, now=now, calendar=calendar)
    portable = {slug: stats._blank(info, {}) for slug, info in services.items()}
    since = datetime.combine(start, datetime.min.time(), CST)
    await stats._fill(portable, list(services), since, since + timedelta(days=30), now, calendar)
    got = {item["service"]: item for item in fast["items"]}
    assert got == portable
    assert sum(item["received"] for item in got.values()) > 150 and got["z"]["received"] == 0
    assert all(got[s]["p90_working_days"] for s in "abc") and sum(got[s]["supplements"] for s in "abc") > 20
    # a department whose services never completed a case (no latest completion to size the calendar by)
    empty = await stats.service_stats({"z": services["z"]}, {}, departments=None, start=start, end=end, now=now,
                                      calendar=calendar)
    assert [(i["service"], i["received"], i["p90_working_days"]) for i in empty["items"]] == [("z", 0, None)]
