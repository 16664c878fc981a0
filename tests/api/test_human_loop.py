"""The human loop over real HTTP on both database passes: 补正 as one contract whether an officer
asks (``return`` with listed items) or the process models it (the residence permit's review form),
answered by the citizen item by item and shown to the officer beside the request; live status for
the request; withdraw; and the human review that upholds or overturns an automatic decision.
Every answer is checked against the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sanic import Sanic

from engine.platform.seed import hash_password
from engine.store.audit_models import AuditRecord
from engine.store.certificate_models import Certificate
from engine.store.models import CaseEvent, HumanTask, StaffUser
from tests.api.helpers import OpenApiClient, citizen_token, error_of, running_api, sse_events
from tests.api.test_applications_api import HUANG, LI, RESIDENCE, SENIOR, STARTUP, WANG, started
from tests.files.images import PDF, photo

APPLY, TASKS, LOGIN = "/api/v1/applications", "/api/v1/staff/tasks", "/api/v1/staff/login"
PASSWORD = "correct horse battery staple"
STAFF = {"samr01": (["samr"], ["officer"]), "police01": (["police_station"], ["officer"]),
         "police02": (["police_station"], ["officer"]), "mca01": (["mca"], ["officer"])}
ITEMS = ["住所使用证明（产权人签字页）", "股东会决议原件扫描件"]
REVIEW_ITEMS = ["白底免冠证件照（近6个月）", "房屋租赁合同登记备案证明"]


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch,
              tmp_path: Path) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch, UPLOAD_DIR=str(tmp_path / "uploads")) as served:
        served.app.config.SSE_KEEPALIVE_S = 0.3
        hashed = hash_password(PASSWORD)
        for username, (departments, roles) in STAFF.items():
            await StaffUser.create(username=username, name=f"{username}姓名", password_hash=hashed,
                                   departments=departments, roles=roles)
        yield served


async def login(api: OpenApiClient, username: str) -> str:
    response = await api.call("POST", LOGIN, json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def upload(api: OpenApiClient, token: str, data: bytes = PDF, name: str = "scan.pdf") -> str:
    kind = "application/pdf" if data.startswith(b"%PDF") else "image/jpeg"
    response = await api.call("POST", "/api/v1/uploads", token=token, files={"file": (name, data, kind)})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def open_task(case_id: int) -> str:
    [task] = await HumanTask.filter(case_id=case_id, state="ready", kind="bpmn")
    return str(task.id)


# --------------------------------------------------------------------------- 补正 asked by an officer
async def test_officer_lists_items_citizen_answers_each_and_the_officer_sees_it(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang", *WANG)
    case = await started(api, token, "business-startup", STARTUP)
    assert case["supplement"] is None and "supplement" not in case["actions"] and "withdraw" in case["actions"]
    task_id, samr = await open_task(case["id"]), await login(api, "samr01")

    bad = await api.call("POST", f"{TASKS}/{task_id}/return", token=samr, json={"reason": "缺材料", "items": "全部"})
    assert set(error_of(bad, 422, "validation_failed")["fields"]) == {"items"}
    asked = await api.call("POST", f"{TASKS}/{task_id}/return", token=samr,
                           json={"reason": "请补充以下材料", "items": ITEMS})
    assert asked.status_code == 200, asked.text

    detail = (await api.call("GET", f"{APPLY}/{case['id']}", token=token)).json()
    request = detail["supplement"]
    # the citizen reads who asked as the department, never the officer's account
    assert (request["reason"], request["items"], request["requested_by"]) == (
        "请补充以下材料", ITEMS, "市场监督管理局工作人员")
    assert "samr01" not in json.dumps(detail, ensure_ascii=False)
    assert request["requested_at"] < request["due_at"] and request["source"] == "officer"
    assert detail["actions"][0] == "supplement" and detail["sla_paused"] is True
    assert [s["action"] for s in detail["steps"]][-2:] == ["要求补正", "等待补正（计时暂停）"]

    url = f"{APPLY}/{case['id']}/supplement"
    sign1, sign2, resolution = await upload(api, token), await upload(api, token, photo()), await upload(api, token)
    stranger = await citizen_token(api, "dev-lina", *LI)
    foreign = await upload(api, stranger)
    for body, field in (({"materials": {ITEMS[0]: [sign1]}}, "note"),
                        ({"note": "已补充", "materials": {"不存在的事项": [sign1]}}, "materials"),
                        ({"note": "已补充", "materials": {ITEMS[0]: []}}, "materials"),
                        ({"note": "已补充", "materials": {ITEMS[0]: ["../etc/passwd"]}}, "materials"),
                        ({"note": "已补充", "materials": {ITEMS[0]: ["not-a-uuid"]}}, f"materials.{ITEMS[0]}"),
                        ({"note": "已补充", "materials": {ITEMS[0]: [foreign]}}, f"materials.{ITEMS[0]}"),
                        ({"note": "已补充", "form": "地址"}, "form")):
        assert set(error_of(await api.call("POST", url, token=token, json=body), 422,
                            "validation_failed")["fields"]) == {field}, body
    answered = await api.call("POST", url, token=token, json={
        "note": "已补充签字页和决议", "materials": {ITEMS[0]: [sign1, sign2], ITEMS[1]: [resolution]}})
    assert answered.status_code == 200, answered.text
    after = answered.json()
    assert after["supplement"] is None and "supplement" not in after["actions"] and after["sla_paused"] is False
    error_of(await api.call("POST", url, token=token, json={"note": "再补一次"}), 409, "conflict")

    view = (await api.call("GET", f"{TASKS}/{task_id}", token=samr)).json()
    [round_] = view["supplements"]
    assert (round_["reason"], round_["items"]) == ("请补充以下材料", ITEMS)
    assert round_["supplied_by"].startswith("citizen:") and round_["answer"]["note"] == "已补充签字页和决议"
    assert round_["answer"]["materials"] == {ITEMS[0]: [sign1, sign2], ITEMS[1]: [resolution]}
    assert [(f["id"], f["material"], f["source"], f["content_type"]) for f in round_["answer"]["files"]] == [
        (sign1, ITEMS[0], "supplement", "application/pdf"), (sign2, ITEMS[0], "supplement", "image/jpeg"),
        (resolution, ITEMS[1], "supplement", "application/pdf")]
    # the officer's timeline names people, not ids: 申请人, the officer with their department, 系统
    shown = {e["actor"]: e["actor_name"] for e in view["timeline"]}
    citizen_actor = round_["supplied_by"]
    assert shown[citizen_actor] == "申请人" and shown["samr01"] == "samr01姓名（市场监督管理局）"
    assert {e["actor_name"] for e in view["timeline"] if e["actor"] in (None, "system")} <= {"系统"}
    assert not any(":" in e["actor_name"] for e in view["timeline"])
    assert round_["requested_by_name"] == "samr01姓名（市场监督管理局）"
    assert view["task"]["assignee_name"] == "samr01姓名（市场监督管理局）"
    # attached to the case: the same upload cannot answer again or go into another application
    assert (await api.call("GET", f"/api/v1/uploads/{sign1}", token=token)).json()["attached"] is True
    names = [m["name"] for m in view["materials"]]
    assert ITEMS[0] in names and ITEMS[1] in names  # the case's materials list gained the supplied items
    assert view["task"]["state"] == "claimed" and "complete" in view["actions"]


async def test_the_review_forms_supplement_option_is_the_same_contract(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-huang", *HUANG)
    case = await started(api, token, "residence-permit", RESIDENCE)
    task_id, police = await open_task(case["id"]), await login(api, "police01")
    done = await api.call("POST", f"{TASKS}/{task_id}/complete", token=police, json={"data": {
        "review_outcome": "supplement", "review_opinion": "证件照不符合要求，租赁合同未备案",
        "supplement_request": REVIEW_ITEMS}})
    assert done.status_code == 200, done.text

    detail = (await api.call("GET", f"{APPLY}/{case['id']}", token=token)).json()
    request = detail["supplement"]
    assert (request["reason"], request["items"], request["requested_by"], request["source"]) == (
        "证件照不符合要求，租赁合同未备案", REVIEW_ITEMS, "派出所工作人员", "process")
    assert request["due_at"] and "supplement" in detail["actions"]
    assert "withdraw" not in detail["actions"]  # the police station has acted: accepted

    photo_id, lease = await upload(api, token, photo(), "photo.jpg"), await upload(api, token)
    answered = await api.call("POST", f"{APPLY}/{case['id']}/supplement", token=token, json={
        "note": "已重新拍照并补充备案证明", "materials": {REVIEW_ITEMS[0]: [photo_id], REVIEW_ITEMS[1]: [lease]},
        "form": {"photo_ref": "ZP20261206-0077"}})
    assert answered.status_code == 200, answered.text
    assert answered.json()["supplement"] is None

    [review] = await HumanTask.filter(case_id=case["id"], state="ready", kind="bpmn")
    view = (await api.call("GET", f"{TASKS}/{review.id}", token=police)).json()
    [round_] = view["supplements"]
    assert (round_["reason"], round_["items"], round_["requested_by"], round_["requested_by_name"]) == (
        "证件照不符合要求，租赁合同未备案", REVIEW_ITEMS, "police01", "police01姓名（派出所）")
    assert round_["answer"]["note"] == "已重新拍照并补充备案证明"
    assert round_["answer"]["materials"] == {REVIEW_ITEMS[0]: [photo_id], REVIEW_ITEMS[1]: [lease]}
    assert [f["id"] for f in round_["answer"]["files"]] == [photo_id, lease]
    assert round_["answer"]["form"] == {"photo_ref": "ZP20261206-0077"}


async def test_live_status_tells_the_citizen_about_the_request(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang", *WANG)
    case = await started(api, token, "business-startup", STARTUP)
    task_id, samr = await open_task(case["id"]), await login(api, "samr01")
    kinds: list[list[str]] = []

    async def listen_for(kind: str) -> None:
        async with api.client.stream("GET", f"{APPLY}/{case['id']}/events",
                                     headers={"Authorization": f"Bearer {token}"}) as response:
            async for event in sse_events(response):
                if "data" in event:
                    kinds.append(event["data"]["events"])
                    if kind in event["data"]["events"]:
                        return

    listening = asyncio.create_task(listen_for("supplement_requested"))
    for _ in range(100):
        if kinds:
            break
        await asyncio.sleep(0.02)
    assert kinds == [[]]  # the current status first
    asked = await api.call("POST", f"{TASKS}/{task_id}/return", token=samr, json={"reason": "补充", "items": ITEMS})
    assert asked.status_code == 200
    await asyncio.wait_for(listening, 5)
    assert kinds[-1] == ["supplement_requested"]

    # the answer is pushed too (the officer's task page and any other open page of the citizen)
    kinds.clear()
    listening = asyncio.create_task(listen_for("supplement_received"))
    for _ in range(100):
        if kinds:
            break
        await asyncio.sleep(0.02)
    answered = await api.call("POST", f"{APPLY}/{case['id']}/supplement", token=token, json={"note": "已补充"})
    assert answered.status_code == 200
    await asyncio.wait_for(listening, 5)
    assert kinds[-1] == ["supplement_received"]


# --------------------------------------------------------------------------- withdraw
async def test_withdraw_is_offered_before_acceptance_and_ends_the_case(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-huang", *HUANG)
    case = await started(api, token, "residence-permit", RESIDENCE)
    assert "withdraw" in case["actions"]
    withdrawn = await api.call("POST", f"{APPLY}/{case['id']}/withdraw", token=token, json={"reason": "信息填错了"})
    assert withdrawn.status_code == 200, withdrawn.text
    body = withdrawn.json()
    assert (body["status"], body["actions"], body["current_steps"]) == ("withdrawn", [], [])
    assert body["steps"][-1]["action"] == "申请人撤回" and body["steps"][-1]["opinion"] == "信息填错了"
    assert await HumanTask.filter(case_id=case["id"], state__in=("ready", "claimed")).count() == 0
    police = await login(api, "police01")
    assert (await api.call("GET", TASKS, token=police)).json()["total"] == 0
    assert await CaseEvent.filter(case_id=case["id"], kind="withdrawn").count() == 1


# --------------------------------------------------------------------------- human review that decides
async def ask_review(api: OpenApiClient, token: str, case_id: int, reason: str) -> str:
    detail = (await api.call("GET", f"{APPLY}/{case_id}", token=token)).json()
    assert "review" in detail["actions"]
    asked = await api.call("POST", f"{APPLY}/{case_id}/review-request", token=token, json={"reason": reason})
    assert asked.status_code == 200, asked.text
    assert asked.json()["review"]["status"] == "pending" and "review" not in asked.json()["actions"]
    [task] = await HumanTask.filter(case_id=case_id, kind="review")
    return str(task.id)


async def test_overturning_a_refusal_issues_the_certificate(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-lina", *LI)
    case = await started(api, token, "senior-card", SENIOR)
    assert (case["status"], case["result"]["outcome"], case["certificates"]) == ("completed", "rejected", [])
    task_id = await ask_review(api, token, case["id"], "本人长期照顾老人，系统年龄核验有误，请人工复核")
    mca = await login(api, "mca01")

    view = (await api.call("GET", f"{TASKS}/{task_id}", token=mca)).json()
    assert view["review"]["outcome"] == "rejected" and view["review"]["decision"]["outcome"] == "reject"
    assert view["review"]["citizen_reason"].startswith("本人长期照顾老人")
    for data, fields in (({}, {"verdict", "reason"}), ({"verdict": "cancel", "reason": "理由充分"}, {"verdict"}),
                         ({"verdict": "overturn", "reason": "x"}, {"reason"})):
        bad = await api.call("POST", f"{TASKS}/{task_id}/complete", token=mca, json={"data": data})
        assert set(error_of(bad, 422, "validation_failed")["fields"]) == fields
    assert await Certificate.filter(case_id=case["id"]).count() == 0  # nothing issued by a refused form

    done = await api.call("POST", f"{TASKS}/{task_id}/complete", token=mca, json={
        "data": {"verdict": "overturn", "reason": "经核实申请人户籍和年龄信息有更正，准予办理"}})
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "completed"

    detail = (await api.call("GET", f"{APPLY}/{case['id']}", token=token)).json()
    assert detail["result"] == {"outcome": "approved", "reason": "经核实申请人户籍和年龄信息有更正，准予办理",
                                "decided_by": "review"}
    assert detail["review"]["status"] == "decided" and detail["review"]["verdict_label"] == "撤销原决定"
    [cert] = detail["certificates"]
    assert cert["state"] == "01" and cert["name"] and cert["holder_name"] == "李*"
    assert detail["steps"][-1]["action"] == "人工复核结论"
    mine = (await api.call("GET", "/api/v1/certificates", token=token)).json()
    assert cert["identifier"] in str(mine)
    record = await AuditRecord.filter(kind="review.decide").order_by("-id").first()
    assert record is not None and record.actor == "mca01" and json.loads(record.detail)["outcome"] == "approved"
    error_of(await api.call("POST", f"{TASKS}/{task_id}/complete", token=mca,
                            json={"data": {"verdict": "uphold", "reason": "再次"}}), 409, "task_already_completed")
    inbox = (await api.call("GET", "/api/v1/me/messages", token=token)).json()["items"]
    [told] = [m for m in inbox if m["kind"] == "review_decided"]  # the citizen is told the verdict
    assert told["title"] == "人工复核结果" and "撤销原决定" in told["body"] and "准予办理" in told["body"]


async def test_overturning_an_approval_revokes_the_certificate_and_uphold_changes_nothing(
        api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang", *WANG)
    case = await started(api, token, "senior-card", SENIOR)
    [issued] = case["certificates"]
    task_id = await ask_review(api, token, case["id"], "我已迁出本市，请复核是否应发证")
    mca = await login(api, "mca01")
    done = await api.call("POST", f"{TASKS}/{task_id}/complete", token=mca, json={
        "data": {"verdict": "overturn", "reason": "申请人户籍已迁出，不符合条件"}})
    assert done.status_code == 200, done.text
    detail = (await api.call("GET", f"{APPLY}/{case['id']}", token=token)).json()
    assert detail["result"]["outcome"] == "rejected" and detail["review"]["verdict"] == "overturn"
    assert [c["state"] for c in detail["certificates"]] == ["03"]
    assert (await Certificate.get(id=issued["id"])).state == "03"

    other = await citizen_token(api, "dev-lina", *LI)
    refused = await started(api, other, "senior-card", SENIOR)
    review = await ask_review(api, other, refused["id"], "请复核")
    upheld = await api.call("POST", f"{TASKS}/{review}/complete", token=mca, json={
        "data": {"verdict": "uphold", "reason": "申请人未满60周岁，维持不予决定"}})
    assert upheld.status_code == 200
    after = (await api.call("GET", f"{APPLY}/{refused['id']}", token=other)).json()
    assert after["result"]["outcome"] == "rejected" and after["certificates"] == []
    assert (after["review"]["verdict_label"], after["review"]["decision_reason"]) == (
        "维持原决定", "申请人未满60周岁，维持不予决定")


# --------------------------------------------------------------------------- company licences, rectification
async def test_the_applicant_sees_and_shows_the_new_companys_licence(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang", *WANG)
    form = {k: v for k, v in STARTUP.items() if k not in {"need_seal", "need_invoices", "employees",
                                                          "need_bank_account", "bank_name"}}
    case = await started(api, token, "business-startup", form)
    samr = await login(api, "samr01")
    done = await api.call("POST", f"{TASKS}/{await open_task(case['id'])}/complete", token=samr,
                          json={"data": {"intake_accepted": True, "intake_opinion": "材料齐全，予以受理"}})
    assert done.status_code == 200, done.text
    detail = (await api.call("GET", f"{APPLY}/{case['id']}", token=token)).json()
    [licence] = detail["certificates"]
    assert (licence["name"], licence["holder_name"]) == ("营业执照", STARTUP["company_name"])  # public: in full
    mine = (await api.call("GET", "/api/v1/certificates", token=token)).json()["items"]
    assert [c["holder_name"] for c in mine if c["id"] == licence["id"]] == [STARTUP["company_name"]]
    qr = await api.call("GET", f"/api/v1/certificates/{licence['id']}/qrcode", token=token, params={"format": "svg"})
    assert qr.status_code == 200 and qr.text.lstrip().startswith("<")
    # someone else (not the applicant) neither lists nor opens it
    other = await citizen_token(api, "dev-lina", *LI)
    assert licence["id"] not in [c["id"] for c in (await api.call("GET", "/api/v1/certificates", token=other))
                                 .json()["items"]]
    error_of(await api.call("GET", f"/api/v1/certificates/{licence['id']}", token=other), 404,
             "certificate_not_found")


async def test_the_legal_representative_who_did_not_apply_sees_the_licence(api: OpenApiClient) -> None:
    """黄丽 files the bundle for a company whose legal representative is 王建国: he never applied,
    yet his 证照 lists the company's licences (matched by his ID number's keyed hash); a namesake
    with another ID number and a shareholder see nothing."""
    applicant = await citizen_token(api, "dev-huang", *HUANG)
    form = {k: v for k, v in STARTUP.items() if k not in {"need_seal", "need_invoices", "employees",
                                                          "need_bank_account", "bank_name"}}
    case = await started(api, applicant, "business-startup", form)
    samr = await login(api, "samr01")
    done = await api.call("POST", f"{TASKS}/{await open_task(case['id'])}/complete", token=samr,
                          json={"data": {"intake_accepted": True, "intake_opinion": "材料齐全，予以受理"}})
    assert done.status_code == 200, done.text
    [row] = await Certificate.filter(case_id=case["id"])
    assert row.representative_hash and len(row.representative_hash) == 64
    assert WANG[1] not in json.dumps([row.representative_hash, row.holder_code_masked, row.data], ensure_ascii=False)
    representative = await citizen_token(api, "dev-wang", *WANG)
    listed = (await api.call("GET", "/api/v1/certificates", token=representative)).json()["items"]
    assert [(c["id"], c["name"], c["holder_name"]) for c in listed] == [(row.id, "营业执照", STARTUP["company_name"])]
    opened = await api.call("GET", f"/api/v1/certificates/{row.id}", token=representative)
    assert opened.status_code == 200 and opened.json()["holder_name"] == STARTUP["company_name"]
    qr = await api.call("GET", f"/api/v1/certificates/{row.id}/qrcode", token=representative, params={"format": "svg"})
    assert qr.status_code == 200 and qr.text.lstrip().startswith("<")
    # the applicant still sees it too (applicant of the issuing case)
    assert row.id in [c["id"] for c in (await api.call("GET", "/api/v1/certificates", token=applicant)).json()["items"]]
    # by the ID number, never the name: a namesake 王建国 with another number, and a shareholder, see nothing
    for code, person in (("dev-namesake", (WANG[0], "310104197001011234")), ("dev-lina", LI)):
        other = await citizen_token(api, code, *person)
        assert (await api.call("GET", "/api/v1/certificates", token=other)).json()["items"] == []
        error_of(await api.call("GET", f"/api/v1/certificates/{row.id}", token=other), 404, "certificate_not_found")


async def test_rectification_task_shows_rating_case_and_a_masked_phone_revealed_on_record(
        api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-lina", *LI)
    case = await started(api, token, "senior-card", {**SENIOR, "phone": "13917724680"})
    rated = await api.call("POST", f"{APPLY}/{case['id']}/evaluation", token=token,
                           json={"level": 5, "comment": "拒绝理由看不懂，也没人解释"})
    number = rated.json()["rectification_case_no"]
    detail = (await api.call("GET", f"{APPLY}/{case['id']}", token=token)).json()
    assert detail["evaluation"]["rectification_case_no"] == number

    [task] = await HumanTask.filter(case__case_no=number, state="ready")
    mca = await login(api, "mca01")
    view = (await api.call("GET", f"{TASKS}/{task.id}", token=mca)).json()
    info = view["rectification"]
    assert (info["level"], info["comment"], info["case_no"]) == ("非常不满意", "拒绝理由看不懂，也没人解释", case["case_no"])
    assert info["original"]["service_name"] == "老年人优待证办理" and info["original"]["result"]["outcome"] == "rejected"
    assert info["phone_masked"] == "139****4680" and "13917724680" not in str(view)

    before = (await api.call("GET", "/api/v1/me/access-log", token=token)).json()
    revealed = await api.call("POST", f"{TASKS}/{task.id}/reveal-phone", token=mca)
    assert revealed.status_code == 200 and revealed.json()["phone"] == "13917724680"
    assert revealed.headers["cache-control"] == "no-store"
    after = (await api.call("GET", "/api/v1/me/access-log", token=token)).json()
    assert after["total"] == before["total"] + 1
    newest = after["items"][0]
    assert newest["case_no"] == case["case_no"] and "差评回访" in newest["purpose"]
    samr = await login(api, "samr01")  # another department: not theirs
    error_of(await api.call("POST", f"{TASKS}/{task.id}/reveal-phone", token=samr), 403, "forbidden_department")


async def test_a_review_of_an_ended_case_offers_complete(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-lina", *LI)
    case = await started(api, token, "senior-card", SENIOR)
    task_id = await ask_review(api, token, case["id"], "请复核")
    view = (await api.call("GET", f"{TASKS}/{task_id}", token=await login(api, "mca01"))).json()
    assert view["case"]["status"] == "completed" and view["actions"] == ["claim", "complete", "comment"]


async def test_one_officer_cannot_sign_both_countersign_instances(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-huang", *HUANG)
    case = await started(api, token, "residence-permit", RESIDENCE)
    police, chief = await login(api, "police01"), await login(api, "police02")
    done = await api.call("POST", f"{TASKS}/{await open_task(case['id'])}/complete", token=police, json={
        "data": {"review_outcome": "approve", "review_opinion": "材料齐全，提交会签"}})
    assert done.status_code == 200, done.text
    first, second = [str(t.id) for t in await HumanTask.filter(case_id=case["id"], state="ready", kind="bpmn")]
    sign = {"data": {"signature": {"decision": "approve", "opinion": "同意签发"}}}
    assert (await api.call("POST", f"{TASKS}/{first}/complete", token=police, json=sign)).status_code == 200
    error_of(await api.call("POST", f"{TASKS}/{second}/complete", token=police, json=sign), 409,
             "already_signed_this_case")
    assert (await HumanTask.get(id=second)).state == "ready"  # the refused auto-claim was undone
    assert (await api.call("POST", f"{TASKS}/{second}/complete", token=chief, json=sign)).status_code == 200
    detail = (await api.call("GET", f"{APPLY}/{case['id']}", token=token)).json()
    assert detail["status"] == "completed" and [c["name"] for c in detail["certificates"]] == ["居住证"]
