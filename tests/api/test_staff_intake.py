"""Window intake (前台一口受理) over real HTTP on both database passes: a clerk files a case for a
walk-in citizen with scanned materials; officers then see its task; types by magic bytes, size
limit, and the role guard. Every answer is checked against the OpenAPI document."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sanic import Sanic

from engine.platform.uploads import DiskStore
from engine.store.models import Case, CaseEvent
from tests.api.helpers import OpenApiClient, citizen_token, error_of, running_api, seed_staff
from tests.api.helpers import staff_login as login
from tests.api.test_applications_api import LI, SENIOR, STARTUP, WANG
from tests.engine.platform.test_uploads import EXE, JPEG, PDF
from tests.files.images import GPS_IFD, exif_of, photo

INTAKE, TASKS, LOGIN = "/api/v1/staff/applications", "/api/v1/staff/tasks", "/api/v1/staff/login"
STAFF = {"win01": (["window"], ["clerk"]), "samr01": (["samr"], ["officer"])}
MAX_BYTES = 64 * 1024


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch,
              tmp_path: Path) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch, UPLOAD_DIR=str(tmp_path / "uploads"),
                           UPLOAD_MAX_BYTES=MAX_BYTES) as served:
        await seed_staff(STAFF)
        yield served


def multipart(files: list[tuple[str, str, bytes]], **fields: Any) -> dict[str, Any]:
    data = {"service": "business-startup", "form": json.dumps(STARTUP, ensure_ascii=False), "name": WANG[0],
            "id_number": WANG[1], "phone": "13816612345", **fields,
            "material_names": [material for material, _, _ in files]}
    parts = [(k, (None, v)) for k, value in data.items() for v in (value if isinstance(value, list) else [value])]
    return {"files": parts + [("materials", (filename, body, "application/pdf")) for _, filename, body in files]}


async def test_clerk_files_a_window_case_with_scans(api: OpenApiClient, tmp_path: Path) -> None:
    clerk = await login(api, "win01")
    scan = photo()  # a phone photo of the ID card: EXIF with camera make and a GPS position
    assert exif_of(scan)[0x010F] == "GovflowPhone" and exif_of(scan).get(GPS_IFD)
    scans = [("营业执照申请书", "王建国申请书.pdf", PDF), ("身份证复印件", "身份证.pdf", scan)]
    response = await api.call("POST", INTAKE, token=clerk, **multipart(scans))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["channel"] == "window" and body["service"] == "business-startup"
    case = await Case.get(id=body["id"])
    assert case.channel == "window" and case.applicant and case.applicant.startswith("window:")
    assert WANG[1] not in case.applicant
    event = await CaseEvent.get(case_id=case.id, kind="materials_received")
    assert event.actor == "win01"
    files = event.detail["files"]
    store = DiskStore(tmp_path / "uploads")
    kept = store.get(files[1]["key"])  # the scan as stored: re-encoded, no EXIF, no GPS position
    assert kept != scan and exif_of(kept) == {} and b"GovflowPhone" not in kept
    assert [(f["material"], f["size"], f["sha256"], f["content_type"]) for f in files] == [
        ("营业执照申请书", len(PDF), hashlib.sha256(PDF).hexdigest(), "application/pdf"),
        ("身份证复印件", len(kept), hashlib.sha256(kept).hexdigest(), "image/jpeg")]
    assert store.get(files[0]["key"]) == PDF
    assert "王" not in json.dumps(event.detail) and "身份证.pdf" not in json.dumps(event.detail)
    assert any(s["kind"] == "materials_received" for s in body["steps"])
    officer = await login(api, "samr01")
    inbox = (await api.call("GET", TASKS, token=officer)).json()
    assert [t["case_id"] for t in inbox["items"]] == [case.id]


async def test_bound_citizen_owns_the_window_case(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang", *WANG)
    clerk = await login(api, "win01")
    response = await api.call("POST", INTAKE, token=clerk, **multipart([]))
    assert response.status_code == 201, response.text
    mine = (await api.call("GET", "/api/v1/applications", token=token)).json()
    assert [c["id"] for c in mine["items"]] == [response.json()["id"]]


async def test_bad_files_and_input_are_refused_before_filing(api: OpenApiClient, tmp_path: Path) -> None:
    clerk = await login(api, "win01")
    error_of(await api.call("POST", INTAKE, token=clerk, **multipart([("申请书", "a.pdf", EXE)])), 415,
             "unsupported_file_type")
    # only the magic bytes of a JPEG: refused like a citizen upload, and nothing is stored
    error_of(await api.call("POST", INTAKE, token=clerk, **multipart([("申请书", "a.pdf", PDF), ("照片", "b.jpg", JPEG)])),
             415, "unreadable_image")
    assert not list((tmp_path / "uploads").rglob("*.pdf"))
    big = PDF + b"0" * MAX_BYTES
    error_of(await api.call("POST", INTAKE, token=clerk, **multipart([("申请书", "a.pdf", big)])), 413,
             "file_too_large")
    bad_id = await api.call("POST", INTAKE, token=clerk, **multipart([], id_number="310104196103150270"))
    assert "id_number" in error_of(bad_id, 422, "validation_failed")["fields"]
    error_of(await api.call("POST", INTAKE, token=clerk, **multipart([], form="{not json")), 422,
             "validation_failed")
    error_of(await api.call("POST", INTAKE, token=clerk, **multipart([], form="{}")), 422, "validation_failed")
    error_of(await api.call("POST", INTAKE, token=clerk, json={"service": "business-startup"}), 415,
             "unsupported_media_type")
    assert await Case.all().count() == 0


async def test_only_clerks_file_window_cases(api: OpenApiClient) -> None:
    citizen = await citizen_token(api, "dev-li")
    error_of(await api.call("POST", INTAKE, **multipart([])), 401, "unauthorized")
    error_of(await api.call("POST", INTAKE, token=citizen, **multipart([])), 403, "staff_only")
    officer = await login(api, "samr01")
    error_of(await api.call("POST", INTAKE, token=officer, **multipart([])), 403, "forbidden_role")


async def test_citizen_binding_later_claims_window_cases_and_certificates(api: OpenApiClient) -> None:
    clerk = await login(api, "win01")
    filed = await api.call("POST", INTAKE, token=clerk,
                           **multipart([], service="senior-card", form=json.dumps(SENIOR, ensure_ascii=False)))
    assert filed.status_code == 201, filed.text
    case_id = filed.json()["id"]
    placeholder = (await Case.get(id=case_id)).applicant
    assert placeholder and placeholder.startswith("window:") and filed.json()["status"] == "completed"
    other = await citizen_token(api, "dev-li", *LI)  # someone else binding claims nothing
    assert (await api.call("GET", "/api/v1/applications", token=other)).json()["total"] == 0
    assert (await Case.get(id=case_id)).applicant == placeholder

    token = (await api.login("dev-wang"))["access_token"]
    assert (await api.call("GET", "/api/v1/applications", token=token)).json()["total"] == 0
    await api.bind_real_name(token, *WANG)
    mine = (await api.call("GET", "/api/v1/applications", token=token)).json()
    assert [c["id"] for c in mine["items"]] == [case_id]
    detail = (await api.call("GET", f"/api/v1/applications/{case_id}", token=token)).json()
    assert detail["certificates"] and any(s["kind"] == "applicant_bound" for s in detail["steps"])
    certificates = (await api.call("GET", "/api/v1/certificates", token=token)).json()
    assert [c["identifier"] for c in certificates["items"]] == [c["identifier"] for c in detail["certificates"]]
    error_of(await api.call("GET", f"/api/v1/applications/{case_id}", token=other), 404, "not_found")
    assert await CaseEvent.filter(case_id=case_id, kind="applicant_bound").count() == 1
    await api.bind_real_name(token, *WANG)  # binding again (idempotent) claims nothing twice
    assert await CaseEvent.filter(case_id=case_id, kind="applicant_bound").count() == 1
