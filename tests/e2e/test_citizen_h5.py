"""The citizen H5 page (/m/) in a phone-sized Chromium against a real server.

The journey of the product brief: dev login, real-name binding, the catalogue, a form rendered from
the service's ui_spec with the materials that e-certificates satisfy, a refused submit with the
Chinese message next to the field, the case page following the case live over server-sent events,
the certificate's QR code (decoded from the screen and verified by the API) refreshing, and the
rating. The page and the API are one app, so these run once, in the SQLite pass.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import png
import pytest
import zxingcpp
from playwright.async_api import Page, expect

from engine.citizen.applications import Applicant
from engine.kernel.cases import OPEN_TASK_STATES
from engine.store.models import HumanTask
from tests.e2e.conftest import ID_CARD_TYPE, Server, screenshot

pytestmark = pytest.mark.sqlite_only

WANG = Applicant(id_number="310104196103150273", name="王建国")  # local, 65: approved in seconds
ZHANG = Applicant(id_number="110101195605100718", name="张卫东")  # 70, not local: officer review
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
CHINESE = re.compile(r"[\u4e00-\u9fff]")


async def log_in(page: Page, login: str) -> None:
    await page.goto("/m/")
    await expect(page.get_by_role("heading", name="登录", exact=True)).to_be_visible()
    await page.get_by_label("登录名（开发模式）").fill(login)
    await page.get_by_role("button", name="登录", exact=True).click()


async def bind_real_name(page: Page, person: Applicant) -> None:
    await expect(page.get_by_role("heading", name="实名认证", exact=True)).to_be_visible()
    await page.get_by_label("姓名").fill(person.name)
    await page.get_by_label("身份证号").fill(person.id_number)
    await page.get_by_role("button", name="确认认证").click()
    await expect(page.get_by_role("heading", name="办事服务", exact=True)).to_be_visible()


async def fill_senior_card(page: Page, phone: str) -> None:
    await page.get_by_label("联系电话").fill(phone)
    await page.get_by_label("所在地区").select_option("310104")
    await page.get_by_label("详细地址").fill("漕溪北路100弄1号")


async def submit(page: Page) -> tuple[int, str, dict[str, Any]]:
    """Press 提交申请; the status, Idempotency-Key and body of the POST it sent."""
    async with page.expect_response(lambda r: r.url.endswith("/api/v1/applications")
                                    and r.request.method == "POST") as answer:
        await page.get_by_role("button", name="提交申请").click()
    response = await answer.value
    return response.status, response.request.headers.get("idempotency-key", ""), response.request.post_data_json


def qr_text(screenshot_png: bytes) -> str:
    """The text of the one QR code in a screenshot, read with a real decoder."""
    width, height, rows, _ = png.Reader(bytes=screenshot_png).asRGB8()
    grey = bytearray()
    for row in rows:
        grey.extend(bytes(row)[1::3])  # black on white: any channel is the grey level
    found = zxingcpp.read_barcodes(memoryview(grey).cast("B", (height, width)),
                                   formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(found) == 1, f"{len(found)} QR codes on screen"
    return found[0].text


async def shown_token(page: Page) -> str:
    box = page.locator(".qr-box")
    await box.evaluate("e => e.scrollIntoView({block: 'center'})")  # clear of the sticky title bar
    return qr_text(await box.screenshot(animations="disabled"))


async def test_senior_card_journey(server: Server, phone: Any) -> None:
    await server.issue_certificate(ID_CARD_TYPE, WANG)  # his 居民身份证 e-certificate
    page: Page = await phone(server.base_url)
    await page.clock.install()  # real time flows; the test can jump a minute ahead for the QR refresh

    # --- dev login, then real-name binding: a wrong check digit is explained next to the field
    await log_in(page, "wangjianguo")
    await expect(page.get_by_role("heading", name="实名认证", exact=True)).to_be_visible()
    await page.get_by_label("姓名").fill(WANG.name)
    await page.get_by_label("身份证号").fill(WANG.id_number[:-1] + "1")
    await page.get_by_role("button", name="确认认证").click()
    id_error = page.locator('[data-path="id_number"] .field-error')
    await expect(id_error).to_be_visible()
    assert CHINESE.search(await id_error.inner_text())
    await expect(page.get_by_label("身份证号")).to_have_attribute("aria-invalid", "true")
    await page.get_by_label("身份证号").fill(WANG.id_number)
    await page.get_by_role("button", name="确认认证").click()

    # --- the catalogue
    await expect(page.get_by_role("heading", name="办事服务", exact=True)).to_be_visible()
    card = page.locator(".service-card", has_text="老年人优待证")
    await expect(card).to_be_visible()
    await expect(card).to_contain_text("即办件")
    await expect(card).to_contain_text("一次不用跑")
    await expect(page.locator(".service-card", has_text="居住证申领")).to_contain_text("承诺7个工作日")
    await screenshot(page, "m-catalogue.png")

    # --- the service: materials, the form from its ui_spec
    await card.click()
    await expect(page).to_have_url(re.compile(r"#/services/senior-card$"))
    await expect(page.locator(".service-title")).to_have_text("老年人优待证办理")
    id_card = page.locator(".material", has_text="居民身份证")
    await expect(id_card).to_contain_text("已由电子证照自动获取（免提交）")
    await expect(id_card).to_have_attribute("data-satisfied", "true")
    await expect(page.locator(".material", has_text="户籍信息")).to_contain_text("由共享数据获取")
    await expect(page.get_by_role("radio", name="仅电子证照（随申办亮证）")).to_be_checked()  # the default

    # --- a bad phone: refused, the Chinese message next to the field, no case
    await fill_senior_card(page, "1381234567")
    status, first_key, body = await submit(page)
    assert status == 422
    assert body == {"service": "senior-card", "form": {"phone": "1381234567", "delivery": "electronic",
                                                       "address": {"region_code": "310104",
                                                                   "detail": "漕溪北路100弄1号"}}}
    phone_error = page.locator('[data-path="phone"] .field-error')
    await expect(phone_error).to_be_visible()
    assert CHINESE.search(await phone_error.inner_text())
    await expect(page.get_by_label("联系电话")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("联系电话")).to_be_focused()
    await expect(page).to_have_url(re.compile(r"#/services/senior-card$"))

    # --- submit: a fresh Idempotency-Key, then the case page
    await page.get_by_label("联系电话").fill("13812345678")
    status, key, _ = await submit(page)
    assert status == 201
    assert UUID.match(key) and UUID.match(first_key) and key != first_key
    await expect(page).to_have_url(re.compile(r"#/cases/\d+$"))
    await expect(page.locator(".case-header [data-status]")).to_have_text("已办结", timeout=10_000)
    await expect(page.locator(".result-outcome")).to_have_text("准予")
    await expect(page.locator(".result-reason")).to_contain_text("申请人年满60周岁且为本市户籍，符合申领条件，自动准予")
    steps = page.locator(".timeline li")
    await expect(steps.first).to_contain_text("提交申请")
    assert await steps.count() >= 2
    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, "m-timeline.png")

    # --- the certificate: its QR code is a signed token the API verifies, refreshed every minute
    qr = page.locator(".qr")
    await expect(qr.locator("svg")).to_be_visible()
    await expect(qr).to_have_attribute("data-refreshes", "1")
    await expect(page.locator(".cert")).to_contain_text("老年人优待证")
    first = await shown_token(page)
    verdict = await (await page.request.post("/api/v1/certificates/verify", data={"token": first})).json()
    assert verdict.get("valid") is True, verdict
    await page.clock.fast_forward(61_000)  # the page's one-minute timer
    await expect(qr).to_have_attribute("data-refreshes", "2")
    second = await shown_token(page)
    assert second != first
    await page.get_by_role("button", name="刷新二维码").click()
    await expect(qr).to_have_attribute("data-refreshes", "3")
    assert await shown_token(page) not in {first, second}
    await page.get_by_role("button", name="查看电子证照").click()
    await expect(page.locator(".cert")).to_be_in_viewport()
    await screenshot(page, "m-certificate.png")

    # --- the rating: five levels; the answer replaces the form and stays after a reload
    rating = page.locator("form.rating")
    for label in ("非常满意", "满意", "基本满意", "不满意", "非常不满意"):
        await expect(rating.get_by_role("radio", name=label, exact=True)).to_be_attached()
    await rating.get_by_text("非常满意", exact=True).click()
    await rating.get_by_label("评价内容").fill("手机上几秒钟就办好了")
    await rating.get_by_role("button", name="提交评价").click()
    await expect(page.locator(".rated")).to_contain_text("您的评价：非常满意")
    await page.reload()
    await expect(page.locator(".rated")).to_contain_text("您的评价：非常满意")
    await expect(page.locator("form.rating")).to_have_count(0)

    # --- the tabs: my cases, my certificates (the QR shown on demand)
    await page.get_by_role("navigation", name="主导航").get_by_role("link", name="办件").click()
    mine = page.locator(".service-card", has_text="老年人优待证办理")
    await expect(mine).to_contain_text("已办结")
    await page.get_by_role("navigation", name="主导航").get_by_role("link", name="证照").click()
    await expect(page.locator(".cert", has_text="老年人优待证")).to_be_visible()
    await expect(page.locator(".cert", has_text="居民身份证")).to_be_visible()
    await page.locator("li", has=page.locator(".cert", has_text="老年人优待证")).get_by_role(
        "button", name="亮证（出示二维码）").click()
    await expect(page.locator(".qr svg")).to_be_visible()
    assert await shown_token(page) not in {first, second}


async def test_case_page_follows_the_case_live(server: Server, phone: Any) -> None:
    """An officer decides while the applicant watches: the page changes without a reload (SSE)."""
    page: Page = await phone(server.base_url)
    await log_in(page, "zhangweidong")
    await bind_real_name(page, ZHANG)
    await page.goto("/m/#/services/senior-card")
    await fill_senior_card(page, "13912345678")
    status, _, _ = await submit(page)
    assert status == 201
    await expect(page).to_have_url(re.compile(r"#/cases/\d+$"))
    case_id = int(page.url.rsplit("/", 1)[1])
    await expect(page.locator(".case-header [data-status]")).to_have_text("办理中")
    await expect(page.locator(".current")).to_contain_text("民政人工审核")
    await expect(page.locator(".result-outcome")).to_have_text("转人工审核")
    await expect(page.locator(".live")).to_have_text("实时更新中")
    await page.evaluate("window.__sameDocument = true")

    task = await HumanTask.filter(case_id=case_id, state__in=OPEN_TASK_STATES).first()
    assert task is not None and task.name == "民政人工审核"
    await server.engine.complete_task(task.id, {"review_approved": True,
                                                "review_opinion": "已核验在本市居住满五年，准予办理"}, actor="mca01")

    await expect(page.locator(".case-header [data-status]")).to_have_text("已办结", timeout=10_000)
    await expect(page.locator(".result-reason")).to_contain_text("经民政部门人工审核准予")
    await expect(page.locator(".qr svg")).to_be_visible()
    assert await page.evaluate("window.__sameDocument") is True


async def test_array_rows_and_nested_errors(server: Server, phone: Any) -> None:
    """企业开办: groups, a repeatable 股东 table with add/remove, errors placed in the right row."""
    page: Page = await phone(server.base_url)
    await log_in(page, "zhaoqiang")
    await bind_real_name(page, Applicant(id_number="310110198606200486", name="李娜"))
    await page.goto("/m/#/services/business-startup")
    await expect(page.locator(".service-title")).to_have_text("企业开办一件事")
    rows = page.locator('[data-path="shareholders"] .row-card')
    await expect(rows).to_have_count(1)  # minItems 1
    await expect(rows.first.get_by_role("button", name="删除股东 1")).to_be_disabled()
    add = page.get_by_role("button", name="＋ 添加股东")
    await add.click()
    await add.click()
    await expect(rows).to_have_count(3)
    await rows.nth(1).get_by_role("button", name="删除股东 2").click()
    await expect(rows).to_have_count(2)
    await expect(rows.nth(1).locator(".row-title")).to_have_text("股东 2")

    # every control has a label, every tap target is at least 44 px high
    unlabelled = await page.evaluate("""() => [...document.querySelectorAll('form input, form select, form textarea')]
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.outerHTML)""")
    assert unlabelled == []
    small = await page.evaluate("""() => [...document.querySelectorAll('button, a.btn, .choice, .input, .tabbar a')]
        .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 44).map(e => e.outerHTML)""")
    assert small == []

    await page.get_by_label("企业名称").fill("上海云帆信息科技有限公司")
    await page.get_by_label("企业类型").select_option(label="有限责任公司")
    await page.get_by_label("所在地区").select_option("310115")
    await page.get_by_label("详细地址").fill("张江路88号")
    await page.get_by_label("注册资本").fill("100")
    await page.get_by_label("法定代表人姓名").fill("李娜")
    await page.get_by_label("法定代表人身份证号").fill("310110198606200486")
    first, second = rows.nth(0), rows.nth(1)
    await first.get_by_label("股东姓名").fill("李娜")
    await first.get_by_label("股东身份证号").fill("310110198606200486")
    await first.get_by_label("持股比例").fill("60")
    await second.get_by_label("股东姓名").fill("周杰")
    await second.get_by_label("股东身份证号").fill("32010219930908143x")  # typed lower case: upper-cased
    await expect(second.get_by_label("股东身份证号")).to_have_value("32010219930908143X")
    await second.get_by_label("股东身份证号").fill("320102199309081431")  # wrong check digit
    await second.get_by_label("持股比例").fill("40")
    await page.get_by_label("经营范围").fill("软件开发；信息技术咨询服务")
    status, _, body = await submit(page)
    assert status == 422
    assert [s["name"] for s in body["form"]["shareholders"]] == ["李娜", "周杰"]
    assert body["form"]["registered_capital"] == 100 and body["form"]["shareholders"][0]["share_percent"] == 60
    assert body["form"]["need_seal"] is True and body["form"]["employees"] == 0
    error = page.locator('[data-path="shareholders.1.id_number"] .field-error')
    await expect(error).to_be_visible()
    assert CHINESE.search(await error.inner_text())
    await expect(page.locator('[data-path="shareholders.0.id_number"] .field-error')).to_be_hidden()


async def test_expired_access_token_is_refreshed_once(server_factory: Any, phone: Any) -> None:
    server = await server_factory(ACCESS_TOKEN_TTL_S=2)
    page: Page = await phone(server.base_url)
    refreshes: list[str] = []
    page.on("request", lambda r: refreshes.append(r.url) if r.url.endswith("/api/v1/auth/refresh") else None)
    await log_in(page, "refresher")
    await expect(page.get_by_role("heading", name="实名认证", exact=True)).to_be_visible()
    before = await page.evaluate("JSON.parse(sessionStorage.getItem('govflow.m.session')).access_token")
    await asyncio.sleep(2.5)  # the access token expires
    await page.goto("/m/#/me")
    await expect(page.get_by_role("heading", name="我的", exact=True)).to_be_visible()
    await expect(page.locator(".kv")).to_contain_text("未实名")
    after = await page.evaluate("JSON.parse(sessionStorage.getItem('govflow.m.session')).access_token")
    assert after != before
    assert len(refreshes) == 1
