"""Materials from the phone to the back office, in real Chromium (#15, files).

1. A citizen applies for the residence permit on /m/ with a photo chosen in a file input (a wrong
   file is refused next to the material with a Chinese message; the photo shows as a thumbnail
   once uploaded); the police officer opens the task in /console/ and sees the application form
   (phone masked, revealed on request) and the photo in the viewer (zoom / rotate); the citizen's
   access log holds one row for the open.
2. A clerk takes a window case with a scan, prints the 受理回执 (QR decoded from the page) and finds
   the case by ID number; the back office opens the scan (source 窗口收件).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.async_api import Page, expect

from engine.citizen.applications import Applicant
from engine.store.models import Case, Upload
from engine.store.shared_models import DataAccessLog
from tests.api.helpers import decode_qr_svg
from tests.e2e.conftest import screenshot
from tests.e2e.console import add_staff, log_in_as
from tests.e2e.test_citizen_h5 import ZHANG, bind_real_name
from tests.e2e.test_citizen_h5 import log_in as citizen_log_in
from tests.files.images import EXE, GPS_IFD, PDF, exif_of, photo

pytestmark = pytest.mark.sqlite_only

HUANG = Applicant(id_number="440106199802142083", name="黄丽")  # not local: residence permit
PHOTO = "近期免冠证件照"
LEASE = "居住证明（房屋租赁合同登记备案证明、房屋权属证明或单位、学校住宿证明）"  # a long file name: <material>-1.pdf


def portrait() -> bytes:
    """A phone photo (EXIF with GPS) of a recognisable picture: a white card on blue."""
    image = Image.open(io.BytesIO(photo(300, 400, (21, 87, 176))))
    image.paste((255, 255, 255), (60, 80, 240, 320))
    out = io.BytesIO()
    exif = Image.Exif()
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (31.0, 13.0, 50.4)})
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def test_citizen_photo_reaches_the_officer(server_factory: Any, phone: Any, desktop: Any,
                                                 tmp_path: Path) -> None:
    server = await server_factory(FILES_DIR=str(tmp_path / "files"))
    await add_staff("ps01", "刘警官", ["police_station"], ["officer"])
    citizen: Page = await phone(server.base_url)
    await citizen_log_in(citizen, "huangli")
    await bind_real_name(citizen, HUANG)
    await citizen.goto("/m/#/services/residence-permit")
    row = citizen.locator(f'.uploader[data-material="{PHOTO}"]')
    await expect(row).to_be_visible()
    camera = row.locator("input[capture]")
    assert await camera.get_attribute("accept") == "image/*,application/pdf"
    assert await camera.get_attribute("capture") == "environment"

    # a file that is no photo is refused at once, in Chinese, next to its material
    album = row.locator("input[multiple]")
    await album.set_input_files([{"name": "virus.exe", "mimeType": "application/x-msdownload", "buffer": EXE}])
    await expect(row.locator(".upload-tile[data-state=error]")).to_contain_text("仅支持 JPG、PNG 图片或 PDF 文件")
    await row.get_by_role("button", name="移除 virus.exe").click()

    # without the photo the application is refused for it
    await citizen.get_by_label("所在地区").select_option("310115")
    await citizen.get_by_label("详细地址").fill("浦东新区张杨路1500号3号楼1202室")
    await citizen.get_by_label("住所类型").select_option(label="租赁房屋")
    await citizen.get_by_label("居住起始日期").fill("2025-03-01")
    await citizen.get_by_label("就业单位或就读学校").fill("上海云帆信息科技有限公司")
    await citizen.get_by_label("联系电话").fill("15013579246")
    await citizen.get_by_label("证件照回执编号").fill("ZP20261128-0042")
    async with citizen.expect_response(lambda r: r.url.endswith("/api/v1/applications")) as answer:
        await citizen.get_by_role("button", name="提交申请").click()
    assert (await answer.value).status == 422
    await expect(row.locator(".upload-error")).to_have_text(f"请上传「{PHOTO}」")

    # the photo from the album: progress, then a thumbnail
    original = portrait()
    async with citizen.expect_response(lambda r: r.url.endswith("/api/v1/uploads")) as uploaded:
        await album.set_input_files([{"name": "IMG_2041.jpg", "mimeType": "image/jpeg", "buffer": original}])
    assert (await uploaded.value).status == 201
    tile = row.locator(".upload-tile[data-state=done]")
    await expect(tile).to_contain_text("已上传")
    assert await tile.locator("img.upload-thumb").evaluate("img => img.complete && img.naturalWidth > 0")
    await tile.scroll_into_view_if_needed()
    await screenshot(citizen, "m-upload.png")
    lease = citizen.locator(f'.uploader[data-material="{LEASE}"]')
    async with citizen.expect_response(lambda r: r.url.endswith("/api/v1/uploads")) as uploaded:
        await lease.locator("input[multiple]").set_input_files(
            [{"name": "租赁合同.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    assert (await uploaded.value).status == 201
    await expect(lease.locator(".upload-tile[data-state=done]")).to_contain_text("已上传")
    async with citizen.expect_response(lambda r: r.url.endswith("/api/v1/applications")) as answer:
        await citizen.get_by_role("button", name="提交申请").click()
    response = await answer.value
    assert response.status == 201
    body = response.request.post_data_json
    [upload_id] = body["materials"][PHOTO]
    assert len(body["materials"][LEASE]) == 1
    stored = await Upload.get(id=upload_id)
    case = await Case.get(id=stored.case_id)
    assert stored.source == "applicant" and exif_of(original) and stored.size != len(original)

    # --- the officer sees the form and opens the photo
    officer: Page = await desktop(server.base_url)
    await log_in_as(officer, "ps01", "刘警官")
    task_row = officer.locator(".task-row", has_text=case.case_no)
    await task_row.get_by_role("link").first.click()
    form = officer.locator("section", has_text="申请表")
    await expect(form).to_contain_text("上海云帆信息科技有限公司")
    await expect(officer.locator('.app-value[data-path="address.region_code"]')).to_have_text("上海市浦东新区（310115）")
    phone_value = officer.locator('.app-value[data-path="phone"]')
    await expect(phone_value).to_have_text("150****9246")
    await officer.get_by_role("button", name="显示完整的联系电话").click()
    await expect(phone_value).to_have_text("15013579246")
    material = officer.locator(f'.material-files[data-material="{PHOTO}"]')
    await expect(material.locator(".file-row")).to_contain_text("申请人上传")
    await expect(officer.locator('.material-files[data-material^="就业或就读证明"] .tag')).to_have_text("未提交")
    assert await DataAccessLog.filter(dataset="materials").count() == 0
    await material.get_by_role("button", name=f"查看 {PHOTO}-1.jpg").click()
    viewer = officer.get_by_role("dialog")
    image = viewer.locator("img.viewer-image")
    await expect(image).to_be_visible()
    size = await image.evaluate("async img => { await img.decode(); return [img.naturalWidth, img.naturalHeight]; }")
    assert size == [300, 400]  # the photo itself, re-encoded
    await viewer.get_by_role("button", name="向右旋转").click()
    await viewer.get_by_role("button", name="放大").click()
    assert "rotate(90deg)" in (await image.get_attribute("style") or "")
    await screenshot(officer, "console-material-viewer.png")
    await viewer.get_by_role("button", name="关闭").click()

    # a long file name stays on its line in the side column: an ellipsis, the full name in the title
    long_name = officer.locator(f'.material-files[data-material="{LEASE}"] .file-name')
    await expect(long_name).to_have_attribute("title", f"{LEASE}-1.pdf")
    fit = await long_name.evaluate("""el => {
        const card = el.closest('.card').getBoundingClientRect();
        const row = el.closest('.file-row').getBoundingClientRect();
        const button = el.closest('.file-row').querySelector('.file-open').getBoundingClientRect();
        return {clipped: el.scrollWidth > el.clientWidth, ellipsis: getComputedStyle(el).textOverflow,
                rowInside: row.right <= card.right + 0.5, buttonInside: button.right <= row.right + 0.5,
                oneLine: el.getBoundingClientRect().height < 24};
    }""")
    assert fit == {"clipped": True, "ellipsis": "ellipsis", "rowInside": True, "buttonInside": True, "oneLine": True}
    # the timeline names who acted (申请人, 系统), never the raw citizen:<id>
    metas = await officer.locator(".timeline .tl-meta").all_inner_texts()
    assert "申请人" in metas and "系统" in metas and not any("citizen:" in m for m in metas), metas
    await officer.locator(f'.material-files[data-material="{LEASE}"]').scroll_into_view_if_needed()
    await screenshot(officer, "console-material-long-name.png")
    # the PDF opens in the browser's viewer inside the dialog; the long name in its head ends in an ellipsis
    await officer.locator(f'.material-files[data-material="{LEASE}"]').locator(".file-open").click()
    viewer = officer.get_by_role("dialog")
    await expect(viewer.locator("iframe.viewer-pdf")).to_be_visible()
    head = await viewer.locator(".viewer-name").evaluate("""el => ({title: el.title,
        inside: el.closest('.viewer-head').scrollWidth <= el.closest('.viewer-head').clientWidth})""")
    assert head == {"title": f"{LEASE}-1.pdf", "inside": True}
    await officer.wait_for_timeout(1500)
    await screenshot(officer, "console-material-pdf.png")
    await viewer.get_by_role("button", name="关闭").click()
    await screenshot(officer, "console-task-application.png", full_page=True)
    reads = await DataAccessLog.filter(dataset="materials").order_by("id")
    assert [(r.actor, r.case_id) for r in reads] == [("ps01", case.id)] * 2  # the photo, then the PDF

    # --- the citizen sees who opened it
    log = await citizen.evaluate("""async () => {
        const s = JSON.parse(sessionStorage.getItem('govflow.m.session'));
        const r = await fetch('/api/v1/me/access-log', {headers: {Authorization: 'Bearer ' + s.access_token}});
        return (await r.json()).items.filter(e => e.dataset === 'materials').map(e => e.purpose);
    }""")
    assert len(log) == 2 and any(PHOTO in p for p in log) and any(LEASE in p for p in log)


async def test_window_scans_receipt_and_search(server_factory: Any, desktop: Any, tmp_path: Path) -> None:
    server = await server_factory(FILES_DIR=str(tmp_path / "files"))
    await add_staff("win01", "周敏", ["window"], ["clerk"])
    await add_staff("mca01", "陈静", ["mca"], ["officer"])
    clerk: Page = await desktop(server.base_url)
    await log_in_as(clerk, "win01", "周敏")
    await clerk.get_by_role("navigation", name="工作台导航").get_by_role("link", name="窗口受理").click()
    await clerk.get_by_label("办理事项").select_option("senior-card")
    await clerk.get_by_label("申请人姓名").fill(ZHANG.name)
    await clerk.get_by_label("申请人身份证号").fill(ZHANG.id_number)
    await clerk.get_by_label("联系电话").fill("13912345678")
    await clerk.get_by_label("所在地区").select_option("310104")
    await clerk.get_by_label("详细地址").fill("漕溪北路100弄1号")
    id_card = clerk.locator(".intake-material", has_text="居民身份证")
    await id_card.locator("input[type=file]").set_input_files(
        [{"name": "身份证.jpg", "mimeType": "image/jpeg", "buffer": photo(320, 200, (200, 200, 180))}])
    async with clerk.expect_response(lambda r: r.url.endswith("/staff/applications")) as answer:
        await clerk.get_by_role("button", name="受理并立案").click()
    assert (await answer.value).status == 201
    await expect(clerk.get_by_role("heading", name="受理成功，已立案")).to_be_visible()
    case = await Case.get(channel="window")

    # the receipt: case number, what was received, the promised date, a QR that leads to the case
    await clerk.get_by_role("link", name="打印受理回执").click()
    receipt = clerk.locator("article.receipt")
    await expect(receipt).to_contain_text(case.case_no)
    await expect(receipt.locator(".receipt-table")).to_contain_text("已收取 1 份")
    await expect(receipt.locator(".receipt-table")).to_contain_text("共享数据获取")
    svg = await receipt.locator(".receipt-qr").inner_html()
    [url] = decode_qr_svg(svg)
    assert url.endswith(f"/m/#/cases/{case.id}")
    await screenshot(clerk, "console-receipt.png", full_page=True)

    # the clerk finds the case by the applicant's ID number
    await clerk.get_by_role("navigation", name="工作台导航").get_by_role("link", name="办件查询").click()
    await clerk.get_by_label("办件编号或申请人身份证号").fill(ZHANG.id_number)
    await clerk.get_by_role("button", name="查询").click()
    await expect(clerk.locator(".case-row")).to_contain_text(case.case_no)
    await expect(clerk.locator(".case-row")).to_contain_text("110***********0718")
    assert ZHANG.id_number not in clerk.url  # never in the address bar or the history
    await screenshot(clerk, "console-case-search.png")

    # the back office opens the scan
    officer: Page = await desktop(server.base_url)
    await log_in_as(officer, "mca01", "陈静")
    await officer.locator(".task-row", has_text=case.case_no).get_by_role("link").first.click()
    scan = officer.locator('.material-files[data-material="居民身份证"] .file-row')
    await expect(scan).to_contain_text("窗口收件")
    await scan.get_by_role("button").click()
    image = officer.get_by_role("dialog").locator("img.viewer-image")
    await expect(image).to_be_visible()
    assert await image.evaluate("async img => { await img.decode(); return img.naturalWidth; }") == 200  # rotated upright
    [read] = await DataAccessLog.filter(dataset="materials")
    assert read.actor == "mca01" and "窗口收件" in read.purpose
