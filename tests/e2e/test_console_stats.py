"""The workbench's 统计 page in real Chromium against a real server: a supervisor opens 统计 from the
top bar, sees the headline figures of the cases made here, the four ECharts charts drawn (canvas
with pixels), the per-service table, the overdue case with a link that opens its task, and exports
CSV. An officer has no 统计 link. Screenshot: docs/screenshots/console-stats.png."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import expect

from engine.store.models import Case, Evaluation, HumanTask
from tests.e2e.conftest import Server, screenshot
from tests.e2e.console import add_staff, log_in_as, log_out
from tests.processes.test_business_startup import FORM, WANG

pytestmark = pytest.mark.sqlite_only
SENIOR = {"phone": "13816612345", "address": {"region_code": "310104", "detail": "漕溪北路88弄3号602室"},
          "delivery": "mail"}


async def make_cases(server: Server) -> Case:
    """Two senior cards approved in seconds (rated 非常满意 and 不满意), three business start-ups at the
    window of which one is past due. Returns the overdue one."""
    apps = server.app.ctx.applications
    for level in (1, 4):
        done = await apps.apply("senior-card", SENIOR, applicant=WANG)
        await Evaluation.create(case_id=done.id, level=level, comment="", evaluator_hash="e2e")
    cases = [await apps.apply("business-startup", FORM, applicant=WANG, channel="window", actor="win01")
             for _ in range(3)]
    now = server.engine.deps.clock()
    await Case.filter(id=cases[0].id).update(due_at=now - timedelta(days=2))
    await Case.filter(id=cases[1].id).update(created_at=now - timedelta(days=3))
    return await Case.get(id=cases[0].id)


async def test_supervisor_reads_the_statistics(server: Server, desktop: Any) -> None:
    await add_staff("samr_sup", "陈主任", ["samr", "mca"], ["supervisor"])
    await add_staff("samr01", "李明", ["samr"], ["officer"])
    overdue = await make_cases(server)
    page = await desktop(server.base_url)

    await log_in_as(page, "samr01", "李明")
    await expect(page.get_by_role("link", name="我的待办")).to_be_visible()
    await expect(page.get_by_role("link", name="统计")).to_be_hidden()
    await log_out(page)

    await log_in_as(page, "samr_sup", "陈主任")
    await page.get_by_role("link", name="统计").click()
    await expect(page.get_by_role("heading", name="事项统计")).to_be_visible()
    await expect(page.locator('[data-figure="受理量"]')).to_have_text("5")
    await expect(page.locator('[data-figure="办结量"]')).to_have_text("2")
    await expect(page.locator('[data-figure="超期"]')).to_have_text("1")
    await expect(page.locator('[data-figure="差评率"]')).to_have_text("50.0%")
    senior = page.locator('tr[data-service="senior-card"]')
    await expect(senior).to_contain_text("老年人优待证办理")
    await expect(senior.locator("td").nth(1)).to_have_text("2")  # 受理
    startup = page.locator('tr[data-service="business-startup"]')
    await expect(startup.locator("td").nth(3)).to_have_text("3")  # 在办
    # each chart is a drawn canvas (ECharts), not an empty box
    for chart in ("chart-volume", "chart-ontime", "chart-rating-service", "chart-rating-department"):
        canvas = page.locator(f"#{chart} canvas")
        await expect(canvas).to_have_count(1)
        drawn = await canvas.evaluate(
            "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }")
        assert drawn > 500, chart
    await screenshot(page, "console-stats.png", full_page=True)

    # CSV export downloads a file with the Chinese header
    async with page.expect_download() as info:
        await page.get_by_role("button", name="导出 CSV").click()
    download = await info.value
    content = open(await download.path(), "rb").read()
    assert content.startswith(b"\xef\xbb\xbf") and "事项编码" in content.decode("utf-8-sig")

    # the overdue case links to its open task
    [task] = await HumanTask.filter(case_id=overdue.id, state="ready")
    await page.locator(".overdue-list").get_by_role("link", name=overdue.case_no).click()
    await expect(page).to_have_url(f"{server.base_url}/console/#/tasks/{task.id}")
    await expect(page.get_by_role("heading", name=task.name, exact=True)).to_be_visible()

    # a department filter narrows the page to that department's services
    await page.goto(f"{server.base_url}/console/#/stats?department=mca")
    await expect(page.locator('[data-figure="受理量"]')).to_have_text("2")
    await expect(page.locator('tr[data-service="business-startup"]')).to_have_count(0)
