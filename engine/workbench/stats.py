"""Service statistics for supervisors and administrators (统计): how each service performs.

The cohort is the cases *received* (``cases.created_at``) in ``[since, until)``; for each service:

    received        cases received in the window
    completed       of them, ended (status completed)
    in_progress     of them, still running
    auto_decided    of them, decided by a rule (``cases.decided_by = 'auto'``, 秒批)
    refused         of them, with outcome ``rejected`` (不予许可 / 不予受理)
    on_time         completed with no promise or by their due time (``completed_at <= due_at``)
    overdue         completed after their due time, or still running past it now
    on_time_rate    on_time / completed (None when nothing completed)
    avg/p90_working_days  working time from receipt to completion, in working days (Chinese calendar)
    supplements     补正 requests made on the cohort
    ratings         好差评 per level label; bad_rating_rate = (不满意 + 非常不满意) / rated

On PostgreSQL (``_fill_postgres``) everything is computed in the database from indexes alone: the
cohort from ``cases (service, created_at, status, outcome, decided_by, due_at, completed_at, id)``
(counts as FILTER aggregates; working days per case from the calendar's prefix sum passed as an
array; p90 by ``percentile_disc``), 补正 and ratings from period indexes joined to it — no case row
comes back to Python. On SQLite (``_fill``, also the tests' reference) the counts are GROUP BY
aggregates and the completed cases' times are read row by row for the percentile. ``series`` gives received and
completed per day (China Standard Time) for the charts; ``overdue_cases`` lists the overdue cases
(most overdue first, at most ``OVERDUE_LIMIT``) with an open task to jump to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from tortoise.functions import Count

from engine.citizen.case_views import BAD_LEVELS, LEVELS
from engine.errors import Forbidden, ValidationFailed
from engine.kernel.cases import OPEN_TASK_STATES
from engine.kernel.sla import CST, DAY, WorkingCalendar
from engine.store.db import db_connection
from engine.store.models import Case, CaseEvent, Evaluation, HumanTask

MAX_DAYS = 366
_CST_OFFSET = 8 * 3600.0
OVERDUE_LIMIT = 100
STAT_ROLES = frozenset({"supervisor", "admin"})
COLUMNS = ("service", "service_name", "department", "department_name", "received", "completed", "in_progress",
           "auto_decided", "refused", "on_time", "overdue", "on_time_rate", "avg_working_days",
           "p90_working_days", "supplements", "ratings", "bad_rating_rate")
COLUMN_LABELS = {"service": "事项编码", "service_name": "事项名称", "department": "部门编码",
                 "department_name": "部门", "received": "受理量", "completed": "办结量", "in_progress": "在办量",
                 "auto_decided": "秒批量", "refused": "不予许可", "on_time": "按时办结", "overdue": "超期",
                 "on_time_rate": "按时办结率", "avg_working_days": "平均用时（工作日）",
                 "p90_working_days": "90%用时（工作日）", "supplements": "补正次数",
                 "bad_rating_rate": "差评率"}


class StatsDepartmentForbidden(Forbidden):
    code = "stats_department_forbidden"
    default_message = "您只能查看本部门的统计"


@dataclass(frozen=True)
class ServiceInfo:
    slug: str
    name: str
    department: str


def window(since: str | None, until: str | None, today: date) -> tuple[date, date]:
    """``from``/``to`` (YYYY-MM-DD, both days included); default the last 30 days up to today."""
    def parse(value: str | None, name: str, default: date) -> date:
        if value in (None, ""):
            return default
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise ValidationFailed("日期格式应为 YYYY-MM-DD", fields={name: "应为 YYYY-MM-DD"}) from None
    end = parse(until, "to", today)
    start = parse(since, "from", end - timedelta(days=29))
    if start > end:
        raise ValidationFailed("开始日期不能晚于结束日期", fields={"from": "不能晚于结束日期"})
    if (end - start).days >= MAX_DAYS:
        raise ValidationFailed(f"统计区间最长 {MAX_DAYS} 天", fields={"from": f"区间不超过 {MAX_DAYS} 天"})
    return start, end


def visible_departments(roles: list[str], departments: list[str], wanted: str | None) -> set[str] | None:
    """Departments the statistics may show: admins all (None) or ``wanted``; supervisors their own."""
    if "admin" in roles:
        return {wanted} if wanted else None
    own = {str(d) for d in departments}
    if wanted:
        if wanted not in own:
            raise StatsDepartmentForbidden()
        return {wanted}
    return own


class WorkingDays:
    """Working time between instants, from a prefix sum of working days (O(1) per pair, no calendar
    look-up per case)."""

    def __init__(self, calendar: WorkingCalendar, first: date, last: date) -> None:
        self.first = first
        self.first_epoch = (first - date(1970, 1, 1)).days * DAY
        self.prefix = [0]
        day = first
        while day <= last:
            self.prefix.append(self.prefix[-1] + (1 if calendar.is_working_day(day) else 0))
            day += timedelta(days=1)

    def _before(self, moment: datetime) -> float:
        """Working seconds from ``first`` 00:00 CST to ``moment``."""
        local = moment.astimezone(CST)
        index = (local.date() - self.first).days
        whole = self.prefix[index] * DAY
        if self.prefix[index + 1] > self.prefix[index]:  # a working day: its elapsed part counts
            whole += local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        return whole

    def between(self, start: datetime, end: datetime) -> float:
        return max(0.0, self._before(end) - self._before(start)) / DAY

    def _before_epoch(self, seconds: float) -> float:
        local = seconds + _CST_OFFSET - self.first_epoch
        index = int(local // DAY)
        whole = self.prefix[index] * DAY
        if self.prefix[index + 1] > self.prefix[index]:
            whole += local - index * DAY
        return whole

    def between_epochs(self, start: float, end: float) -> float:
        """``between`` for Unix seconds (the statistics read epochs, not datetimes, for speed)."""
        return max(0.0, self._before_epoch(end) - self._before_epoch(start)) / DAY


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def _grouped(query: Any, *fields: str) -> list[dict[str, Any]]:
    return await query.annotate(n=Count("id")).group_by(*fields).values(*fields, "n")


async def service_stats(services: dict[str, ServiceInfo], department_names: dict[str, str], *,
                        departments: set[str] | None, start: date, end: date, now: datetime,
                        calendar: WorkingCalendar) -> dict[str, Any]:
    """The statistics of every service of ``departments`` (None: all) for the days ``start``..``end``."""
    chosen = {slug: info for slug, info in services.items() if departments is None or info.department in departments}
    since = datetime.combine(start, time.min, CST)
    until = datetime.combine(end + timedelta(days=1), time.min, CST)
    rows = {slug: _blank(info, department_names) for slug, info in chosen.items()}
    if chosen:
        if db_connection().capabilities.dialect == "postgres":
            await _fill_postgres(rows, list(chosen), since, until, now, calendar, start)
        else:
            await _fill(rows, list(chosen), since, until, now, calendar)
    items = [rows[slug] for slug in sorted(rows, key=lambda s: (rows[s]["department"], s))]
    series = await _series(list(chosen), since, until, start, end) if chosen else []
    overdue = await _overdue(chosen, since, until, now) if chosen else []
    return {"from": start.isoformat(), "to": end.isoformat(), "items": items, "series": series,
            "overdue_cases": overdue, "totals": _totals(items)}


def _blank(info: ServiceInfo, department_names: dict[str, str]) -> dict[str, Any]:
    return {"service": info.slug, "service_name": info.name, "department": info.department,
            "department_name": department_names.get(info.department, info.department), "received": 0,
            "completed": 0, "in_progress": 0, "auto_decided": 0, "refused": 0, "on_time": 0, "overdue": 0,
            "on_time_rate": None, "avg_working_days": None, "p90_working_days": None, "supplements": 0,
            "ratings": {label: 0 for label in LEVELS.values()}, "bad_rating_rate": None}


async def _fill(rows: dict[str, dict[str, Any]], slugs: list[str], since: datetime, until: datetime,
                now: datetime, calendar: WorkingCalendar) -> None:
    cohort = Case.filter(service__in=slugs, created_at__gte=since, created_at__lt=until)
    # one scan of the cohort for status, outcome and who decided
    for r in await _grouped(cohort, "service", "status", "outcome", "decided_by"):
        row = rows[r["service"]]
        row["received"] += r["n"]
        if r["status"] == "completed":
            row["completed"] += r["n"]
        elif r["status"] == "running":
            row["in_progress"] += r["n"]
        if r["decided_by"] == "auto":
            row["auto_decided"] += r["n"]
        if r["outcome"] == "rejected":
            row["refused"] += r["n"]
    running_late = cohort.filter(status="running", due_at__lt=now)
    for r in await _grouped(running_late, "service"):
        rows[r["service"]]["overdue"] += r["n"]
    durations: dict[str, list[float]] = {slug: [] for slug in slugs}
    done = await _completed(slugs, since, until)
    if done:
        first = datetime.fromtimestamp(min(r[1] for r in done), CST).date()
        last = datetime.fromtimestamp(max(r[2] for r in done), CST).date()
        days = WorkingDays(calendar, first, last)
        for service, created, completed, due in done:
            durations[service].append(days.between_epochs(created, completed))
            if due is None or completed <= due:
                rows[service]["on_time"] += 1
            else:
                rows[service]["overdue"] += 1
    for slug, values in durations.items():
        row = rows[slug]
        row["on_time_rate"] = _rate(row["on_time"], row["completed"])
        if values:
            row["avg_working_days"] = round(sum(values) / len(values), 2)
            row["p90_working_days"] = round(_p90(values) or 0.0, 2)
    supplements = CaseEvent.filter(kind="supplement_requested", case__service__in=slugs,
                                   case__created_at__gte=since, case__created_at__lt=until)
    for r in await supplements.annotate(n=Count("id")).group_by("case__service").values("case__service", "n"):
        rows[r["case__service"]]["supplements"] = r["n"]
    ratings = Evaluation.filter(case__service__in=slugs, case__created_at__gte=since, case__created_at__lt=until)
    for r in await ratings.annotate(n=Count("id")).group_by("case__service", "level").values(
            "case__service", "level", "n"):
        if r["level"] in LEVELS:
            rows[r["case__service"]]["ratings"][LEVELS[r["level"]]] += r["n"]
    for row in rows.values():
        rated = sum(row["ratings"].values())
        bad = sum(row["ratings"][LEVELS[level]] for level in BAD_LEVELS)
        row["bad_rating_rate"] = _rate(bad, rated)


# ``WorkingDays._before_epoch`` in SQL: the working seconds before an instant, from its local seconds
# since the first day (``l*``) and their day index (``i*``); $4 is the prefix sum of working days
# (PostgreSQL arrays count from 1), $5 the first day's epoch
_BEFORE = ("(({p}[i{x} + 1] * 86400)::float8 + CASE WHEN {p}[i{x} + 2] > {p}[i{x} + 1] "
           "THEN l{x} - i{x} * 86400 ELSE 0 END)")
_COHORT_SQL = f"""
WITH cohort AS (
    SELECT service, status, outcome, decided_by, due_at, completed_at,
           date_part('epoch', created_at) + 28800.0 - $5 AS lc, date_part('epoch', completed_at) + 28800.0 - $5 AS le
    FROM cases WHERE service = ANY($1::text[]) AND created_at >= $2 AND created_at < $3
), indexed AS (
    SELECT *, floor(lc / 86400)::int AS ic, floor(le / 86400)::int AS ie FROM cohort
), timed AS (
    SELECT *, CASE WHEN status = 'completed' AND completed_at IS NOT NULL
                   THEN greatest(0.0, {_BEFORE.format(p="($4::int[])", x="e")} - {_BEFORE.format(p="($4::int[])", x="c")})
                        / 86400 END AS days
    FROM indexed OFFSET 0  -- a fence: each case's working days computed once, not once per aggregate
)
SELECT service, count(*) AS received,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'running') AS in_progress,
       count(*) FILTER (WHERE decided_by = 'auto') AS auto_decided,
       count(*) FILTER (WHERE outcome = 'rejected') AS refused,
       count(*) FILTER (WHERE status = 'running' AND due_at < $6) AS running_late,
       count(*) FILTER (WHERE status = 'completed' AND completed_at IS NOT NULL
                        AND (due_at IS NULL OR completed_at <= due_at)) AS on_time,
       count(*) FILTER (WHERE status = 'completed' AND completed_at > due_at) AS completed_late,
       count(*) FILTER (WHERE status = 'completed' AND completed_at IS NOT NULL) AS done,
       count(days) AS timed, sum(days) AS days_sum,
       percentile_disc(0.9) WITHIN GROUP (ORDER BY days) AS days_p90
