"""The human loop through the pages only (/m/ on a phone, /console/ on a desktop), against a real
server: a residence permit 补正 for two listed items that the citizen sees without reloading and
answers with files, approved through 会签 by two different officers; an automatic refusal reviewed on
request and overturned; a withdraw; a rectification task showing the rating and the case. A login on
/m/ survives a new tab. Screenshots of each step go to docs/screenshots/loop-*.png.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Page, expect

from engine.citizen.applications import Applicant
from engine.store.certificate_models import Certificate
from engine.store.models import HumanTask, Upload
from tests.e2e.conftest import Server, screenshot
from tests.e2e.console import add_staff, log_in_as
from tests.e2e.test_citizen_h5 import bind_real_name, fill_senior_card, log_in, submit
from tests.files.images import PDF, photo
from tests.processes.test_business_startup import ACCEPT, FORM, ZHAO

pytestmark = pytest.mark.sqlite_only

HUANG = Applicant(id_number="440106199802142083", name="黄丽")  # not local: may apply for the residence permit
LI = Applicant(id_number="310110198606200486", name="李娜")  # 40: the senior card is refused automatically
WANG = Applicant(id_number="310104196103150273", name="王建国")  # the company's legal representative in FORM
ITEMS = ["白底免冠证件照（近6个月）", "房屋租赁合同登记备案证明"]


async def apply_residence_permit(page: Page) -> int:
    await page.goto("/m/#/services/residence-permit")
    await expect(page.locator(".service-title")).to_have_text("居住证申领")
    await page.get_by_label("所在地区").select_option("310115")
    await page.get_by_label("详细地址").fill("浦东新区张杨路1500号3号楼1202室")
    await page.get_by_label("住所类型").select_option(label="租赁房屋")
    await page.get_by_label("居住起始日期").fill("2025-03-01")
    await page.get_by_label("就业单位或就读学校").fill("上海云帆信息科技有限公司")
    await page.get_by_label("联系电话").fill("15013579246")
    await page.get_by_label("证件照回执编号").fill("ZP20261128-0042")
    for file_input in await page.locator('input[type="file"]').all():  # materials at apply, where the page asks
        await file_input.set_input_files(files=[{"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": photo()}])
    status, _, _ = await submit(page)
    assert status == 201
    await expect(page).to_have_url(re.compile(r"#/cases/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


async def open_task(page: Page, case_no: str, name: str) -> None:
    await page.goto("/console/#/inbox?status=ready")
    await page.reload()  # the same hash would keep a list loaded before a colleague's step
    row = page.locator(".task-row", has_text=case_no).filter(has_text=name).first
    await expect(row).to_be_visible()
    await row.get_by_role("link").first.click()
    await expect(page.get_by_role("heading", name=name)).to_be_visible()


async def test_supplement_loop_to_a_countersigned_permit(server: Server, phone: Any, desktop: Any) -> None:
    await add_staff("police01", "陈警官", ["police_station"], ["officer"])
    await add_staff("police02", "刘所长", ["police_station"], ["officer"])
    citizen: Page = await phone(server.base_url)
    await log_in(citizen, "huangli")
    await bind_real_name(citizen, HUANG)
    # a new tab keeps the login (the refresh token is kept as the mini-program keeps it)
    second = await citizen.context.new_page()
    await second.goto("/m/#/me")
    await expect(second.get_by_role("heading", name="我的", exact=True)).to_be_visible()
    await expect(second.locator(".kv")).to_contain_text("已核验")
    await second.close()

    case_id = await apply_residence_permit(citizen)
    # the photo went in with the application (files' uploader on the apply form)
    assert await Upload.filter(case_id=case_id, source="applicant").count() >= 1
    case_no = (await citizen.locator(".case-header .kv").inner_text()).split("办件编号")[1].split()[0]
    await expect(citizen.get_by_role("button", name="撤回申请")).to_be_visible()
    await citizen.evaluate("window.__sameDocument = true")
    await screenshot(citizen, "loop-1-applied.png", full_page=True)

    # --- the officer asks for 补正, listing two items
    officer: Page = await desktop(server.base_url)
    await log_in_as(officer, "police01", "陈警官")
    await open_task(officer, case_no, "派出所受理审核")
    await officer.get_by_role("button", name="退回", exact=True).click()
    dialog = officer.locator("dialog")
    await dialog.get_by_text("退回申请人补正").click()
    await dialog.get_by_label("退回理由").fill("证件照不合格，租赁合同未登记备案，请补充")
    await dialog.get_by_label("补正事项 1").fill(ITEMS[0])
    await dialog.get_by_role("button", name="＋ 添加一项").click()
    await dialog.get_by_label("补正事项 2").fill(ITEMS[1])
    await screenshot(officer, "loop-2-officer-asks.png")
    await dialog.get_by_role("button", name="确认退回").click()
    await expect(officer).to_have_url(re.compile(r"#/inbox"))

    # --- the citizen sees both items without reloading
    card = citizen.locator(".loop-supplement")
    await expect(card).to_be_visible(timeout=10_000)
    await expect(card.locator(".loop-item")).to_have_count(3)  # the two listed and 其他材料
    for item in ITEMS:
        await expect(card.locator(f'.loop-item[data-item="{item}"]')).to_be_visible()
    await expect(card).to_contain_text("证件照不合格")
    assert await citizen.evaluate("window.__sameDocument") is True
    await citizen.goto("/m/#/cases")
    await expect(citizen.locator(".loop-waiting")).to_have_text("待您补正")
    await expect(citizen.locator(".loop-tab-badge")).to_have_text("1")
    await screenshot(citizen, "loop-3-waiting-badge.png")
    await citizen.goto(f"/m/#/cases/{case_id}")

    # --- answered with files: a photo for the first item, a PDF for the second
    card = citizen.locator(".loop-supplement")
    await card.locator(f'.loop-item[data-item="{ITEMS[0]}"] input[type=file]').set_input_files(
        files=[{"name": "证件照.jpg", "mimeType": "image/jpeg", "buffer": photo(96, 128)}])
    await card.locator(f'.loop-item[data-item="{ITEMS[1]}"] input[type=file]').set_input_files(
        files=[{"name": "租赁备案.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    await expect(card.locator(".loop-file-done")).to_have_count(2)
    await expect(card.locator("img.loop-thumb")).to_be_visible()
    await card.get_by_label("补正说明").fill("已重新拍摄证件照并补充租赁备案证明")
    await screenshot(citizen, "loop-4-answer.png", full_page=True)
    await card.get_by_role("button", name="提交补正").click()
    await expect(citizen.locator(".loop-supplement")).to_have_count(0)
    await expect(citizen.locator(".timeline")).to_contain_text("补正材料")

    # --- the officer sees the answer and its files beside the request, approves
    await officer.goto("/console/#/inbox?status=mine")
    await officer.locator(".task-row", has_text=case_no).get_by_role("link").first.click()
    rounds = officer.locator(".loop-round")
    await expect(rounds).to_have_count(1)
    await expect(rounds.locator(f'[data-item="{ITEMS[0]}"] .loop-file')).to_have_count(1)
    await expect(rounds.locator(f'[data-item="{ITEMS[1]}"] .loop-file')).to_contain_text("PDF")
    await expect(rounds).to_contain_text("已重新拍摄证件照并补充租赁备案证明")
    async with officer.expect_popup() as popup_info:  # the file opens with the officer's token, logged
        async with officer.expect_response(lambda r: "/api/v1/staff/files/" in r.url, timeout=30_000) as opened:
            await rounds.locator(f'[data-item="{ITEMS[0]}"] .loop-open').click()
    assert (await opened.value).status == 200 and (await opened.value).headers["content-type"] == "image/jpeg"
    await (await popup_info.value).close()
    # who asked and who acted, by name and department (never police01 or citizen:<id>)
    await expect(rounds.locator(".loop-request .tl-meta")).to_contain_text("陈警官（派出所）")
    metas = await officer.locator(".timeline .tl-meta").all_inner_texts()
    assert "陈警官（派出所）" in metas and "申请人" in metas, metas
    assert not any("citizen:" in m or "police01" in m for m in metas), metas
    await expect(officer.locator(".task-header")).to_contain_text("陈警官（派出所）")  # 认领人, by name
    await officer.evaluate("window.scrollTo(0, 0)")
    await screenshot(officer, "loop-5-officer-sees-answer.png", full_page=True)
    await officer.get_by_text("材料齐全，提交会签").click()
    await officer.get_by_label("审核意见").fill("补正后材料齐全，提交会签")
    async with officer.expect_response(lambda r: r.url.endswith("/complete"), timeout=30_000) as answer:
        await officer.get_by_role("button", name="办结").click()
    assert (await answer.value).status == 200, await (await answer.value).text()

    # --- 会签 by two different officers
    chief: Page = await desktop(server.base_url)
    await log_in_as(chief, "police02", "刘所长")
    for page in (officer, chief):
        await open_task(page, case_no, "会签")
        await page.locator('[data-path="signature.decision"]').get_by_text("同意", exact=True).click()
        await page.locator('[data-path="signature.opinion"]').locator("textarea, input").fill("同意签发")
        async with page.expect_response(lambda r: r.url.endswith("/complete"), timeout=30_000) as answer:
            await page.get_by_role("button", name="办结").click()
        assert (await answer.value).status == 200, await (await answer.value).text()
    signers = await HumanTask.filter(case_id=case_id, name="会签").values_list("completed_by", flat=True)
    assert sorted(signers) == ["police01", "police02"]

    # --- the citizen sees the permit
    await citizen.goto(f"/m/#/cases/{case_id}")
    await expect(citizen.locator(".case-header [data-status]")).to_have_text("已办结", timeout=10_000)
    await expect(citizen.locator(".cert-name")).to_have_text("居住证")
    await expect(citizen.locator(".qr svg")).to_be_visible()
    await screenshot(citizen, "loop-6-permit.png", full_page=True)


async def test_refusal_reviewed_and_overturned(server: Server, phone: Any, desktop: Any) -> None:
    await add_staff("mca01", "周科长", ["mca"], ["officer"])
    citizen: Page = await phone(server.base_url)
    await log_in(citizen, "lina")
    await bind_real_name(citizen, LI)
    await citizen.goto("/m/#/services/senior-card")
    await fill_senior_card(citizen, "13917724680")
    status, _, _ = await submit(citizen)
    assert status == 201
    await expect(citizen.locator(".case-header [data-status]")).to_have_text("已办结")
    await expect(citizen.locator(".result-outcome")).to_have_text("不予")
    case_id = int(citizen.url.rsplit("/", 1)[1])
    await citizen.get_by_role("button", name="申请人工复核").click()
    await citizen.get_by_label("复核理由").fill("本人户籍年龄信息有误，已在派出所更正，请人工复核")
    await citizen.get_by_role("button", name="确认申请人工复核").click()
    await expect(citizen.locator(".loop-review-pending")).to_contain_text("人工复核中")
    await screenshot(citizen, "loop-7-review-requested.png", full_page=True)

    officer: Page = await desktop(server.base_url)
    await log_in_as(officer, "mca01", "周科长")
    case_no = (await HumanTask.get(case_id=case_id, kind="review").prefetch_related("case")).case.case_no
    await open_task(officer, case_no, "自动决定人工复核")
    await expect(officer.locator(".loop-review-card")).to_contain_text("本人户籍年龄信息有误")
    await officer.get_by_text("撤销原决定，改为准予").click()
    await officer.get_by_label("复核理由").fill("经核实申请人户籍与年龄信息已更正，符合条件，准予办理")
    await screenshot(officer, "loop-8-review-overturn.png", full_page=True)
    await officer.get_by_role("button", name="提交复核结论").click()
    await expect(officer).to_have_url(re.compile(r"#/inbox"))

    await expect(citizen.locator(".loop-verdict")).to_contain_text("撤销原决定", timeout=10_000)
    await expect(citizen.locator(".result-outcome")).to_have_text("准予")
    await expect(citizen.locator(".result .tag")).to_have_text("人工审核")  # no longer 秒批
    await expect(citizen.locator(".cert-name")).to_have_text("老年人优待证")
    assert await Certificate.filter(case_id=case_id, state="01").count() == 1
    await screenshot(citizen, "loop-9-overturned.png", full_page=True)


async def test_withdraw_before_acceptance(server: Server, phone: Any) -> None:
    citizen: Page = await phone(server.base_url)
    await log_in(citizen, "huangli2")
    await bind_real_name(citizen, HUANG)
    await apply_residence_permit(citizen)
    await citizen.get_by_role("button", name="撤回申请").click()
    await citizen.get_by_label("撤回原因（选填）").fill("居住地址填错了，重新申请")
    await citizen.get_by_role("button", name="确认撤回申请").click()
    await expect(citizen.locator(".case-header [data-status]")).to_have_text("已撤回")
    await expect(citizen.get_by_role("button", name="撤回申请")).to_have_count(0)
    await expect(citizen.locator(".timeline")).to_contain_text("申请人撤回")
    await screenshot(citizen, "loop-10-withdrawn.png", full_page=True)


async def test_rectification_task_shows_rating_and_case(server: Server, phone: Any, desktop: Any) -> None:
    await add_staff("mca01", "周科长", ["mca"], ["officer"])
    citizen: Page = await phone(server.base_url)
    await log_in(citizen, "lina")
    await bind_real_name(citizen, LI)
    await citizen.goto("/m/#/services/senior-card")
    await fill_senior_card(citizen, "13917724680")
    await submit(citizen)
    rating = citizen.locator(".rating")
    await rating.get_by_text("非常不满意", exact=True).click()
    await rating.get_by_label("评价内容").fill("拒绝理由看不懂，也没人解释")
    await rating.get_by_role("button", name="提交评价").click()
    rated = citizen.locator(".rated")
    await expect(rated).to_contain_text("整改单号 RECTIFICATION-")
    number = re.search(r"RECTIFICATION-[0-9A-Z-]+", await rated.inner_text()).group(0)  # type: ignore[union-attr]
    await citizen.reload()  # the number stays on the case
    await expect(citizen.locator(".rated")).to_contain_text(number)

    officer: Page = await desktop(server.base_url)
    await log_in_as(officer, "mca01", "周科长")
    await officer.goto("/console/#/inbox?status=ready")
    await officer.locator(".task-row", has_text=number).get_by_role("link").first.click()
    facts = officer.locator(".card", has_text="差评信息")
    await expect(facts).to_contain_text("非常不满意")
    await expect(facts).to_contain_text("拒绝理由看不懂，也没人解释")
    await expect(facts).to_contain_text("老年人优待证办理")
    await expect(facts.locator(".loop-phone")).to_have_text("139****4680")
    await facts.get_by_role("button", name="查看完整号码").click()
    await expect(facts.locator(".loop-phone")).to_have_text("13917724680")
    await officer.evaluate("window.scrollTo(0, 0)")
    await screenshot(officer, "loop-11-rectification.png", full_page=True)

    await citizen.goto("/m/#/me")
    await citizen.get_by_role("link", name="我的信息被谁查看").click()
    await expect(citizen.locator(".loop-log-row").first).to_contain_text("差评回访")
    await screenshot(citizen, "loop-12-access-log.png")


async def test_the_legal_representative_sees_the_companys_licence(server: Server, phone: Any) -> None:
    """赵强 files the business start-up bundle for a company whose legal representative is 王建国;
    王建国 never applied, yet his 证照 tab shows the licence with the company name in full and its QR."""
    form = {k: v for k, v in FORM.items() if k not in {"need_seal", "need_invoices", "employees",
                                                      "need_bank_account", "bank_name"}}
    started = await server.app.ctx.applications.apply("business-startup", form, applicant=ZHAO)
    [intake] = started.ready_tasks
    await server.engine.complete_task(intake.id, ACCEPT, actor="samr01", opinion="予以受理")
    citizen: Page = await phone(server.base_url)
    await log_in(citizen, "wangjianguo")
    await bind_real_name(citizen, WANG)
    await citizen.get_by_role("navigation", name="主导航").get_by_role("link", name="证照").click()
    licence = citizen.locator(".cert", has_text="营业执照")
    await expect(licence).to_be_visible()
    await expect(licence).to_contain_text(FORM["company_name"])  # a company name is public: in full
    await citizen.locator("li", has=licence).get_by_role("button", name="亮证（出示二维码）").click()
    await expect(citizen.locator(".qr svg")).to_be_visible()
    await screenshot(citizen, "loop-13-representative-licence.png", full_page=True)
