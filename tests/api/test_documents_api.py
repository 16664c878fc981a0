"""Signed PDF documents over real HTTP on both database passes: the holder's e-certificate, and a
case's 受理回执, 补正告知书 and 不予许可决定书. Each test extracts the PDF's text (Chinese included,
with PDFium), validates the PAdES signature with pyHanko against the document CA (intact, valid,
trusted, covering the whole file) and checks who may fetch it: another citizen 404, another
department 403. A tampered copy fails validation. Every answer is checked against the OpenAPI document."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pypdfium2
import pytest
import zxingcpp
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from sanic import Sanic

from engine.certificates import documents
from engine.store.models import HumanTask
from engine.store.shared_models import DataAccessLog
from tests.api.helpers import OpenApiClient, citizen_token, error_of, running_api, seed_staff
from tests.api.helpers import staff_login as login
from tests.api.test_applications_api import LI, SENIOR, STARTUP, WANG, started

APPLY, TASKS = "/api/v1/applications", "/api/v1/staff/tasks"
STAFF = {"samr01": (["samr"], ["officer"]), "psb01": (["psb"], ["officer"])}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
REASON = "住所使用证明缺少产权人签字；请补充租赁合同原件"


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch) as served:
        await seed_staff(STAFF)
        # rendering and signing take a few seconds of CPU each (docs/operations.md); the machine
        # running the tests may be busy with others
        served.client.timeout = httpx.Timeout(60)
        yield served


def text_of(pdf: bytes) -> str:
    """All the text of the PDF as PDFium (Chromium's PDF engine) reads it, whitespace removed."""
    document = pypdfium2.PdfDocument(pdf)
    return re.sub(r"\s+", "", "".join(page.get_textpage().get_text_range() for page in document))


def snapshot(pdf: bytes, name: str) -> None:
    """The first page as docs/screenshots/<name> (overwritten every run), as PDFium draws it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pypdfium2.PdfDocument(pdf)[0].render(scale=1.25).to_pil().save(SCREENSHOTS / name)


def qr_texts(pdf: bytes) -> list[str]:
    """The QR codes on the first page, rendered by PDFium at 200 dpi and read by zxing-cpp."""
    image = pypdfium2.PdfDocument(pdf)[0].render(scale=200 / 72).to_pil().convert("L")
    return [b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


async def check_signature(api: OpenApiClient, pdf: bytes, department_name: str) -> None:
    verified = await documents.verify(pdf, api.app.ctx.document_keys)
    assert (verified.intact, verified.valid, verified.trusted, verified.covers_whole_file) == (True, True, True, True)
    assert department_name in verified.signer
    # and once more straight through pyHanko, with only the CA that /documents/ca.pem publishes
    [signature] = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    status = await async_validate_pdf_signature(signature, ValidationContext(trust_roots=api.app.ctx.document_keys.trust_roots()))
    assert status.bottom_line and status.signing_cert.subject.human_friendly == verified.signer


def is_pdf(response) -> bytes:  # noqa: ANN001
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    return response.content


async def test_the_holder_downloads_a_signed_certificate_with_a_working_qr(api: OpenApiClient) -> None:
    wang = await citizen_token(api, "dev-wang", *WANG)
    await started(api, wang, "senior-card", SENIOR)
    [cert] = (await api.call("GET", "/api/v1/certificates", token=wang)).json()["items"]
    pdf = is_pdf(await api.call("GET", f"/api/v1/certificates/{cert['id']}/pdf", token=wang))
    text = text_of(pdf)
    for expected in ("老年人优待证", "王建国", cert["identifier"], cert["number"], "有效期", "颁证机构", "电子签章"):
        assert expected in text, expected
    assert WANG[1] not in text  # the ID number appears masked only
    await check_signature(api, pdf, "民政局")
    snapshot(pdf, "doc-certificate.png")
    # the printed QR carries a signed token that the public check accepts
    [token] = qr_texts(pdf)
    verified = await api.call("POST", "/api/v1/certificates/verify", json={"token": token})
    assert verified.status_code == 200 and verified.json()["valid"] is True

    li = await citizen_token(api, "dev-lina", *LI)
    error_of(await api.call("GET", f"/api/v1/certificates/{cert['id']}/pdf", token=li), 404, "not_found")
    error_of(await api.call("GET", f"/api/v1/certificates/{cert['id']}/pdf"), 401, "unauthorized")


async def test_refusal_decision_with_reason_legal_basis_and_appeal(api: OpenApiClient) -> None:
    li = await citizen_token(api, "dev-lina", *LI)
    refused = await started(api, li, "senior-card", {**SENIOR, "phone": "13917724680"})
    listed = (await api.call("GET", f"{APPLY}/{refused['id']}/documents", token=li)).json()["items"]
    assert [d["kind"] for d in listed] == ["receipt", "refusal"]
    pdf = is_pdf(await api.call("GET", listed[1]["url"].removeprefix(""), token=li))
    text = text_of(pdf)
    for expected in ("不予许可决定书", "李娜", refused["case_no"], "决定不予许可", "法律依据",
                     "《中华人民共和国老年人权益保障法》", "行政复议", "行政诉讼", "秒批"):
        assert expected in text, expected
    assert re.sub(r"\s+", "", refused["result"]["reason"]) in text
    await check_signature(api, pdf, "民政局")
    snapshot(pdf, "doc-refusal.png")
    receipt_pdf = is_pdf(await api.call("GET", f"{APPLY}/{refused['id']}/documents/receipt", token=li))
    snapshot(receipt_pdf, "doc-receipt.png")
    receipt = text_of(receipt_pdf)
    assert "受理回执" in receipt and refused["case_no"] in receipt and "老年人优待证办理" in receipt

    # another citizen: 404 for the case; a document the case does not have: 404 document_not_found
    wang = await citizen_token(api, "dev-wang", *WANG)
    error_of(await api.call("GET", f"{APPLY}/{refused['id']}/documents/refusal", token=wang), 404, "not_found")
    approved = await started(api, wang, "senior-card", SENIOR)
    error_of(await api.call("GET", f"{APPLY}/{approved['id']}/documents/refusal", token=wang), 404,
             "document_not_found")
    error_of(await api.call("GET", f"{APPLY}/{approved['id']}/documents/nonsense", token=wang), 404,
             "document_not_found")

    # a copy with one bit changed inside the signed bytes no longer validates
    broken = bytearray(pdf)
    broken[len(broken) // 3] ^= 0x01
    try:
        verdict = await documents.verify(bytes(broken), api.app.ctx.document_keys)
        assert not (verdict.intact and verdict.valid)
    except AssertionError:
        raise
    except Exception:  # noqa: BLE001 - a copy too damaged to read is rejected as well
        pass


async def test_supplement_notice_for_applicant_and_officers(api: OpenApiClient) -> None:
    wang = await citizen_token(api, "dev-wang", *WANG)
    case = await started(api, wang, "business-startup", STARTUP)
    samr01 = await login(api, "samr01")
    only_receipt = (await api.call("GET", f"/api/v1/staff/cases/{case['id']}/documents", token=samr01)).json()
    assert [d["kind"] for d in only_receipt["items"]] == ["receipt"]
    [task] = await HumanTask.filter(case_id=case["id"], state="ready")
    assert (await api.call("POST", f"{TASKS}/{task.id}/return", token=samr01, json={"reason": REASON})).status_code \
        == 200
    listed = (await api.call("GET", f"{APPLY}/{case['id']}/documents", token=wang)).json()["items"]
    assert [d["kind"] for d in listed] == ["receipt", "supplement"]
    pdf = is_pdf(await api.call("GET", f"{APPLY}/{case['id']}/documents/supplement", token=wang))
    text = text_of(pdf)
    for expected in ("补正告知书", "王建国", case["case_no"], "需要补正的内容", "1.住所使用证明缺少产权人签字",
                     "2.请补充租赁合同原件", "补正期限", "第三十二条"):
        assert expected in text, expected
    assert re.search(r"补正期限20\d\d年\d{1,2}月\d{1,2}日前", text)
    await check_signature(api, pdf, "市场监督管理局")
    snapshot(pdf, "doc-supplement.png")

    # the officer of the department downloads it too (access-logged); another department may not
    before = await DataAccessLog.filter(case_id=case["id"]).count()
    staff_pdf = is_pdf(await api.call("GET", f"/api/v1/staff/cases/{case['id']}/documents/supplement", token=samr01))
    assert "补正告知书" in text_of(staff_pdf)
    assert await DataAccessLog.filter(case_id=case["id"]).count() == before + 1
    psb01 = await login(api, "psb01")
    error_of(await api.call("GET", f"/api/v1/staff/cases/{case['id']}/documents/supplement", token=psb01), 403,
             "document_forbidden")
    error_of(await api.call("GET", f"/api/v1/staff/cases/{case['id']}/documents", token=wang), 403, "staff_only")

    ca = await api.call("GET", "/api/v1/documents/ca.pem")
    assert ca.status_code == 200 and ca.text.startswith("-----BEGIN CERTIFICATE-----")
