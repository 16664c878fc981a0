"""The approval operations of the workbench's task page, pressed as an officer would, in real
Chromium against a real server: 退回 to an earlier step and 退回申请人补正 (the walk-in citizen's
补正 then taken at the window), 转办 to a colleague,
加签 with the signer's 加签意见, 撤回 of one's own completion, and the refusals — another officer
got there first (409 → 已被他人办理，请刷新), another department's task (403), a missing reason.
The operations' rules themselves are tested over HTTP in tests/api; here the page must offer the
right buttons, send the right request and say in Chinese what happened.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Page, expect

from engine.kernel.cases import OPEN_TASK_STATES
from engine.store.models import Case, CaseEvent, HumanTask, StaffUser
from engine.workbench import staff as desk
from tests.e2e.conftest import Server
from tests.e2e.console import add_staff, log_in_as, log_out
from tests.processes.test_business_startup import ACCEPT, FORM, WANG

pytestmark = pytest.mark.sqlite_only


async def new_case(server: Server) -> tuple[Case, HumanTask]:
    """A business-startup case taken at the window; its 受理核验 task (市场监督管理局) is ready."""
    result = await server.app.ctx.applications.apply("business-startup", FORM, applicant=WANG, channel="window",
                                                     actor="win01")
    case = await Case.get(id=result.id)
    [task] = await HumanTask.filter(case_id=case.id, state="ready")
    return case, task


async def open_task(page: Page, case: Case, name: str) -> None:
    """From the inbox, open the task ``name`` of ``case``."""
    await page.goto("/console/#/inbox?status=ready")
    row = page.locator(".task-row", has_text=case.case_no).filter(has_text=name)
    await row.get_by_role("link", name=name).click()
    await expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()


@pytest.fixture
async def officers() -> None:
    await add_staff("samr01", "李明", ["samr"], ["officer"])
    await add_staff("samr02", "王芳", ["samr"], ["officer"])
    await add_staff("psb01", "赵刚", ["psb"], ["officer"])
    await add_staff("hrss01", "孙丽", ["hrss"], ["officer"])
    await add_staff("win01", "周敏", ["window"], ["clerk"])


async def test_return_to_an_earlier_step_and_to_the_applicant(server: Server, desktop: Any, officers: None) -> None:
    case, intake = await new_case(server)
    await server.engine.complete_task(intake.id, ACCEPT, actor="samr01")
    page: Page = await desktop(server.base_url)
    await log_in_as(page, "psb01", "赵刚")
    await open_task(page, case, "公章刻制备案")

    # 退回 offers the completed step and 补正; a reason is required
    await page.get_by_role("button", name="退回", exact=True).click()
    dialog = page.get_by_role("dialog", name="退回")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("radio", name=re.compile("退回到「受理核验」")).check()
    await expect(dialog.get_by_role("radio", name=re.compile("退回申请人补正"))).to_be_visible()
    await dialog.get_by_role("button", name="确认退回").click()
    await expect(dialog.locator('[data-path="reason"] .field-error')).to_have_text("请填写退回理由")
    await expect(dialog.get_by_role("alert")).to_have_text("请完成标注的必填项", use_inner_text=True)
    await dialog.get_by_label("退回理由").fill("住所使用证明与登记住所不一致，请重新核验")
    async with page.expect_response(lambda r: r.url.endswith("/return")) as answer:
        await dialog.get_by_role("button", name="确认退回").click()
    response = await answer.value
    assert response.status == 200
    assert response.request.post_data_json == {"reason": "住所使用证明与登记住所不一致，请重新核验",
                                               "to_step": "intake_check"}
    await expect(dialog).to_be_hidden()
    await expect(page).to_have_url(re.compile(r"#/inbox\?status=ready$"))
    await expect(page.locator(".task-row", has_text=case.case_no)).to_have_count(0)
    reopened = await HumanTask.get(case_id=case.id, task_spec="intake_check", state__in=OPEN_TASK_STATES)
    assert reopened.department == "samr"
    assert not await HumanTask.filter(case_id=case.id, department="psb", state__in=OPEN_TASK_STATES).exists()

    # 受理核验 again: the officer sends the case back to the applicant for 补正
    await log_out(page)
    await log_in_as(page, "samr01", "李明")
    await open_task(page, case, "受理核验")
    await expect(page.locator(".timeline")).to_contain_text("住所使用证明与登记住所不一致")
    await page.get_by_role("button", name="退回", exact=True).click()
    dialog = page.get_by_role("dialog", name="退回")
    await dialog.get_by_role("radio", name=re.compile("退回申请人补正")).check()
    await dialog.get_by_label("退回理由").fill("请补充提交住所（经营场所）使用证明原件扫描件")
    async with page.expect_response(lambda r: r.url.endswith("/return")) as answer:
        await dialog.get_by_role("button", name="确认退回").click()
    response = await answer.value
    assert response.status == 200, await response.text()
    assert response.request.post_data_json == {"reason": "请补充提交住所（经营场所）使用证明原件扫描件"}
    await expect(page).to_have_url(re.compile(r"#/inbox\?status=ready$"))
    await page.get_by_role("navigation", name="任务分类").locator('[data-status="waiting"]').click()
    waiting = page.locator(".task-row", has_text=case.case_no)
    await expect(waiting).to_contain_text("待补正")
    await waiting.get_by_role("link", name="受理核验").click()
    await expect(page.locator(".task-form")).to_have_count(0)
    await expect(page.locator(".card .alert-info")).to_contain_text("已退回申请人补正，等待补正材料")

    # the citizen of this window case comes back to the window: the clerk takes the 补正
    await log_out(page)
    await log_in_as(page, "win01", "周敏")
    side = page.locator(".task-row", has_text=case.case_no)
    await expect(side.locator(".tag")).to_have_text("补正")
    await side.get_by_role("link", name="补正材料：受理核验").click()
    await expect(page.locator(".supply-reason")).to_contain_text("请补充提交住所（经营场所）使用证明原件扫描件")
    await page.get_by_label("补正说明").fill("申请人到窗口补交租赁合同原件扫描件")
    await page.get_by_label("补交材料").fill("住所使用证明（补正）、租赁合同")
    async with page.expect_response(lambda r: r.url.endswith("/complete")) as answer:
        await page.get_by_role("button", name="提交补正").click()
    response = await answer.value
    assert response.status == 200, await response.text()
    assert response.request.post_data_json["data"] == {
        "note": "申请人到窗口补交租赁合同原件扫描件",
        "materials": [{"name": "住所使用证明（补正）"}, {"name": "租赁合同"}]}
    await expect(page.locator("#toast")).to_have_text("补正已提交，办件回到经办人")
    held = await HumanTask.get(case_id=case.id, task_spec="intake_check", state__in=OPEN_TASK_STATES)
    assert held.state == "claimed" and held.assignee == "samr01"


async def test_transfer_and_a_conflict(server: Server, desktop: Any, officers: None) -> None:
    case, task = await new_case(server)
    other, other_task = await new_case(server)
    page: Page = await desktop(server.base_url)
    await log_in_as(page, "samr01", "李明")

    # 转办 to a colleague of the department, chosen from a list
    await open_task(page, case, "受理核验")
    await page.get_by_role("button", name="转办").click()
    dialog = page.get_by_role("dialog", name="转办")
    await expect(dialog.get_by_label("转办给").locator("option")).to_have_text(["请选择本部门同事", "王芳（samr02）"])
    await dialog.get_by_role("button", name="确认转办").click()
    await expect(dialog.locator(".field-error").first).to_have_text("请选择接收人")
    await dialog.get_by_label("转办给").select_option("samr02")
    await dialog.get_by_label("转办说明").fill("王芳负责该片区")
    async with page.expect_response(lambda r: r.url.endswith("/transfer")) as answer:
        await dialog.get_by_role("button", name="确认转办").click()
    response = await answer.value
    assert response.status == 200
    assert response.request.post_data_json == {"to": "samr02", "reason": "王芳负责该片区"}
    await expect(page.locator("#toast")).to_have_text("已转办给 王芳")
    assert (await HumanTask.get(id=task.id)).assignee == "samr02"
    assert await CaseEvent.filter(case_id=case.id, kind="task_transferred", actor="samr01").exists()

    # another officer claims the task the page shows: the page says so and offers 刷新
    await open_task(page, other, "受理核验")
    samr02 = await StaffUser.get(username="samr02")
    await desk.claim(samr02, str(other_task.id))
    async with page.expect_response(lambda r: r.url.endswith("/claim")) as answer:
        await page.get_by_role("button", name="认领", exact=True).click()
    assert (await answer.value).status == 409
    alert = page.locator(".task-form .alert-error")
    await expect(alert).to_contain_text("已被他人办理，请刷新")
    await alert.get_by_role("button", name="刷新").click()
    await expect(page.locator(".task-header .state")).to_have_text("已认领")
    await expect(page.get_by_text("该任务已由 samr02 认领")).to_be_visible()
    await expect(page.get_by_role("button", name="办结")).to_have_count(0)  # the alert above says why

    # another department's task is refused in Chinese
    await log_out(page)
    await log_in_as(page, "psb01", "赵刚")
    await page.goto(f"/console/#/tasks/{task.id}")
    await expect(page.locator(".alert-error")).to_have_text("该任务不属于您所在的部门")

    # the colleague finds the transferred task and completes it
    await log_out(page)
    await log_in_as(page, "samr02", "王芳")
    await open_task(page, case, "受理核验")
    await expect(page.locator(".timeline")).to_contain_text("转办")
    await page.get_by_role("radio", name="受理", exact=True).check()
    await page.get_by_label("核验意见").fill(ACCEPT["intake_opinion"])
    async with page.expect_response(lambda r: r.url.endswith("/complete")) as answer:
        await page.get_by_role("button", name="办结").click()
    assert (await answer.value).status == 200


async def test_add_signer_and_the_signers_opinion(server: Server, desktop: Any, officers: None) -> None:
    case, task = await new_case(server)
    page: Page = await desktop(server.base_url)
    await log_in_as(page, "samr01", "李明")
    await open_task(page, case, "受理核验")

    # 加签 before me: the colleague must sign before 办结 is offered
    await page.get_by_role("button", name="加签").click()
    dialog = page.get_by_role("dialog", name="加签")
    await dialog.get_by_role("combobox", name="加签人").select_option("samr02")
    await expect(dialog.get_by_role("radio", name=re.compile("在我之前"))).to_be_checked()
    await dialog.get_by_label("加签说明").fill("请核对股东身份信息")
    async with page.expect_response(lambda r: r.url.endswith("/add-signer")) as answer:
        await dialog.get_by_role("button", name="确认加签").click()
    response = await answer.value
    assert response.status == 201
    assert response.request.post_data_json == {"user": "samr02", "position": "before", "opinion": "请核对股东身份信息"}
    await expect(page.locator("#toast")).to_have_text("已请 王芳 加签")
    await expect(page.locator(".timeline")).to_contain_text("加签")
    # 办结 stays on the page, disabled, saying why (it used to vanish without a word)
    complete = page.get_by_role("button", name="办结")
    await expect(complete).to_be_disabled()
    why = page.locator('.blocked-reason[data-blocked="complete"]')
    await expect(why).to_have_text("暂不能办结：需等待加签人 samr02 签署意见后才能办结")
    assert await complete.get_attribute("aria-describedby") == await why.get_attribute("id")

    # the signer finds the side task in the inbox and gives a 加签意见
    await log_out(page)
    await log_in_as(page, "samr02", "王芳")
    await open_task(page, case, "加签：受理核验")
    await page.get_by_role("radio", name="同意", exact=True).check()
    await page.get_by_role("button", name="提交加签意见").click()
    await expect(page.locator('.sign-form [data-path="opinion"] .field-error')).to_have_text("请填写加签意见")
    await page.get_by_label("加签意见").fill("股东身份信息核对无误")
    async with page.expect_response(lambda r: r.url.endswith("/sign")) as answer:
        await page.get_by_role("button", name="提交加签意见").click()
    response = await answer.value
    assert response.status == 200, await response.text()
    assert response.request.post_data_json == {"decision": "approve", "opinion": "股东身份信息核对无误"}
    await expect(page).to_have_url(re.compile(r"#/inbox\?status=ready$"))

    # the officer can now complete
    await log_out(page)
    await log_in_as(page, "samr01", "李明")
    await open_task(page, case, "受理核验")
    await expect(page.locator(".timeline")).to_contain_text("股东身份信息核对无误")
    await page.get_by_role("radio", name="受理", exact=True).check()
    await page.get_by_label("核验意见").fill(ACCEPT["intake_opinion"])
    async with page.expect_response(lambda r: r.url.endswith("/complete")) as answer:
        await page.get_by_role("button", name="办结").click()
    assert (await answer.value).status == 200
    assert (await HumanTask.get(id=task.id)).state == "completed"


async def test_withdraw_own_completion(server: Server, desktop: Any, officers: None) -> None:
    case, intake = await new_case(server)
    await server.engine.complete_task(intake.id, ACCEPT, actor="samr01")
    task = await HumanTask.get(case_id=case.id, task_spec="hrss_social_insurance")
    page: Page = await desktop(server.base_url)
    await log_in_as(page, "hrss01", "孙丽")
    await open_task(page, case, "社会保险登记")
    await page.get_by_label("单位社会保险登记编号").fill("3101152026113001")
    await page.locator('[data-path="si_opinion"] textarea').fill("单位参保登记完成")
    async with page.expect_response(lambda r: r.url.endswith("/complete")) as answer:
        await page.get_by_role("button", name="办结").click()
    assert (await answer.value).status == 200

    # from 已办: 撤回 asks first, then the task is back, claimed by the officer, its form open
    await page.get_by_role("navigation", name="任务分类").locator('[data-status="done"]').click()
    await page.locator(".task-row", has_text=case.case_no).get_by_role("link", name="社会保险登记").click()
    await expect(page.locator(".task-header .state")).to_have_text("已办结")
    await page.get_by_role("button", name="撤回").click()
    dialog = page.get_by_role("dialog", name="撤回已办")
    await expect(dialog).to_contain_text("下一环节已开始办理的不能撤回")
    async with page.expect_response(lambda r: r.url.endswith("/withdraw")) as answer:
        await dialog.get_by_role("button", name="确认撤回").click()
    assert (await answer.value).status == 200
    await expect(page.locator("#toast")).to_have_text("已撤回，任务回到您的待办")
    await expect(page.locator(".task-header .state")).to_have_text("已认领")
    await expect(page.get_by_role("button", name="办结")).to_be_visible()
    back = await HumanTask.get(id=task.id)
    assert back.state == "claimed" and back.assignee == "hrss01"
    assert await CaseEvent.filter(case_id=case.id, kind="completion_withdrawn", actor="hrss01").exists()


async def test_the_second_countersign_shows_why_the_same_officer_cannot_sign_it(
        server: Server, desktop: Any) -> None:
    """会签 by two different officers (distinctSigners): the officer who signed one instance sees the
    other one's 办结 disabled with the reason; a colleague signs it."""
    from tests.processes.conftest import SINGLE_MOTHER
    from tests.processes.test_residence_permit import APPROVE, FORM, sign

    await add_staff("police01", "周海峰", ["police_station"], ["officer"])
    await add_staff("police02", "吴洁", ["police_station"], ["officer"])
    started = await server.app.ctx.applications.apply("residence-permit", FORM, applicant=SINGLE_MOTHER)
    review = await server.engine.complete_task(started.ready_tasks[0].id, APPROVE, actor="police01")
    first, second = review.ready_tasks
    await server.engine.complete_task(first.id, sign("approve", "同意"), actor="police01")
    page: Page = await desktop(server.base_url)
    await log_in_as(page, "police01", "周海峰")
    await page.goto(f"/console/#/tasks/{second.id}")
    await expect(page.get_by_role("heading", name="会签", exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="办结")).to_be_disabled()
    await expect(page.locator('.blocked-reason[data-blocked="complete"]')).to_contain_text(
        "您已签署本办件的会签，会签须由不同人员分别签署")
    await expect(page.get_by_role("button", name="认领")).to_have_count(0)
    await expect(page.locator('.blocked-reasons [data-blocked="claim"]')).to_have_count(0)  # said once
    await log_out(page)
    await log_in_as(page, "police02", "吴洁")
    await page.goto(f"/console/#/tasks/{second.id}")
    await expect(page.get_by_role("button", name="办结")).to_be_enabled()
    await expect(page.locator(".blocked-reason")).to_have_count(0)


