"""代理 in the workbench, in real Chromium against a real server: the officer sets a delegation on the
代理 page, the delegate finds the officer's claimed task in 我的 marked 代 李明 and completes it; the
task records the delegate as the signer, 代 the officer. Rules are tested in tests/engine and tests/api."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Page, expect

from engine.store.models import CaseEvent, Delegation, HumanTask
from engine.workbench import staff as desk
from tests.e2e.conftest import Server, screenshot
from tests.e2e.console import add_staff, log_in_as, log_out
from tests.e2e.test_console_ops import new_case

pytestmark = pytest.mark.sqlite_only


async def test_officer_sets_a_delegation_and_the_delegate_completes_the_task(server: Server, desktop: Any) -> None:
    officer = await add_staff("samr01", "李明", ["samr"], ["officer"])
    await add_staff("samr02", "王芳", ["samr"], ["officer"])
    case, task = await new_case(server)
    await desk.claim(officer, str(task.id))

    page: Page = await desktop(server.base_url)
    await log_in_as(page, "samr01", "李明")
    await page.get_by_role("link", name="代理").click()
    await expect(page.get_by_role("heading", name="代理", exact=True)).to_be_visible()
    await page.get_by_label("代理人").select_option("samr02")
    await page.get_by_label("事由").fill("休假")
    async with page.expect_response(lambda r: r.url.endswith("/staff/delegations")
                                    and r.request.method == "POST") as answer:
        await page.get_by_role("button", name="设置代理").click()
    assert (await answer.value).status == 201
    given = page.locator("#delegations-given")
    await expect(given).to_contain_text("王芳")
    await expect(given).to_contain_text("代理中")
    await screenshot(page, "console-delegation.png", full_page=True)
    [made] = await Delegation.all()
    assert (made.officer, made.delegate, made.reason) == ("samr01", "samr02", "休假")
    await log_out(page)

    await log_in_as(page, "samr02", "王芳")
    await page.goto("/console/#/inbox?status=mine")
    row = page.locator(".task-row", has_text=case.case_no)
    await expect(row.locator(".behalf")).to_have_text("代 李明")
    await row.get_by_role("link", name="受理核验").click()
    await expect(page.get_by_role("heading", name="受理核验", exact=True)).to_be_visible()
    await expect(page.locator(".task-header .behalf")).to_have_text("代 李明")
    await page.get_by_role("radio", name="受理", exact=True).check()
    await page.get_by_label("核验意见").fill("材料齐全，符合法定形式，予以受理")
    async with page.expect_response(lambda r: r.url.endswith("/complete")) as answer:
        await page.get_by_role("button", name="办结").click()
    assert (await answer.value).status == 200
    await expect(page).to_have_url(re.compile(r"#/inbox\?status=ready$"))
    done = await HumanTask.get(id=task.id)
    assert (done.state, done.completed_by) == ("completed", "samr02")
    [event] = await CaseEvent.filter(task_id=str(task.id), kind="task_completed")
    assert (event.actor, event.detail["on_behalf_of"], event.detail["on_behalf_of_name"]) == (
        "samr02", "samr01", "李明")