FROM timed GROUP BY service
"""
# 补正 requests and ratings of the cohort. Both are recorded after their case was received, so only
# those since the window's start are read (from the indexes (kind, created_at, case_id) and
# (created_at, case_id, level)) and joined to the cohort (read from its index)
_EVENTS_SQL = """
SELECT c.service, 0 AS level, count(*) FROM case_events e JOIN cases c ON c.id = e.case_id
    WHERE e.kind = 'supplement_requested' AND e.created_at >= $2
      AND c.service = ANY($1::text[]) AND c.created_at >= $2 AND c.created_at < $3 GROUP BY c.service
UNION ALL
SELECT c.service, v.level, count(*) FROM evaluations v JOIN cases c ON c.id = v.case_id
    WHERE v.created_at >= $2 AND c.service = ANY($1::text[]) AND c.created_at >= $2 AND c.created_at < $3
    GROUP BY c.service, v.level
"""


async def _fill_postgres(rows: dict[str, dict[str, Any]], slugs: list[str], since: datetime, until: datetime,
                         now: datetime, calendar: WorkingCalendar, start: date) -> None:
    """``_fill`` on PostgreSQL in two statements that read only indexes (``cases (service, created_at,
    status, outcome, decided_by, due_at, completed_at, id)``, ``case_events (kind, case_id)``): the
    counts as FILTER aggregates, the working days per case computed in SQL from the same prefix sum
    as ``WorkingDays`` (passed as an array) and their p90 by ``percentile_disc`` (the same nearest
    rank as ``_p90``). No row comes back to Python; at 1 M cases this is what keeps it well under a
    second. ``_fill`` stays the portable path (SQLite) and the reference the tests compare with."""
    conn = db_connection()
    # the prefix sum must cover every completion: the latest per service is one index probe each
    _, latest = await conn.execute_query(
        "SELECT max(m) FROM unnest($1::text[]) AS s(service), "
        "LATERAL (SELECT max(completed_at) AS m FROM cases WHERE cases.service = s.service) x", [slugs])
    last = max([now, *(r[0] for r in latest if r[0] is not None)]).astimezone(CST).date() + timedelta(days=1)
    first = start - timedelta(days=1)
    days = WorkingDays(calendar, first, last)
    _, stats_rows = await conn.execute_query(_COHORT_SQL, [slugs, since, until, days.prefix, float(days.first_epoch), now])
    if any(r["timed"] != r["done"] for r in stats_rows):  # a completion before its receipt: off the prefix sum
        await _fill(rows, slugs, since, until, now, calendar)
        return
    for r in stats_rows:
        row = rows[r["service"]]
        for key in ("received", "completed", "in_progress", "auto_decided", "refused", "on_time"):
            row[key] = int(r[key])
        row["overdue"] = int(r["running_late"]) + int(r["completed_late"])
        row["on_time_rate"] = _rate(row["on_time"], row["completed"])
        if r["timed"]:
            row["avg_working_days"] = round(float(r["days_sum"]) / int(r["timed"]), 2)
            row["p90_working_days"] = round(float(r["days_p90"]), 2)
    _, counted = await conn.execute_query(_EVENTS_SQL, [slugs, since, until])
    for service, level, n in ((r[0], r[1], r[2]) for r in counted):
        if level == 0:
            rows[service]["supplements"] = int(n)
        elif level in LEVELS:
            rows[service]["ratings"][LEVELS[level]] += int(n)
    for row in rows.values():
        rated = sum(row["ratings"].values())
        bad = sum(row["ratings"][LEVELS[level]] for level in BAD_LEVELS)
        row["bad_rating_rate"] = _rate(bad, rated)


def _totals(items: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("received", "completed", "in_progress", "auto_decided", "refused", "on_time", "overdue", "supplements")
    totals: dict[str, Any] = {k: sum(i[k] for i in items) for k in keys}
    totals["on_time_rate"] = _rate(totals["on_time"], totals["completed"])
    ratings = {label: sum(i["ratings"][label] for i in items) for label in LEVELS.values()}
    totals["ratings"] = ratings
    totals["bad_rating_rate"] = _rate(sum(ratings[LEVELS[lv]] for lv in BAD_LEVELS), sum(ratings.values()))
    return totals


async def _series(slugs: list[str], since: datetime, until: datetime, start: date, end: date) -> list[dict[str, Any]]:
    """Received and completed per day (CST), summed over the chosen services, every day present."""
    conn = db_connection()
    postgres = conn.capabilities.dialect == "postgres"
    counts: dict[str, dict[str, int]] = {}
    for column, key in (("created_at", "received"), ("completed_at", "completed")):
        if postgres:  # the CST day as a day number (cheaper than formatting every row's date; date_part is
            # float8, EXTRACT numeric and slower; floor, as a cast would round 23:59:59.6 into the next day)
            sql = (f"SELECT floor((date_part('epoch', {column}) + 28800) / 86400)::int AS d, COUNT(*) "
                   f"FROM cases WHERE service = ANY($1::text[]) AND {column} >= $2 AND {column} < $3 GROUP BY d")
            params: list[Any] = [slugs, since, until]
        else:
            marks = ",".join("?" for _ in slugs)
            sql = (f"SELECT date({column}, '+8 hours') AS d, COUNT(*) FROM cases WHERE service IN ({marks}) "
                   f"AND {column} >= ? AND {column} < ? GROUP BY d")
            params = [*slugs, _sqlite_time(since), _sqlite_time(until)]
        _, rows = await conn.execute_query(sql, params)
        for row in rows:
            day, n = row[0], row[1]  # sqlite3.Row and asyncpg Record both index by position
            if postgres:
                day = (date(1970, 1, 1) + timedelta(days=int(day))).isoformat()
            counts.setdefault(str(day), {})[key] = int(n)
    out = []
    day = start
    while day <= end:
        got = counts.get(day.isoformat(), {})
        out.append({"date": day.isoformat(), "received": got.get("received", 0), "completed": got.get("completed", 0)})
        day += timedelta(days=1)
    return out


async def _completed(slugs: list[str], since: datetime, until: datetime) -> list[tuple[str, float, float, float | None]]:
    """``(service, created, completed, due)`` in Unix seconds of the completed cases of the cohort: one
    plain query (no ORM objects), as a month at 1 M cases a year is ~70 k rows."""
    conn = db_connection()
    if conn.capabilities.dialect == "postgres":
        sql = ("SELECT service, EXTRACT(EPOCH FROM created_at)::float8, EXTRACT(EPOCH FROM completed_at)::float8, "
               "EXTRACT(EPOCH FROM due_at)::float8 FROM cases WHERE service = ANY($1::text[]) AND created_at >= $2 "
               "AND created_at < $3 AND status = 'completed' AND completed_at IS NOT NULL")
        params: list[Any] = [slugs, since, until]
    else:
        marks = ",".join("?" for _ in slugs)
        sql = ("SELECT service, (julianday(created_at) - 2440587.5) * 86400.0, "
               "(julianday(completed_at) - 2440587.5) * 86400.0, (julianday(due_at) - 2440587.5) * 86400.0 "
               f"FROM cases WHERE service IN ({marks}) AND created_at >= ? AND created_at < ? "
               "AND status = 'completed' AND completed_at IS NOT NULL")
        params = [*slugs, _sqlite_time(since), _sqlite_time(until)]
    _, rows = await conn.execute_query(sql, params)
    return [(str(r[0]), float(r[1]), float(r[2]), None if r[3] is None else float(r[3])) for r in rows]


def _sqlite_time(moment: datetime) -> str:
    """The text form Tortoise stores datetimes in on SQLite (UTC, ``YYYY-MM-DD HH:MM:SS.ffffff+00:00``)."""
    from datetime import timezone

    return moment.astimezone(timezone.utc).isoformat(" ", "microseconds")


async def _overdue(chosen: dict[str, ServiceInfo], since: datetime, until: datetime,
                   now: datetime) -> list[dict[str, Any]]:
    """Running cases of the cohort past their due time, most overdue first, with an open task id."""
    cases = await Case.filter(service__in=list(chosen), created_at__gte=since, created_at__lt=until,
                              status="running", due_at__lt=now).order_by("due_at").limit(OVERDUE_LIMIT).values(
        "id", "case_no", "service", "due_at", "created_at")
    tasks: dict[int, tuple[str, str]] = {}
    if cases:
        for case_id, task_id, name in await HumanTask.filter(
                case_id__in=[c["id"] for c in cases], state__in=OPEN_TASK_STATES).order_by("created_at").values_list(
                "case_id", "id", "name"):
            tasks.setdefault(case_id, (str(task_id), name))
    return [{"case_id": c["id"], "case_no": c["case_no"], "service": c["service"],
             "service_name": chosen[c["service"]].name, "department": chosen[c["service"]].department,
             "created_at": c["created_at"].isoformat(), "due_at": c["due_at"].isoformat(),
             "overdue_days": round((now - c["due_at"]).total_seconds() / DAY, 1),
             "task_id": tasks.get(c["id"], (None, None))[0], "task_name": tasks.get(c["id"], (None, None))[1]}
            for c in cases]


def table_rows(items: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Headers (Chinese) and rows for CSV / XLSX: the columns, then one column per rating level."""
    plain = [c for c in COLUMNS if c != "ratings"]
    headers = [COLUMN_LABELS[c] for c in plain if c != "bad_rating_rate"] + [
        f"评价-{label}" for label in LEVELS.values()] + [COLUMN_LABELS["bad_rating_rate"]]
    rows = []
    for item in items:
        rows.append([item[c] for c in plain if c != "bad_rating_rate"]
                    + [item["ratings"][label] for label in LEVELS.values()] + [item["bad_rating_rate"]])
    return headers, rows


def to_csv(items: list[dict[str, Any]]) -> bytes:
    """UTF-8 with a BOM, so Excel opens the Chinese headers right."""
    import csv
    import io

    headers, rows = table_rows(items)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(items: list[dict[str, Any]], start: date, end: date) -> bytes:
    """One sheet 事项统计 with the same headers and rows as the CSV."""
    import io

    from openpyxl import Workbook

    headers, rows = table_rows(items)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("事项统计")
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


__all__ = ["COLUMNS", "STAT_ROLES", "ServiceInfo", "StatsDepartmentForbidden", "WorkingDays", "service_stats", "to_csv", "to_xlsx",
           "table_rows", "visible_departments", "window"]