async def test_the_applicants_own_account_sees_why_it_cannot_handle_the_case(
        server: Server, desktop: Any) -> None:
    """回避 of one's own case: police02's account is linked to 黄丽's ID number; on her application the
    page shows 办结 disabled with the reason (no silently missing button); a colleague handles it."""
    from engine.accountability import PiiKeys
    from engine.workbench import link_identity
    from tests.processes.conftest import SINGLE_MOTHER
    from tests.processes.test_residence_permit import FORM

    await add_staff("police01", "周海峰", ["police_station"], ["officer"])
    await add_staff("police02", "吴洁", ["police_station"], ["officer"])
    await link_identity("police02", SINGLE_MOTHER.id_number,
                        pii_key=PiiKeys.from_settings(server.app.ctx.settings).blind_index_key)
    started = await server.app.ctx.applications.apply("residence-permit", FORM, applicant=SINGLE_MOTHER)
    [review] = started.ready_tasks
    page: Page = await desktop(server.base_url)
    await log_in_as(page, "police02", "吴洁")
    await page.goto(f"/console/#/tasks/{review.id}")
    await expect(page.get_by_role("button", name="办结")).to_be_disabled()
    await expect(page.locator('.blocked-reason[data-blocked="complete"]')).to_contain_text(
        "您是本办件的申请人或申请所涉人员，按回避规定不能办理与本人有关的办件")
    await log_out(page)
    await log_in_as(page, "police01", "周海峰")
    await page.goto(f"/console/#/tasks/{review.id}")
    await expect(page.get_by_role("button", name="办结")).to_be_enabled()
    await expect(page.locator(".blocked-reason")).to_have_count(0)
