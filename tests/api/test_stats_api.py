"""Service statistics over real HTTP on both database passes: the figures equal the cases this test
makes (counts, 秒批, 不予许可, on time / overdue, working days, 补正, 好差评), CSV (UTF-8 BOM) and XLSX
read back with the right headers, and citizens, officers and other departments' supervisors get 403.
Every answer is checked against the OpenAPI document."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sanic import Sanic

from engine.kernel.sla import CST, DAY
from engine.store.models import Case, HumanTask
from tests.api.helpers import OpenApiClient, citizen_token, error_of, running_api, seed_staff
from tests.api.helpers import staff_login as login
from tests.api.test_applications_api import LI, SENIOR, STARTUP, WANG, started

STATS, APPLY, TASKS = "/api/v1/stats/services", "/api/v1/applications", "/api/v1/staff/tasks"
STAFF = {"boss": ([], ["admin"]), "mca_sup": (["mca"], ["supervisor"]), "psb_sup": (["psb"], ["supervisor"]),
         "mca01": (["mca"], ["officer"]), "samr01": (["samr"], ["officer"])}


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch) as served:
        await seed_staff(STAFF)
        yield served


async def make_cases(api: OpenApiClient) -> dict[str, float]:
    """3 senior cards (2 approved and 1 refused by rule; one finished late after 4 days), 2 business
    start-ups in progress (one past due, one with a 补正 request), ratings 非常满意 and 非常不满意."""
    wang = await citizen_token(api, "dev-wang", *WANG)
    li = await citizen_token(api, "dev-lina", *LI)
    good = await started(api, wang, "senior-card", SENIOR)
    late = await started(api, wang, "senior-card", SENIOR)
    refused = await started(api, li, "senior-card", {**SENIOR, "phone": "13917724680"})
    assert refused["result"]["outcome"] == "rejected"
    now = api.app.ctx.engine.deps.clock()
    created, completed = now - timedelta(days=5), now - timedelta(days=1)
    await Case.filter(id=late["id"]).update(created_at=created, completed_at=completed,
                                            due_at=completed - timedelta(hours=1))
    assert (await api.call("POST", f"{APPLY}/{good['id']}/evaluation", token=wang, json={"level": 1})).status_code == 201
    assert (await api.call("POST", f"{APPLY}/{refused['id']}/evaluation", token=li,
                           json={"level": 5, "comment": "不理解为什么不符合"})).status_code == 201

    overdue = await started(api, wang, "business-startup", STARTUP)
    await Case.filter(id=overdue["id"]).update(due_at=now - timedelta(hours=3))
    asked = await started(api, wang, "business-startup", STARTUP)
    [task] = await HumanTask.filter(case_id=asked["id"], state="ready")
    samr01 = await login(api, "samr01")
    assert (await api.call("POST", f"{TASKS}/{task.id}/claim", token=samr01)).status_code == 200
    returned = await api.call("POST", f"{TASKS}/{task.id}/return", token=samr01, json={"reason": "请补充住所证明"})
    assert returned.status_code == 200, returned.text
    days = api.app.ctx.engine.deps.calendar.working_seconds(created, completed) / DAY
    return {"late_days": days, "overdue_case": overdue["id"]}


def by_service(body: dict) -> dict[str, dict]:
    return {item["service"]: item for item in body["items"]}


async def test_statistics_equal_the_cases_made(api: OpenApiClient) -> None:
    made = await make_cases(api)
    boss = await login(api, "boss")
    response = await api.call("GET", STATS, token=boss)
    assert response.status_code == 200, response.text
    body = response.json()
    items = by_service(body)
    senior, startup = items["senior-card"], items["business-startup"]
    assert (senior["service_name"], senior["department"], senior["department_name"]) == (
        "老年人优待证办理", "mca", "民政局")
    assert {k: senior[k] for k in ("received", "completed", "in_progress", "auto_decided", "refused", "on_time",
                                   "overdue", "supplements")} == {
        "received": 3, "completed": 3, "in_progress": 0, "auto_decided": 3, "refused": 1, "on_time": 2,
        "overdue": 1, "supplements": 0}
    assert senior["on_time_rate"] == round(2 / 3, 4)
    assert senior["ratings"] == {"非常满意": 1, "满意": 0, "基本满意": 0, "不满意": 0, "非常不满意": 1}
    assert senior["bad_rating_rate"] == 0.5
    # two finished in the same instant they started; one took late_days working days
    assert senior["p90_working_days"] == round(made["late_days"], 2)
    assert abs(senior["avg_working_days"] - made["late_days"] / 3) < 0.01
    assert {k: startup[k] for k in ("received", "completed", "in_progress", "auto_decided", "refused", "on_time",
                                    "overdue", "supplements")} == {
        "received": 2, "completed": 0, "in_progress": 2, "auto_decided": 0, "refused": 0, "on_time": 0,
        "overdue": 1, "supplements": 1}
    assert startup["on_time_rate"] is None and startup["avg_working_days"] is None
    assert startup["bad_rating_rate"] is None and sum(startup["ratings"].values()) == 0
    # the bad rating opened a rectification case (a service of its own)
    assert items["rectification"]["received"] == 1
    assert body["totals"]["received"] == sum(i["received"] for i in body["items"]) == 6

    # the daily series: every day of the window, summing to the cohort; the late case on its own day
    assert len(body["series"]) == 30 and body["series"][-1]["date"] == body["to"]
    assert sum(d["received"] for d in body["series"]) == 6
    today = api.app.ctx.engine.deps.clock().astimezone(CST).date()
    five_ago = (api.app.ctx.engine.deps.clock() - timedelta(days=5)).astimezone(CST).date().isoformat()
    assert next(d for d in body["series"] if d["date"] == five_ago)["received"] == 1
    assert next(d for d in body["series"] if d["date"] == today.isoformat())["received"] == 5
    assert sum(d["completed"] for d in body["series"]) == await Case.filter(completed_at__isnull=False).count() == 3
    # the overdue list: the running start-up past due, with its open task to open in the console
    [late] = body["overdue_cases"]
    assert (late["case_id"], late["service"]) == (made["overdue_case"], "business-startup")
    assert late["task_id"] and late["overdue_days"] > 0

    # a window before the cases: nothing received
    early = (await api.call("GET", f"{STATS}?from=2025-01-01&to=2025-01-31", token=boss)).json()
    assert sum(i["received"] for i in early["items"]) == 0 and len(early["series"]) == 31


async def test_supervisors_see_their_department_and_others_are_refused(api: OpenApiClient) -> None:
    await make_cases(api)
    mca = await login(api, "mca_sup")
    mine = (await api.call("GET", STATS, token=mca)).json()
    assert {i["department"] for i in mine["items"]} == {"mca"}
    assert by_service(mine)["senior-card"]["received"] == 3
    assert (await api.call("GET", f"{STATS}?department=mca", token=mca)).status_code == 200
    error_of(await api.call("GET", f"{STATS}?department=samr", token=mca), 403, "stats_department_forbidden")
    psb = await login(api, "psb_sup")
    theirs = (await api.call("GET", STATS, token=psb)).json()
    assert "senior-card" not in by_service(theirs) and sum(i["received"] for i in theirs["items"]) == 0
    error_of(await api.call("GET", f"{STATS}?department=mca", token=psb), 403, "stats_department_forbidden")
    error_of(await api.call("GET", STATS, token=await login(api, "mca01")), 403, "forbidden_role")
    citizen = await citizen_token(api, "dev-wang", *WANG)
    error_of(await api.call("GET", STATS, token=citizen), 403, "staff_only")
    error_of(await api.call("GET", STATS), 401, "unauthorized")
    boss = await login(api, "boss")
    for query, field in (("from=2026-13-01", "from"), ("to=yesterday", "to"), ("from=2026-02-01&to=2026-01-01", "from"),
                         ("from=2020-01-01&to=2026-01-01", "from"), ("format=pdf", "format")):
        assert field in error_of(await api.call("GET", f"{STATS}?{query}", token=boss), 422,
                                 "validation_failed")["fields"]


async def test_csv_and_xlsx_open_with_the_right_headers(api: OpenApiClient) -> None:
    await make_cases(api)
    mca = await login(api, "mca_sup")
    response = await api.call("GET", f"{STATS}?format=csv", token=mca)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf") and "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    header = rows[0]
    assert header[:6] == ["事项编码", "事项名称", "部门编码", "部门", "受理量", "办结量"]
    assert header[-6:] == ["评价-非常满意", "评价-满意", "评价-基本满意", "评价-不满意", "评价-非常不满意", "差评率"]
    senior = next(dict(zip(header, row, strict=True)) for row in rows[1:] if row[0] == "senior-card")
    assert (senior["受理量"], senior["不予许可"], senior["秒批量"], senior["超期"]) == ("3", "1", "3", "1")
    assert (senior["评价-非常满意"], senior["评价-非常不满意"], senior["差评率"]) == ("1", "1", "0.5")

    xlsx = await api.call("GET", f"{STATS}?format=xlsx", token=mca)
    assert xlsx.status_code == 200 and "spreadsheetml" in xlsx.headers["content-type"]
    book = load_workbook(io.BytesIO(xlsx.content), read_only=True)
    sheet = book["事项统计"]
    table = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert table[0] == header
    row = dict(zip(table[0], next(r for r in table[1:] if r[0] == "senior-card"), strict=True))
    assert (row["受理量"], row["按时办结"], row["按时办结率"], row["评价-非常不满意"]) == (3, 2, round(2 / 3, 4), 1)


async def from_scratch(api: OpenApiClient, body: dict) -> dict[str, dict]:
    """The statistics recomputed row by row from the cases, events and ratings the test made, with
    the plain definitions (no SQL aggregate): what the endpoint's fast path must equal."""
    from datetime import date, datetime, time

    from engine.citizen.case_views import BAD_LEVELS, LEVELS
    from engine.store.models import CaseEvent, Evaluation

    calendar, now = api.app.ctx.engine.deps.calendar, api.app.ctx.engine.deps.clock()
    since = datetime.combine(date.fromisoformat(body["from"]), time.min, CST)
    until = datetime.combine(date.fromisoformat(body["to"]) + timedelta(days=1), time.min, CST)
    out: dict[str, dict] = {}
    for case in await Case.filter(created_at__gte=since, created_at__lt=until):
        row = out.setdefault(case.service, {"received": 0, "completed": 0, "in_progress": 0, "auto_decided": 0,
                                            "refused": 0, "on_time": 0, "overdue": 0, "supplements": 0,
                                            "days": [], "ratings": {label: 0 for label in LEVELS.values()}})
        row["received"] += 1
        row["completed"] += case.status == "completed"
        row["in_progress"] += case.status == "running"
        row["auto_decided"] += case.decided_by == "auto"
        row["refused"] += case.outcome == "rejected"
        if case.status == "running" and case.due_at is not None and case.due_at < now:
            row["overdue"] += 1
        if case.status == "completed" and case.completed_at is not None:
            row["days"].append(calendar.working_seconds(case.created_at, case.completed_at) / DAY)
            if case.due_at is None or case.completed_at <= case.due_at:
                row["on_time"] += 1
            else:
                row["overdue"] += 1
        row["supplements"] += await CaseEvent.filter(case_id=case.id, kind="supplement_requested").count()
        rating = await Evaluation.get_or_none(case_id=case.id)
        if rating is not None:
            row["ratings"][LEVELS[rating.level]] += 1
    for row in out.values():
        days = sorted(row.pop("days"))
        row["avg_working_days"] = round(sum(days) / len(days), 2) if days else None
        row["p90_working_days"] = round(days[max(0, -(-9 * len(days) // 10) - 1)], 2) if days else None
        row["on_time_rate"] = round(row["on_time"] / row["completed"], 4) if row["completed"] else None
        rated = sum(row["ratings"].values())
        bad = sum(row["ratings"][LEVELS[level]] for level in BAD_LEVELS)
        row["bad_rating_rate"] = round(bad / rated, 4) if rated else None
    return out


async def test_statistics_equal_a_from_scratch_count(api: OpenApiClient) -> None:
    """On PostgreSQL the endpoint answers from index-only aggregates (working days and their p90 in
    SQL); on SQLite from the portable path. Both must equal the row-by-row count, after a refusal,
    a late completion, a 补正, a withdrawal and ratings (good and bad)."""
    await make_cases(api)
    wang = await citizen_token(api, "dev-wang", *WANG)
    withdrawn = await started(api, wang, "business-startup", STARTUP)
    assert (await api.call("POST", f"{APPLY}/{withdrawn['id']}/withdraw", token=wang)).status_code == 200
    # a second finished senior card with a due time it met, received two days ago
    met = await started(api, wang, "senior-card", SENIOR)
    now = api.app.ctx.engine.deps.clock()
    await Case.filter(id=met["id"]).update(created_at=now - timedelta(days=2, hours=3),
                                           completed_at=now - timedelta(hours=20), due_at=now + timedelta(days=3))
    boss = await login(api, "boss")
    body = (await api.call("GET", STATS, token=boss)).json()
    expected = await from_scratch(api, body)
    assert expected["senior-card"]["received"] == 4 and expected["business-startup"]["received"] == 3
    assert expected["business-startup"]["supplements"] == 1 and expected["senior-card"]["refused"] == 1
    got = by_service(body)
    for service, want in expected.items():
        assert {k: got[service][k] for k in want} == want, service
    for service, item in got.items():  # every other service: nothing received, nothing counted
        if service not in expected:
            assert (item["received"], item["supplements"], sum(item["ratings"].values())) == (0, 0, 0)
