"""Browser: the citizen sees the 补正 message badge on /m/, opens the 消息 tab and follows the
message to the case, which shows what to supply; the phone field says what will be sent; 催办
works once a working day."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect

from engine.citizen.applications import Applicant
from engine.kernel.supplement import request_supplement
from engine.store.models import HumanTask
from tests.e2e.conftest import Server, screenshot
from tests.e2e.test_citizen_h5 import bind_real_name, fill_senior_card, log_in, submit

pytestmark = pytest.mark.sqlite_only

ZHANG = Applicant(id_number="110101195605100718", name="张卫东")  # 70, not local: officer review
REASON = "请上传本市居住证明（居住证或房产证）"


async def test_supplement_badge_leads_to_the_case(server: Server, phone: Any) -> None:
    page = await phone(server.base_url)
    await log_in(page, "zhang")
    await bind_real_name(page, ZHANG)
    await page.get_by_role("link", name=re.compile("老年人优待证")).first.click()
    note = page.locator(".phone-note")
    await expect(note).to_contain_text("办理进度将以短信通知此号码")
    await expect(page.get_by_label("联系电话")).to_have_attribute("aria-describedby", re.compile(note_id := ".*-sms"))
    await fill_senior_card(page, "13601015566")
    status, _, _ = await submit(page)
    assert status == 201
    await expect(page.get_by_role("heading", name=re.compile("老年人优待证"))).to_be_visible()
    case_id = int(page.url.rsplit("/", 1)[1])
    badge = page.locator("#msg-badge")
    await expect(badge).to_have_text("1")  # 申请已提交
    await page.get_by_role("button", name="催办").click()
    await expect(page.get_by_text("已催办，经办人员将收到提醒")).to_be_visible()
    await page.get_by_role("button", name="催办").click()
    await expect(page.get_by_text("今天已催办过该办件，请下一个工作日再催办")).to_be_visible()

    [task] = await HumanTask.filter(case_id=case_id, state="ready")
    await request_supplement(server.engine, task, actor="mca01", reason=REASON)
    await page.goto("/m/#/services")
    await expect(badge).to_have_text("2")
    await expect(page.get_by_role("link", name="消息，2 条未读")).to_be_visible()
    await screenshot(page, "m-messages-badge.png")

    await page.get_by_role("link", name=re.compile("^消息")).click()
    await expect(page.get_by_role("heading", name="消息", exact=True)).to_be_visible()
    item = page.locator('.message[data-kind="supplement_requested"]')
    await expect(item).to_contain_text("请补正材料")
    await expect(item).to_contain_text(REASON)
    await expect(page.get_by_role("checkbox", name="请补正材料")).to_be_visible()  # the subscribe choice
    await screenshot(page, "m-messages.png", full_page=True)
    await item.click()
    await expect(page).to_have_url(re.compile(f"#/cases/{case_id}$"))
    await expect(page.get_by_text(REASON).first).to_be_visible()
    await expect(badge).to_have_text("1")  # the 补正 message is read now
    assert note_id
