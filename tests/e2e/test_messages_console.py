"""Browser: the console bell. An SLA warning and a supervisor's 催办 on an overdue task reach the
officer's bell and lead to the task; the officer copies the completed step to a colleague (抄送 in
the complete form), whose bell shows it; opening it leaves “抄送已阅” on the case timeline."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import Page, expect

from engine.kernel.jobs import JobRunner
from engine.store.models import CaseEvent, Job
from tests.e2e.conftest import Server, screenshot
from tests.e2e.console import add_staff, log_in_as, log_out
from tests.e2e.test_console import intake_case

pytestmark = pytest.mark.sqlite_only


async def test_bell_urge_and_cc(server: Server, desktop: Any) -> None:
    await add_staff("samr01", "李明", ["samr"], ["officer"])
    await add_staff("samr02", "王芳", ["samr"], ["officer"])
    await add_staff("boss", "赵督办", ["supervisor", "samr"], ["supervisor"])
    case, task = await intake_case(server)
    warning = await Job.get(case_id=case.id, kind="sla_warning")
    await Job.filter(id=warning.id).update(due_at=server.engine.deps.clock() - timedelta(minutes=1))
    assert await JobRunner(server.engine).run_due() >= 1  # the 80 % warning fires

    page: Page = await desktop(server.base_url)
    # --- the supervisor urges the overdue task
    await log_in_as(page, "boss", "赵督办")
    await page.goto(f"/console/#/tasks/{task.id}")
    await expect(page.get_by_role("heading", name=task.name)).to_be_visible()
    await page.get_by_role("button", name="催办").click()
    await expect(page.locator("#toast")).to_have_text("已催办，经办人员将收到提醒")
    await log_out(page)

    # --- the officer's bell: 新待办, 即将超期, 催办
    await log_in_as(page, "samr01", "李明")
    count = page.locator("#bell-count")
    await expect(count).to_have_text("3")
    await page.get_by_role("button", name="消息，3 条未读").click()
    panel = page.get_by_role("region", name="消息")
    await expect(panel.locator('[data-kind="urged"]')).to_contain_text("催办")
    await expect(panel.locator('[data-kind="urged"]')).to_contain_text("赵督办")
    await expect(panel.locator('[data-kind="sla_warning"]')).to_contain_text("即将超期")
    await expect(panel.locator('[data-kind="task_assigned"]')).to_contain_text(task.name)
    await screenshot(page, "console-bell.png")
    await panel.locator('[data-kind="urged"]').click()
    await expect(page).to_have_url(re.compile(rf"#/tasks/{task.id}$"))
    await expect(count).to_have_text("2")
    await expect(page.get_by_role("button", name="催办")).to_have_count(0)  # officers do not urge

    # --- 办结 with 抄送 to 王芳
    await page.get_by_role("radio", name="受理", exact=True).check()
    await page.get_by_label("核验意见").fill("材料齐全，符合法定形式，予以受理")
    await page.get_by_text("抄送（选填）").click()
    await page.get_by_role("checkbox", name="王芳（samr02）").check()
    await expect(page.get_by_role("checkbox", name="赵督办（boss）")).to_be_visible()
    async with page.expect_response(lambda r: r.url.endswith("/complete")) as answer:
        await page.get_by_role("button", name="办结").click()
    response = await answer.value
    assert response.status == 200 and response.request.post_data_json["cc"] == ["samr02"]
    await log_out(page)

    # --- the colleague's bell shows the 抄送; opening it leaves a receipt on the timeline
    await log_in_as(page, "samr02", "王芳")
    await page.locator("#bell").click()
    cc = page.get_by_role("region", name="消息").locator('[data-kind="cc"]')
    await expect(cc).to_contain_text("抄送：")
    await expect(cc).to_contain_text("李明")
    await cc.click()
    await expect(page).to_have_url(re.compile(rf"#/tasks/{task.id}$"))
    for _ in range(50):  # the read is posted as the page moves on
        if await CaseEvent.filter(case_id=case.id, kind="cc_read").count():
            break
        await asyncio.sleep(0.1)
    assert await CaseEvent.filter(case_id=case.id, kind="cc_read").count() == 1
    await page.reload()
    await expect(page.locator(".timeline")).to_contain_text("抄送已阅")
    await expect(page.locator(".timeline")).to_contain_text("抄送：王芳（市场监督管理局）")  # by name, not samr02
