"""The signed PDFs from the pages, in real Chromium against a real server: the citizen downloads
the e-certificate PDF from the case page's certificate card and the 受理回执 from 办件文书; an
officer downloads the 补正告知书 from the task page. Each download is a PDF whose PAdES signature
validates (pyHanko) and whose text (PDFium) names the case."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pypdfium2
import pytest
from playwright.async_api import Page, expect

from engine.certificates import documents
from engine.store.models import HumanTask
from tests.e2e.conftest import Server
from tests.e2e.console import add_staff, log_in_as
from tests.e2e.test_citizen_h5 import WANG, bind_real_name, fill_senior_card, log_in, submit
from tests.processes.test_business_startup import FORM
from tests.processes.test_business_startup import WANG as WANG_APPLICANT

pytestmark = pytest.mark.sqlite_only


def pdf_text(pdf: bytes) -> str:
    return re.sub(r"\s+", "", "".join(p.get_textpage().get_text_range() for p in pypdfium2.PdfDocument(pdf)))


async def downloaded(page: Page, button: Any) -> bytes:
    async with page.expect_download() as info:
        await button.click()
    return Path(await (await info.value).path()).read_bytes()


async def signed_by(server: Server, pdf: bytes) -> str:
    verified = await documents.verify(pdf, server.app.ctx.document_keys)
    assert verified.intact and verified.valid and verified.trusted and verified.covers_whole_file
    return verified.signer


async def test_citizen_downloads_certificate_and_receipt(server: Server, phone: Any) -> None:
    page: Page = await phone(server.base_url)
    await log_in(page, "wangjianguo")
    await bind_real_name(page, WANG)
    await page.locator(".service-card", has_text="老年人优待证").click()
    await fill_senior_card(page, "13812345678")
    status, _, _ = await submit(page)
    assert status == 201
    await expect(page.locator(".case-header [data-status]")).to_have_text("已办结", timeout=10_000)
    case_no = (await page.locator(".case-header").inner_text()).split("办件编号")[1].split()[0]

    cert = await downloaded(page, page.locator(".cert").get_by_role("button", name="下载电子证照 PDF"))
    assert "民政局" in await signed_by(server, cert)
    text = pdf_text(cert)
    assert "老年人优待证" in text and WANG.name in text

    docs = page.get_by_role("region", name="办件文书")
    receipt = await downloaded(page, docs.get_by_role("button", name="下载受理回执"))
    assert "民政局" in await signed_by(server, receipt)
    assert "受理回执" in pdf_text(receipt) and case_no in pdf_text(receipt)


async def test_officer_downloads_the_supplement_notice(server: Server, desktop: Any) -> None:
    await add_staff("samr01", "李明", ["samr"], ["officer"])
    result = await server.app.ctx.applications.apply("business-startup", FORM, applicant=WANG_APPLICANT,
                                                     channel="window", actor="win01")
    [task] = await HumanTask.filter(case_id=result.id, state="ready")
    page: Page = await desktop(server.base_url)
    await log_in_as(page, "samr01", "李明")
    await page.goto(f"{server.base_url}/console/#/tasks/{task.id}")
    await page.get_by_role("button", name="认领").click()
    await expect(page.get_by_role("button", name="退回", exact=False).first).to_be_visible()
    section = page.locator(".case-documents")
    await expect(section.get_by_role("button", name="受理回执 PDF")).to_be_visible()
    await expect(section.get_by_role("button", name="补正告知书 PDF")).to_have_count(0)
    from engine.kernel import supplement

    await supplement.request_supplement(server.engine, await HumanTask.get(id=task.id), actor="samr01",
                                        reason="住所使用证明缺少产权人签字；请补充租赁合同原件")
    await page.reload()
    pdf = await downloaded(page, page.locator(".case-documents").get_by_role("button", name="补正告知书 PDF"))
    assert "市场监督管理局" in await signed_by(server, pdf)
    text = pdf_text(pdf)
    assert "补正告知书" in text and result.case_no in text and "请补充租赁合同原件" in text
