"""Window intake (前台一口受理) through the workbench, end to end in real Chromium.

A citizen has bound their ID number on the citizen page; a clerk at the window files a 老年人优待证
case for them in /console/ (service, name, ID number, the service's form rendered from its schema,
a scanned ID card; a wrong ID number, a file that is no scan and one over the size limit are
refused next to their inputs); the 民政局 officer finds the case in the inbox and approves it; the
citizen's page shows the case done.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from engine.store.identity_models import Citizen
from engine.store.models import Case, CaseEvent
from tests.e2e.conftest import screenshot
from tests.e2e.console import CHINESE, add_staff, log_in_as
from tests.e2e.test_citizen_h5 import ZHANG, bind_real_name
from tests.e2e.test_citizen_h5 import log_in as citizen_log_in
from tests.engine.platform.test_uploads import EXE, PDF

pytestmark = pytest.mark.sqlite_only

MAX_BYTES = 64 * 1024


def scan(name: str, body: bytes) -> dict[str, Any]:
    return {"name": name, "mimeType": "application/pdf", "buffer": body}


async def test_clerk_intakes_officer_approves_citizen_sees_done(server_factory: Any, desktop: Any, phone: Any,
                                                                 tmp_path: Path) -> None:
    server = await server_factory(UPLOAD_DIR=str(tmp_path / "uploads"), UPLOAD_MAX_BYTES=MAX_BYTES)
    await add_staff("win01", "周敏", ["window"], ["clerk"])
    await add_staff("mca01", "陈静", ["mca"], ["officer"])

    # --- the citizen has an account with their ID number bound
    citizen: Page = await phone(server.base_url)
    await citizen_log_in(citizen, "zhangweidong")
    await bind_real_name(citizen, ZHANG)

    # --- the clerk opens 窗口受理 and chooses the service: its form and materials appear
    clerk: Page = await desktop(server.base_url)
    await log_in_as(clerk, "win01", "周敏")
    await clerk.get_by_role("navigation", name="工作台导航").get_by_role("link", name="窗口受理").click()
    await expect(clerk.get_by_role("heading", name="窗口受理")).to_be_visible()
    await clerk.get_by_label("办理事项").select_option("senior-card")
    await expect(clerk.get_by_label("详细地址")).to_be_visible()
    await expect(clerk.locator(".intake-material", has_text="居民身份证")).to_be_visible()
    await expect(clerk.locator(".intake-material", has_text="户籍信息")).to_contain_text("由共享数据获取")

    await clerk.get_by_label("申请人姓名").fill(ZHANG.name)
    await clerk.get_by_label("申请人身份证号").fill(ZHANG.id_number[:-1] + "1")  # wrong check digit
    await clerk.get_by_label("申请人手机号").fill("13912345678")
    await clerk.get_by_label("联系电话").fill("1391234567")  # one digit short
    await clerk.get_by_label("所在地区").select_option("310104")
    await clerk.get_by_label("详细地址").fill("漕溪北路100弄1号")

    # a file that is not a scan is refused as soon as it is chosen
    id_card = clerk.locator(".intake-material", has_text="居民身份证")
    await id_card.locator("input[type=file]").set_input_files([scan("身份证.pdf", EXE)])
    await expect(id_card.locator(".field-error")).to_contain_text("仅支持 PDF、JPG、PNG")
    await expect(id_card.locator(".scan")).to_have_count(0)

    # the wrong ID number comes back next to its field; nothing is filed
    async with clerk.expect_response(lambda r: r.url.endswith("/staff/applications")) as answer:
        await clerk.get_by_role("button", name="受理并立案").click()
    assert (await answer.value).status == 422
    id_error = clerk.locator('[data-path="id_number"] .field-error')
    await expect(id_error).to_be_visible()
    assert CHINESE.search(await id_error.inner_text())
    await expect(clerk.get_by_label("申请人身份证号")).to_have_attribute("aria-invalid", "true")
    await clerk.get_by_label("申请人身份证号").fill(ZHANG.id_number)
    await expect(id_error).to_be_hidden()

    # then the application form's own 联系电话 is refused inside the form, not in the applicant's
    async with clerk.expect_response(lambda r: r.url.endswith("/staff/applications")) as answer:
        await clerk.get_by_role("button", name="受理并立案").click()
    assert (await answer.value).status == 422
    form_phone = clerk.locator('.intake-form [data-path="phone"]')
    await expect(form_phone.locator(".field-error")).to_contain_text("11位")
    await expect(clerk.locator('.grid-3 [data-path="phone"] .field-error')).to_be_hidden()
    await clerk.get_by_label("联系电话").fill("13912345678")

    # a scan over the size limit: the server's 413 is shown with the materials
    await id_card.locator("input[type=file]").set_input_files([scan("身份证.pdf", PDF + b"0" * MAX_BYTES)])
    await expect(id_card.locator(".scan")).to_have_count(1)
    async with clerk.expect_response(lambda r: r.url.endswith("/staff/applications")) as answer:
        await clerk.get_by_role("button", name="受理并立案").click()
    assert (await answer.value).status == 413
    await expect(clerk.locator(".intake .field-error", has_text="不能超过")).to_be_visible()
    assert await Case.all().count() == 0
    await id_card.get_by_role("button", name="移除 身份证.pdf").click()
    await id_card.locator("input[type=file]").set_input_files([scan("身份证正反面.pdf", PDF)])
    await expect(id_card.locator(".scan")).to_contain_text("身份证正反面.pdf")
    await clerk.evaluate("window.scrollTo(0, 0)")
    await screenshot(clerk, "console-intake.png", full_page=True)

    # --- filed: the case number is shown; the case is the citizen's, with the scan on its timeline
    async with clerk.expect_response(lambda r: r.url.endswith("/staff/applications")) as answer:
        await clerk.get_by_role("button", name="受理并立案").click()
    assert (await answer.value).status == 201
    await expect(clerk.get_by_role("heading", name="受理成功，已立案")).to_be_visible()
    case = await Case.get(channel="window")
    await expect(clerk.locator(".case-no-big")).to_have_text(case.case_no)
    await expect(clerk.locator(".intake-done")).to_contain_text("民政人工审核")
    bound = await Citizen.get(openid=case.applicant)
    assert bound.id_hash  # the bound account, not a window placeholder
    received = await CaseEvent.get(case_id=case.id, kind="materials_received")
    assert received.actor == "win01" and [f["material"] for f in received.detail["files"]] == ["居民身份证"]
    assert received.detail["files"][0]["size"] == len(PDF)

    # --- the officer finds it in the inbox and approves it
    officer: Page = await desktop(server.base_url)
    await log_in_as(officer, "mca01", "陈静")
    row = officer.locator(".task-row", has_text=case.case_no)
    await expect(row).to_contain_text("民政人工审核")
    await row.get_by_role("link", name="民政人工审核").click()
    await expect(officer.locator(".task-header")).to_contain_text("窗口")
    await expect(officer.locator(".timeline")).to_contain_text("窗口收件")
    await officer.get_by_role("radio", name="准予").check()
    await officer.get_by_label("审核意见").fill("户籍外老人，已核验居住证明，准予办理")
    async with officer.expect_response(lambda r: r.url.endswith("/complete")) as answer:
        await officer.get_by_role("button", name="办结").click()
    assert (await answer.value).status == 200
    await expect(officer.locator(".task-row", has_text=case.case_no)).to_have_count(0)

    # --- the citizen's page shows the case done
    await citizen.goto(f"/m/#/cases/{case.id}")
    await expect(citizen.locator(".case-header [data-status]")).to_have_text("已办结")
    assert (await Case.get(id=case.id)).status == "completed"
    await expect(clerk).to_have_url(re.compile(r"#/intake$"))
