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
