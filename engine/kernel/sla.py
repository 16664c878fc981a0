"""SLA clocks on the Chinese working-day calendar.

Legal and promised time limits are counted in working days (工作日): statutory holidays are off
and make-up working days (调休) are on. ``chinese-calendar`` knows the State Council's
arrangements for 2004–2026; later years fall back to Monday–Friday plus the dates listed in
``processes/calendar.yaml`` (``holidays:`` / ``workdays:``), which an administrator keeps
current each December when the next year's arrangement is published.

Time is measured as *working time*: each working day contributes 24 hours, other days none, in
China Standard Time. A promise of N working days from acceptance ends at the end of the N-th
working day after the acceptance day; 补正 pauses the clock and resuming shifts the due time
by the working time that passed while paused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Iterable

import chinese_calendar
import yaml

CST = timezone(timedelta(hours=8), "CST")
DAY = 86400.0
WARN_RATIO = 0.8


@dataclass
class WorkingCalendar:
    holidays: set[date] = field(default_factory=set)
    workdays: set[date] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path | None) -> "WorkingCalendar":
        """Calendar with the overrides of ``calendar.yaml`` when the file exists."""
        if path is None or not path.exists():
            return cls()
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return cls(holidays={_as_date(d) for d in raw.get("holidays") or []},
                   workdays={_as_date(d) for d in raw.get("workdays") or []})

    def covers(self, day: date) -> bool:
        """Whether the official arrangement for this day's year is known to chinese-calendar."""
        try:
            chinese_calendar.is_workday(day)
            return True
        except NotImplementedError:
            return False

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            return day.weekday() < 5

    # -------------------------------------------------------------- working time
    def working_seconds(self, start: datetime, end: datetime) -> float:
        """Working time between two instants (0 when end <= start)."""
        if end <= start:
            return 0.0
        a, b = start.astimezone(CST), end.astimezone(CST)
        total = 0.0
        day = a.date()
        while day <= b.date():
            if self.is_working_day(day):
                lo = max(a, datetime.combine(day, time.min, CST))
                hi = min(b, datetime.combine(day + timedelta(days=1), time.min, CST))
                total += max(0.0, (hi - lo).total_seconds())
            day += timedelta(days=1)
        return total

    def advance(self, start: datetime, seconds: float) -> datetime:
        """The instant reached after ``seconds`` of working time from ``start``."""
        current = start.astimezone(CST)
        remaining = seconds
        for _ in range(3660):  # ten years of days: a hard stop for absurd limits
            if remaining <= 0:
                return current.astimezone(timezone.utc)
            day_end = datetime.combine(current.date() + timedelta(days=1), time.min, CST)
            if self.is_working_day(current.date()):
                available = (day_end - current).total_seconds()
                if remaining <= available:
                    return (current + timedelta(seconds=remaining)).astimezone(timezone.utc)
                remaining -= available
            current = day_end
        raise ValueError("time limit too long for the calendar")

    def due_after_working_days(self, accepted: datetime, days: int) -> datetime:
        """End of the ``days``-th working day after the acceptance day (自受理之日起N个工作日)."""
        day = accepted.astimezone(CST).date()
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return datetime.combine(day + timedelta(days=1), time.min, CST).astimezone(timezone.utc)


@dataclass(frozen=True)
class SlaPlan:
    """When a case is due, when to warn, from a start instant and a limit in working days."""

    due_at: datetime
    warn_at: datetime


def plan(calendar: WorkingCalendar, start: datetime, working_days: float,
         warn_ratio: float = WARN_RATIO) -> SlaPlan:
    if working_days <= 0:
        raise ValueError("a time limit must be positive")
    if float(working_days).is_integer():
        due = calendar.due_after_working_days(start, int(working_days))
    else:
        due = calendar.advance(start, working_days * DAY)
    total = calendar.working_seconds(start, due)
    return SlaPlan(due_at=due, warn_at=calendar.advance(start, total * warn_ratio))


def resume(calendar: WorkingCalendar, due_at: datetime, paused_at: datetime, now: datetime) -> datetime:
    """New due time after a pause: shifted by the working time that passed while paused."""
    return calendar.advance(due_at, calendar.working_seconds(paused_at, now))


def covered_years(years: Iterable[int]) -> dict[int, bool]:
    calendar = WorkingCalendar()
    return {year: calendar.covers(date(year, 6, 1)) for year in years}


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


__all__ = ["WorkingCalendar", "SlaPlan", "plan", "resume", "CST", "covered_years"]
