"""The staff workbench (/console/) in a desktop-sized Chromium against a real server.

An officer of 市场监督管理局 logs in, finds the intake check of a business-startup case in the inbox
with its due badge and counts, opens it (case summary with the applicant masked, materials,
timeline, the task form from its ui_spec), is told next to the field what is wrong with a bad
submit, then accepts the case; the task leaves the 待办 tab and the case moves on to its next tasks.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import Page, expect

from engine.kernel.cases import OPEN_TASK_STATES
from engine.store.models import Case, HumanTask
from tests.e2e.conftest import Server, screenshot
from tests.e2e.console import CHINESE, PASSWORD, add_staff, log_in
from tests.processes.test_business_startup import FORM, WANG

pytestmark = pytest.mark.sqlite_only


async def intake_case(server: Server) -> tuple[Case, HumanTask]:
    """A business-startup case taken at the window, its intake check made overdue."""
    result = await server.app.ctx.applications.apply("business-startup", FORM, applicant=WANG, channel="window",
                                                     actor="clerk01")
    case = await Case.get(id=result.id)
    [task] = await HumanTask.filter(case_id=case.id, state="ready")
    assert task.task_spec == "intake_check" and task.department == "samr"
    await HumanTask.filter(id=task.id).update(due_at=server.engine.deps.clock() - timedelta(hours=2))
    return case, task


async def test_officer_accepts_a_case_from_the_inbox(server: Server, desktop: Any) -> None:
    await add_staff("samr01", "李明", ["samr"], ["officer"])
    await add_staff("samr02", "王芳", ["samr"], ["officer"])  # a colleague: 转办 and 加签 are offered
    case, task = await intake_case(server)
    page: Page = await desktop(server.base_url)

    # --- login: a wrong password is refused in Chinese, the right one opens the inbox
    await log_in(page, "samr01", "wrong-password")
    alert = page.locator(".login-form .alert-error")
    await expect(alert).to_be_visible()
    assert CHINESE.search(await alert.inner_text())
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录", exact=True).click()
    await expect(page.get_by_role("heading", name="我的工作台")).to_be_visible()
    await expect(page.locator("#who")).to_contain_text("李明（samr01）")

    # --- the inbox: the task with its overdue badge and the counts
    tabs = page.get_by_role("navigation", name="任务分类")
    await expect(tabs.locator('[data-status="ready"]')).to_have_attribute("aria-current", "page")
    await expect(tabs.locator('[data-status="ready"] .count')).to_have_text("1")
    await expect(page.locator('.chips [data-due="overdue"] .count')).to_have_text("1")
    row = page.locator(".task-row", has_text=case.case_no)
    await expect(row).to_be_visible()
    await expect(row).to_contain_text("企业开办")
    await expect(row).to_contain_text(task.name)
    await expect(row.locator(".badge")).to_have_text("已超期")
    await expect(row.locator(".badge")).to_have_attribute("data-due", "overdue")
    await page.locator('.chips [data-due="today"]').click()
    await expect(page.locator(".task-row")).to_have_count(0)
    await page.locator('.chips [data-due="overdue"]').click()
    await expect(page.locator(".task-row")).to_have_count(1)
    await screenshot(page, "console-inbox.png", full_page=True)

    # --- the task: case summary (applicant masked), materials, timeline, the form
    await page.locator(".task-row").get_by_role("link", name=task.name).click()
    await expect(page).to_have_url(re.compile(rf"#/tasks/{task.id}$"))
    await expect(page.get_by_role("heading", name=task.name)).to_be_visible()
    summary = page.locator(".task-header")
    await expect(summary).to_contain_text(case.case_no)
    await expect(summary).to_contain_text("办理中")
    await expect(summary.locator(".badge")).to_have_text("已超期")
    assert WANG.id_number not in await summary.inner_text()
    assert WANG.name not in await summary.inner_text()
    assert await page.locator(".material").count() >= 1
    await expect(page.locator(".timeline li").first).to_be_visible()

    # the operations the task allows (its `actions`), as buttons
    for name in ("办结", "认领", "退回", "转办", "加签"):
        await expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="撤回")).to_have_count(0)

    # claim, unclaim: the buttons follow the state
    await page.get_by_role("button", name="认领", exact=True).click()
    await expect(page.locator(".task-header .state")).to_have_text("已认领")
    await page.get_by_role("button", name="释放").click()
    await expect(page.locator(".task-header .state")).to_have_text("待认领")

    # a comment lands on the timeline
    await page.get_by_label("批注").fill("申请人电话已核实")
    await page.get_by_role("button", name="发表批注").click()
    await expect(page.locator(".timeline")).to_contain_text("申请人电话已核实")

    # --- a bad submit: the message stands next to the field
    await page.get_by_role("radio", name="受理", exact=True).check()
    await page.get_by_label("核验意见").fill("好")  # shorter than 2 characters
    async with page.expect_response(lambda r: r.url.endswith("/complete")) as answer:
        await page.get_by_role("button", name="办结").click()
    assert (await answer.value).status == 422
    error = page.locator('[data-path="intake_opinion"] .field-error')
    await expect(error).to_be_visible()
    assert CHINESE.search(await error.inner_text())
    await expect(page.get_by_label("核验意见")).to_have_attribute("aria-invalid", "true")
    assert (await HumanTask.get(id=task.id)).state == "ready"  # the auto-claim was undone
    await page.get_by_label("办理意见").fill("窗口核验通过")
    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, "console-task.png", full_page=True)

    await page.get_by_label("核验意见").fill("材料齐全，符合法定形式，予以受理")
    await expect(error).to_be_hidden()  # editing the field takes the message away
    await expect(page.get_by_label("核验意见")).not_to_have_attribute("aria-invalid", "true")

    # --- complete: back to the inbox, the task is no longer ready, the case moved on
    async with page.expect_response(lambda r: r.url.endswith("/complete")) as answer:
        await page.get_by_role("button", name="办结").click()
    assert (await answer.value).status == 200
    await expect(page).to_have_url(re.compile(r"#/inbox\?status=ready$"))
    await expect(page.locator(".task-row", has_text=case.case_no)).to_have_count(0)
    await expect(tabs.locator('[data-status="done"] .count')).to_have_text("1")
    done = await HumanTask.get(id=task.id)
    assert done.state == "completed" and done.completed_by == "samr01"
    following = await HumanTask.filter(case_id=case.id, state__in=OPEN_TASK_STATES)
    assert following and all(t.task_spec != "intake_check" for t in following)
    await tabs.locator('[data-status="done"]').click()
    await expect(page.locator(".task-row", has_text=case.case_no)).to_contain_text("已办结")
