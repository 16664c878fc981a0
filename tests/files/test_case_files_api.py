"""Materials from application to back office over real HTTP, on both database passes and both file
stores: the citizen's uploads attach to the application (required ones checked, per-material
Chinese messages), the officer reads the form (masked, with a logged reveal) and opens the files
(the case's departments only; every open an access-log row the citizen sees), window scans show
as source=window, a clerk finds cases and prints the receipt, and purging a case deletes its files."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from sanic import Sanic

from engine.accountability.retention import RetentionPolicy, purge
from engine.platform.files import delete_case_files
from engine.platform.seed import hash_password
from engine.platform.uploads import store_from_settings
from engine.store.models import Case, StaffUser, Upload
from engine.store.shared_models import DataAccessLog
from tests.api.conftest import fresh_db, make_app  # noqa: F401 - fixtures
from tests.api.helpers import OpenApiClient, citizen_token, decode_qr_svg, error_of, running_api
from tests.api.test_applications_api import HUANG, RESIDENCE, STARTUP, WANG
from tests.files.images import GPS_IFD, PDF, exif_of, photo

APPLY, UPLOADS, TASKS = "/api/v1/applications", "/api/v1/uploads", "/api/v1/staff/tasks"
PHOTO, LEASE = "近期免冠证件照", "居住证明（房屋租赁合同登记备案证明、房屋权属证明或单位、学校住宿证明）"
PASSWORD = "correct horse battery staple"
STAFF = {"ps01": (["police_station"], ["officer"]), "samr01": (["samr"], ["officer"]),
         "win01": (["window"], ["clerk"])}


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch,  # noqa: F811
              store_settings: dict[str, Any]) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch, **store_settings) as served:
        hashed = hash_password(PASSWORD)
        for username, (departments, roles) in STAFF.items():
            await StaffUser.create(username=username, name=username, password_hash=hashed,
                                   departments=departments, roles=roles)
        yield served


async def login(api: OpenApiClient, username: str) -> str:
    response = await api.call("POST", "/api/v1/staff/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def upload(api: OpenApiClient, token: str, data: bytes, name: str = "a.jpg") -> str:
    response = await api.call("POST", UPLOADS, token=token, files={"file": (name, data, "image/jpeg")})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def apply(api: OpenApiClient, token: str, materials: Any, service: str = "residence-permit",
                form: Any = None) -> Any:
    return await api.call("POST", APPLY, token=token, json={"service": service, "form": form or RESIDENCE,
                                                            "materials": materials})


async def materials_read(huang: str, api: OpenApiClient) -> list[dict[str, Any]]:
    log = (await api.call("GET", "/api/v1/me/access-log", token=huang, params={"size": 100})).json()["items"]
    return [e for e in log if e.get("dataset") == "materials"]


async def test_officer_sees_form_and_files_and_each_open_is_logged(api: OpenApiClient) -> None:
    huang = await citizen_token(api, "dev-huang", *HUANG)
    picture, lease = await upload(api, huang, photo()), await upload(api, huang, PDF, "lease.pdf")
    response = await apply(api, huang, {PHOTO: [picture], LEASE: [lease]})
    assert response.status_code == 201, response.text
    case_id = response.json()["id"]
    assert (await api.call("GET", f"{UPLOADS}/{picture}", token=huang)).json()["attached"] is True

    officer = await login(api, "ps01")
    [task] = (await api.call("GET", TASKS, token=officer)).json()["items"]
    detail = (await api.call("GET", f"{TASKS}/{task['id']}", token=officer)).json()
    fields = {f["path"]: f for f in detail["application"]["fields"]}
    assert fields["employer"]["value"] == RESIDENCE["employer"] and fields["employer"]["masked"] is False
    assert fields["phone"]["value"] == "150****9246" and fields["phone"]["masked"] is True
    assert fields["phone"]["label"] == "联系电话" and fields["residence_type"]["value"] == "租赁房屋"
    assert fields["address.detail"]["masked"] and RESIDENCE["address"]["detail"] not in json.dumps(detail, ensure_ascii=False)
    materials = {m["name"]: m for m in detail["materials"]}
    assert materials[PHOTO]["status"] == "received" and materials["户籍信息"]["status"] == "satisfied"
    [shown] = materials[PHOTO]["files"]
    assert (shown["id"], shown["source"], shown["content_type"]) == (picture, "applicant", "image/jpeg")
    assert shown["name"] == f"{PHOTO}-1.jpg" and shown["url"] == f"/api/v1/staff/files/{picture}"
    assert materials[LEASE]["files"][0]["content_type"] == "application/pdf"
    assert await materials_read(huang, api) == []

    opened = await api.call("GET", shown["url"], token=officer)
    assert opened.status_code == 200 and opened.headers["content-type"] == "image/jpeg"
    assert opened.headers["x-content-type-options"] == "nosniff"
    assert "inline" in opened.headers["content-disposition"] and "filename*=UTF-8''" in opened.headers["content-disposition"]
    assert opened.content == store_from_settings(api.app.ctx.settings).get((await Upload.get(id=picture)).key)
    pdf = await api.call("GET", materials[LEASE]["files"][0]["url"], token=officer)
    assert pdf.status_code == 200 and pdf.content == PDF and pdf.headers["content-type"] == "application/pdf"
    assert (await api.call("GET", shown["url"], token=officer)).status_code == 200

    reads = await materials_read(huang, api)  # one row per open, named for the citizen
    assert len(reads) == 3 and {r["department"] for r in reads} == {"police_station"}
    assert sum(PHOTO in r["purpose"] for r in reads) == 2

    other = await login(api, "samr01")
    error_of(await api.call("GET", shown["url"], token=other), 403, "forbidden_case_file")
    error_of(await api.call("GET", "/api/v1/staff/files/00000000-0000-0000-0000-000000000000", token=officer),
             404, "not_found")
    error_of(await api.call("GET", shown["url"], token=huang), 403, "staff_only")
    assert len(await materials_read(huang, api)) == 3  # refused opens read nothing

    reveal = f"{TASKS}/{task['id']}/reveal"
    full = await api.call("POST", reveal, token=officer, json={"field": "phone"})
    assert full.status_code == 200 and full.json() == {"field": "phone", "value": RESIDENCE["phone"]}
    assert (await DataAccessLog.filter(dataset="application_form", case_id=case_id).count()) == 1
    error_of(await api.call("POST", reveal, token=officer, json={"field": "employer"}), 422, "validation_failed")
    error_of(await api.call("POST", reveal, token=other, json={"field": "phone"}), 403, "forbidden_department")


async def test_required_materials_and_upload_ownership_are_checked(api: OpenApiClient) -> None:
    huang = await citizen_token(api, "dev-huang", *HUANG)
    missing = error_of(await apply(api, huang, {}), 422, "validation_failed")
    assert missing["fields"] == {f"materials.{PHOTO}": f"请上传「{PHOTO}」"} and PHOTO in missing["message"]
    assert LEASE not in missing["message"]  # may follow by 补正 (容缺受理)
    wang = await citizen_token(api, "dev-wang", *WANG)
    wangs = await upload(api, wang, photo())
    theirs = error_of(await apply(api, huang, {PHOTO: [wangs]}), 422, "validation_failed")
    assert "不存在或已过期" in theirs["fields"][f"materials.{PHOTO}"]
    bad = error_of(await apply(api, huang, {"身份证正反面": [wangs], PHOTO: ["x"]}), 422, "validation_failed")
    assert set(bad["fields"]) == {"materials.身份证正反面", f"materials.{PHOTO}"}
    mine = await upload(api, huang, photo(colour=(9, 9, 9)))
    assert (await apply(api, huang, {PHOTO: [mine]})).status_code == 201
    again = error_of(await apply(api, huang, {PHOTO: [mine]}), 422, "validation_failed")
    assert "已用于其他申请" in again["fields"][f"materials.{PHOTO}"]
    expired = await upload(api, huang, photo(colour=(8, 8, 8)))
    await Upload.filter(id=expired).update(expires_at=api.app.ctx.engine.deps.clock() - timedelta(seconds=1))
    error_of(await apply(api, huang, {PHOTO: [expired]}), 422, "validation_failed")
    assert await Case.all().count() == 1
    # items whose materials may follow (business start-up, 容缺受理) go in without uploads
    assert (await apply(api, wang, None, "business-startup", STARTUP)).status_code == 201


async def test_window_scans_are_opened_by_the_back_office(api: OpenApiClient) -> None:
    clerk = await login(api, "win01")
    data = {"service": "business-startup", "form": json.dumps(STARTUP, ensure_ascii=False), "name": WANG[0],
            "id_number": WANG[1], "material_names": ["公司章程", "住所（经营场所）使用证明"]}
    parts = [(k, (None, v)) for k, value in data.items() for v in (value if isinstance(value, list) else [value])]
    filed = await api.call("POST", "/api/v1/staff/applications", token=clerk, files=parts + [
        ("materials", ("章程.pdf", PDF, "application/pdf")), ("materials", ("租约.jpg", photo(), "image/jpeg"))])
    assert filed.status_code == 201, filed.text
    officer = await login(api, "samr01")
    [task] = (await api.call("GET", TASKS, token=officer)).json()["items"]
    detail = (await api.call("GET", f"{TASKS}/{task['id']}", token=officer)).json()
    scans = {m["name"]: m["files"] for m in detail["materials"] if m["files"]}
    assert set(scans) == {"公司章程", "住所（经营场所）使用证明"}
    assert {f["source"] for files in scans.values() for f in files} == {"window"}
    opened = await api.call("GET", scans["公司章程"][0]["url"], token=officer)
    assert opened.status_code == 200 and opened.content == PDF
    [read] = await DataAccessLog.filter(dataset="materials")
    assert read.actor == "samr01" and read.case_id == filed.json()["id"] and "窗口收件" in read.purpose
    # the phone photo the clerk scanned comes back without its EXIF (GPS position, camera)
    lease = await api.call("GET", scans["住所（经营场所）使用证明"][0]["url"], token=officer)
    assert lease.status_code == 200 and lease.headers["content-type"] == "image/jpeg"
    assert exif_of(photo()).get(GPS_IFD) and exif_of(lease.content) == {} and b"GovflowPhone" not in lease.content
    # the clerk who took the case finds it by ID number and prints its receipt
    found = await api.call("GET", "/api/v1/staff/cases", token=clerk, params={"q": WANG[1]})
    assert [c["case_no"] for c in found.json()["items"]] == [filed.json()["case_no"]]
    assert found.json()["items"][0]["applicant_id"] == "310***********0273"
    assert await DataAccessLog.filter(dataset="case_search").count() == 1
    by_no = await api.call("GET", "/api/v1/staff/cases", token=clerk, params={"q": filed.json()["case_no"]})
    assert [c["id"] for c in by_no.json()["items"]] == [filed.json()["id"]]
    error_of(await api.call("GET", "/api/v1/staff/cases", token=clerk, params={"q": "王建国"}), 422, "validation_failed")
    receipt = (await api.call("GET", f"/api/v1/staff/cases/{filed.json()['id']}/receipt", token=clerk)).json()
    assert receipt["case_no"] == filed.json()["case_no"] and receipt["promised_date"]
    how = {m["name"]: m["how"] for m in receipt["materials"]}
    assert how["公司章程"] == "已收取 1 份" and how["股东、法定代表人身份及失信信息"] == "共享数据获取"
    assert decode_qr_svg(receipt["qr_svg"]) == [receipt["track_url"]]
    assert receipt["track_url"].endswith(f"/m/#/cases/{filed.json()['id']}")
    for missing in (filed.json()["id"] + 1, 2**40):  # no row can have 2**40: a 404, not an overflow
        error_of(await api.call("GET", f"/api/v1/staff/cases/{missing}/receipt", token=clerk), 404, "not_found")


async def test_purging_a_case_deletes_its_files(api: OpenApiClient) -> None:
    huang = await citizen_token(api, "dev-huang", *HUANG)
    picture = await upload(api, huang, photo())
    case_id = (await apply(api, huang, {PHOTO: [picture]})).json()["id"]
    key = (await Upload.get(id=picture)).key
    store = store_from_settings(api.app.ctx.settings)
    assert store.exists(key)
    engine = api.app.ctx.engine
    now = engine.deps.clock()
    await Case.filter(id=case_id).update(status="withdrawn", completed_at=now - timedelta(days=800))
    report = await purge(engine, RetentionPolicy(audit_days=1000, access_log_days=1000, case_data_days=730),
                         now=now, remove_files=lambda cid: delete_case_files(store, cid))
    assert report.files == 1 and len(report.cases) == 1 and "材料文件 1 份" in report.describe()
    assert not store.exists(key) and not await Upload.filter(case_id=case_id).exists()
    officer = await login(api, "ps01")
    error_of(await api.call("GET", f"/api/v1/staff/files/{picture}", token=officer), 404, "not_found")
