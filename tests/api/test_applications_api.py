"""Citizen applications over real HTTP, on both database passes: applying (real name, form errors,
idempotency keys, concurrent retries, rate limit), my cases and their detail, the applicant's
operations (withdraw, review request, evaluation, supplement) with their conflicts, request format
errors, and the live status stream (server-sent events, ``Last-Event-ID``).

Officer steps run through the served app's own engine (``api.app.ctx.engine``), as the staff
workbench will. Every ``/api/v1`` answer is checked against the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate as validate_spec
from sanic import Sanic

from engine.accountability.privacy import PiiKeys, blind_index
from engine.store.models import Case, Evaluation
from engine.store.shared_models import DataAccessLog
from mobile_api.api import applications as applications_api
from mobile_api.auth import RATE_LIMITS, RateRule
from tests.api.helpers import OpenApiClient, citizen_token, error_of, running_api, sse_events

APPLY = "/api/v1/applications"
WANG = ("王建国", "310104196103150273")  # 65, local: senior card approved in seconds
LI = ("李娜", "310110198606200486")  # 40: rejected automatically
HUANG = ("黄丽", "440106199802142083")  # non-local: residence permit
SENIOR = {"phone": "13816612345", "address": {"region_code": "310104", "detail": "漕溪北路88弄3号602室"},
          "delivery": "mail"}
STARTUP = {
    "company_name": "上海云帆信息科技有限公司", "company_type": "llc",
    "address": {"region_code": "310115", "detail": "张江路665号3层301室"}, "registered_capital": 100,
    "legal_representative": {"name": WANG[0], "id_number": WANG[1], "phone": "13816612345"},
    "shareholders": [{"name": WANG[0], "id_number": WANG[1], "share_percent": 60},
                     {"name": LI[0], "id_number": LI[1], "share_percent": 40}],
    "business_scope": "信息技术咨询服务；软件开发；技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广",
    "need_seal": True, "need_invoices": True, "employees": 5, "need_bank_account": True, "bank_name": "中国工商银行",
}
ACCEPT = {"intake_accepted": True, "intake_opinion": "材料齐全，符合法定形式，予以受理"}
RESIDENCE = {"address": {"region_code": "310115", "detail": "浦东新区张杨路1500号3号楼1202室"},
             "residence_type": "rented", "residence_start_date": "2025-03-01", "employer": "上海云帆信息科技有限公司",
             "phone": "15013579246", "photo_ref": "ZP20261128-0042"}
PHOTO_MATERIAL = "近期免冠证件照"  # residence permit: required, uploaded by the citizen
ASK_SUPPLEMENT = {"review_outcome": "supplement", "review_opinion": "证件照不符合要求",
                  "supplement_request": ["重新拍摄白底证件照"]}


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch) as served:
        served.app.config.SSE_KEEPALIVE_S = 0.3
        yield served


async def apply(api: OpenApiClient, token: str, service: str = "senior-card", form: Any = None,
                key: str | None = None, materials: dict[str, list[str]] | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    body = {"service": service, "form": SENIOR if form is None else form,
            **({"materials": materials} if materials is not None else {})}
    return await api.call("POST", APPLY, token=token, headers=headers, json=body)


async def upload_photo(api: OpenApiClient, token: str) -> str:
    """A citizen's photo upload (POST /uploads); its id."""
    from tests.files.images import photo

    response = await api.call("POST", "/api/v1/uploads", token=token,
                              files={"file": ("photo.jpg", photo(), "image/jpeg")})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def started(api: OpenApiClient, token: str, service: str, form: dict[str, Any],
                  materials: dict[str, list[str]] | None = None) -> dict[str, Any]:
    if materials is None and service == "residence-permit":  # its ID photo must come with the application
        materials = {PHOTO_MATERIAL: [await upload_photo(api, token)]}
    response = await apply(api, token, service, form, materials=materials)
    assert response.status_code == 201, response.text
    return response.json()


async def citizen_id(api: OpenApiClient, token: str) -> int:
    return int((await api.call("GET", "/api/v1/me", token=token)).json()["id"])


# --------------------------------------------------------------------------- applying

async def test_senior_card_for_wang_is_approved_with_a_masked_certificate(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang", *WANG)
    response = await apply(api, token)
    assert response.status_code == 201
    body = response.json()
    assert response.headers["Location"] == f"{APPLY}/{body['id']}"
    assert (body["service"], body["service_name"], body["channel"]) == ("senior-card", "老年人优待证办理", "mobile")
    assert (body["status"], body["status_label"]) == ("completed", "已办结")
    assert body["decision"]["outcome"] == "approve" and body["decision"]["reason"].startswith("申请人年满60周岁")
    assert body["result"]["outcome"] == "approved" and body["result"]["reason"]
    [certificate] = body["certificates"]
    assert (certificate["name"], certificate["holder_name"]) == ("老年人优待证", "王**")
    assert certificate["holder_code_masked"] == "310***********0273"

    detail = await api.call("GET", f"{APPLY}/{body['id']}", token=token)
    assert detail.status_code == 200
    assert detail.json()["status_label"] == "已办结" and detail.json()["certificates"] == [certificate]
    assert detail.json()["decision"] == body["decision"]
    case = await Case.get(id=body["id"])
    assert case.applicant == "dev-wang"  # the openid: what owned_case checks
    # the applicant's real identity was decrypted once, and the read is logged
    [read] = await DataAccessLog.filter(dataset="citizen")
    assert read.actor == f"citizen:{await citizen_id(api, token)}" and "老年人优待证" in read.purpose
    assert WANG[1] not in api.all_text() and "王建国" not in api.all_text()


async def test_idempotency_key_replays_the_same_case(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang", *WANG)
    key = uuid.uuid4().hex
    first = await apply(api, token, key=key)
    again = await apply(api, token, key=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json() and again.headers["Idempotency-Replayed"] == "true"
    assert await Case.filter(applicant="dev-wang").count() == 1

    other_body = await apply(api, token, form={**SENIOR, "delivery": "window"}, key=key)
    error_of(other_body, 409, "idempotency_key_reused")
    li = await citizen_token(api, "dev-lina", *LI)  # keys are per citizen
    assert (await apply(api, li, form={**SENIOR, "phone": "13917724680"}, key=key)).status_code == 201
    assert (await apply(api, token, key=uuid.uuid4().hex)).status_code == 201  # a new key: a new case
    assert await Case.filter(applicant="dev-wang").count() == 2
    bad = error_of(await apply(api, token, key="has space"), 422, "validation_failed")
    assert set(bad["fields"]) == {"Idempotency-Key"}
    fresh = uuid.uuid4().hex  # a request that failed does not use up its key
    error_of(await apply(api, token, form={"phone": "1"}, key=fresh), 422, "validation_failed")
    assert (await apply(api, token, key=fresh)).status_code == 201


async def test_a_retry_while_the_first_request_still_works_is_409(api: OpenApiClient,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    token = await citizen_token(api, "dev-wang", *WANG)
    service = api.app.ctx.applications
    original = service.apply

    async def slow_apply(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(1.0)
        return await original(*args, **kwargs)

    monkeypatch.setattr(service, "apply", slow_apply)
    monkeypatch.setattr(applications_api, "REPLAY_WAIT_S", 0.2)
    key = uuid.uuid4().hex
    first = asyncio.ensure_future(apply(api, token, key=key))
    await asyncio.sleep(0.3)
    error_of(await apply(api, token, key=key), 409, "request_in_progress")
    assert (await first).status_code == 201
    assert (await apply(api, token, key=key)).status_code == 200
    assert await Case.filter(applicant="dev-wang").count() == 1


async def test_concurrent_requests_with_one_key_make_one_case(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang", *WANG)
    key = uuid.uuid4().hex
    responses = await asyncio.gather(*(apply(api, token, key=key) for _ in range(4)))
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await Case.filter(applicant="dev-wang").count() == 1


async def test_real_name_and_form_are_required(api: OpenApiClient) -> None:
    unbound = await citizen_token(api, "dev-nobody")
    refused = error_of(await apply(api, unbound), 403, "real_name_required")
    assert "实名认证" in refused["message"]
    token = await citizen_token(api, "dev-wang", *WANG)
    bad = error_of(await apply(api, token, form={"phone": "12345", "delivery": "drone"}), 422, "validation_failed")
    assert set(bad["fields"]) == {"phone", "address", "delivery"}
    assert all(not message.isascii() for message in bad["fields"].values())
    assert set(error_of(await apply(api, token, form=[1]), 422, "validation_failed")["fields"]) == {"form"}
    no_service = await api.call("POST", APPLY, token=token, json={"form": SENIOR})
    assert set(error_of(no_service, 422, "validation_failed")["fields"]) == {"service"}
    error_of(await apply(api, token, service="no-such-item"), 404, "not_found")
    error_of(await apply(api, token, service="rectification"), 404, "not_found")  # platform item
    assert await Case.all().count() == 0


async def test_request_format_errors(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang", *WANG)
    json_type = {"Content-Type": "application/json"}
    error_of(await api.call("POST", APPLY, token=token, content=b'{"service": ', headers=json_type), 400,
             "invalid_json")
    error_of(await api.call("POST", APPLY, token=token, content=b"service=senior-card",
                            headers={"Content-Type": "application/x-www-form-urlencoded"}), 415,
             "unsupported_media_type")
    huge = b'{"service": "senior-card", "form": {"x": "' + b"x" * 2_000_000 + b'"}}'
    error_of(await api.call("POST", APPLY, token=token, content=huge, headers=json_type), 413, "payload_too_large")
    error_of(await api.call("POST", APPLY, json={"service": "senior-card", "form": SENIOR}), 401, "unauthorized")
    error_of(await api.call("GET", APPLY, token="not-a-jwt"), 401, "token_invalid")
    error_of(await api.call("GET", f"{APPLY}/1/events"), 401, "unauthorized")


async def test_applying_is_rate_limited_per_citizen(api: OpenApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RATE_LIMITS, "apply_per_citizen", RateRule(2, 60, "test"))
    token = await citizen_token(api, "dev-wang", *WANG)
    for _ in range(2):
        error_of(await apply(api, token, service="no-such-item"), 404, "not_found")
    limited = error_of(await apply(api, token), 429, "rate_limited")
    assert limited["message"]
    other = await citizen_token(api, "dev-lina", *LI)
    assert (await apply(api, other, form={**SENIOR, "phone": "13917724680"})).status_code == 201


# --------------------------------------------------------------------------- my cases

async def test_my_cases_are_paginated_newest_first_and_private(api: OpenApiClient) -> None:
    li = await citizen_token(api, "dev-lina", *LI)
    wang = await citizen_token(api, "dev-wang", *WANG)
    ids = [(await started(api, li, "senior-card", SENIOR))["id"] for _ in range(3)]
    wangs = await started(api, wang, "senior-card", SENIOR)

    first = (await api.call("GET", f"{APPLY}?size=2", token=li)).json()
    assert (first["page"], first["size"], first["total"]) == (1, 2, 3)
    assert [c["id"] for c in first["items"]] == ids[::-1][:2]
    assert first["items"][0]["status_label"] == "已办结" and first["items"][0]["service_name"] == "老年人优待证办理"
    second = (await api.call("GET", f"{APPLY}?size=2&page=2", token=li)).json()
    assert [c["id"] for c in second["items"]] == [ids[0]]
    assert (await api.call("GET", f"{APPLY}?size=2&page=3", token=li)).json()["items"] == []
    for query in ("size=0", "size=101", "page=0", "page=abc"):
        error_of(await api.call("GET", f"{APPLY}?{query}", token=li), 422, "validation_failed")

    theirs = f"{APPLY}/{wangs['id']}"
    error_of(await api.call("GET", theirs, token=li), 404, "not_found")
    for action, body in (("withdraw", {}), ("review-request", {"reason": "复核"}), ("evaluation", {"level": 1}),
                         ("supplement", {"data": {}})):
        error_of(await api.call("POST", f"{theirs}/{action}", token=li, json=body), 404, "not_found")
    error_of(await api.call("GET", f"{theirs}/events", token=li), 404, "not_found")
    for missing in (999_999, 99_999_999_999, 0):
        error_of(await api.call("GET", f"{APPLY}/{missing}", token=wang), 404, "not_found")
    assert wangs["id"] not in [c["id"] for c in first["items"] + second["items"]]


async def test_reading_a_case_after_the_account_is_gone_is_401(api: OpenApiClient) -> None:
    """The detail and the status stream read the case joined to the caller's account in one query;
    a miss still tells a vanished account (401, as everywhere) from someone else's case (404)."""
    from engine.store.identity_models import Citizen

    wang = await citizen_token(api, "dev-wang", *WANG)
    case = await started(api, wang, "senior-card", SENIOR)
    assert (await api.call("GET", f"{APPLY}/{case['id']}", token=wang)).json()["case_no"] == case["case_no"]
    await Citizen.filter(id=await citizen_id(api, wang)).update(openid="gone-" + uuid.uuid4().hex[:8])
    error_of(await api.call("GET", f"{APPLY}/{case['id']}", token=wang), 404, "not_found")  # not theirs now
    await Citizen.filter(openid__startswith="gone-").delete()
    for path in (f"{APPLY}/{case['id']}", f"{APPLY}/{case['id']}/events"):
        error_of(await api.call("GET", path, token=wang), 401, "token_invalid")


# --------------------------------------------------------------------------- operations

async def test_withdraw_before_acceptance_only(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang", *WANG)
    case = await started(api, token, "business-startup", STARTUP)
    assert case["status"] == "running" and case["current_steps"][0]["department"] == "samr"
    withdrawn = await api.call("POST", f"{APPLY}/{case['id']}/withdraw", token=token)  # no body at all
    assert withdrawn.status_code == 200
    assert (withdrawn.json()["status"], withdrawn.json()["status_label"]) == ("withdrawn", "已撤回")
    assert withdrawn.json()["current_steps"] == [] and withdrawn.json()["steps"][-1]["kind"] == "withdrawn"
    again = error_of(await api.call("POST", f"{APPLY}/{case['id']}/withdraw", token=token, json={}), 409, "conflict")
    assert "撤回" in again["message"]

    accepted = await started(api, token, "business-startup", STARTUP)
    await api.app.ctx.engine.complete_task(accepted["current_steps"][0]["task_id"], ACCEPT, actor="samr01")
    late = await api.call("POST", f"{APPLY}/{accepted['id']}/withdraw", token=token, json={"reason": "不办了"})
    assert "已受理" in error_of(late, 409, "conflict")["message"]
    bad = await api.call("POST", f"{APPLY}/{accepted['id']}/withdraw", token=token, json={"reason": 5})
    assert set(error_of(bad, 422, "validation_failed")["fields"]) == {"reason"}


async def test_review_request_for_an_automatic_decision(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-lina", *LI)
    rejected = await started(api, token, "senior-card", {**SENIOR, "phone": "13917724680"})
    assert rejected["decision"]["outcome"] == "reject" and rejected["result"]["outcome"] == "rejected"
    url = f"{APPLY}/{rejected['id']}/review-request"
    assert set(error_of(await api.call("POST", url, token=token, json={}), 422, "validation_failed")["fields"]) == {
        "reason"}
    asked = await api.call("POST", url, token=token, json={"reason": "户籍信息有误，请人工核实"})
    assert asked.status_code == 200 and asked.json()["steps"][-1]["kind"] == "review_requested"
    assert "重复" in error_of(await api.call("POST", url, token=token, json={"reason": "再次"}), 409,
                              "conflict")["message"]
    wang = await citizen_token(api, "dev-wang", *WANG)
    running = await started(api, wang, "business-startup", STARTUP)  # no automatic decision to review
    error_of(await api.call("POST", f"{APPLY}/{running['id']}/review-request", token=wang, json={"reason": "复核"}),
             409, "conflict")


async def test_evaluation_once_after_the_end_and_bad_ones_open_a_rectification(api: OpenApiClient) -> None:
    wang = await citizen_token(api, "dev-wang", *WANG)
    running = await started(api, wang, "business-startup", STARTUP)
    early = await api.call("POST", f"{APPLY}/{running['id']}/evaluation", token=wang, json={"level": 1})
    assert "办结后" in error_of(early, 409, "conflict")["message"]

    li = await citizen_token(api, "dev-lina", *LI)
    case = await started(api, li, "senior-card", {**SENIOR, "phone": "13917724680"})
    url = f"{APPLY}/{case['id']}/evaluation"
    for level in (9, 0, "5", True, None):
        bad = await api.call("POST", url, token=li, json={"level": level, "comment": "x"})
        assert set(error_of(bad, 422, "validation_failed")["fields"]) == {"level"}
    bad = await api.call("POST", url, token=li, json={"level": 5, "comment": "办理太慢" * 200})
    assert set(error_of(bad, 422, "validation_failed")["fields"]) == {"comment"}
    rated = await api.call("POST", url, token=li, json={"level": 5, "comment": "不符合预期，理由说明不清楚"})
    assert rated.status_code == 201
    assert (rated.json()["level"], rated.json()["label"]) == (5, "非常不满意")
    number = rated.json()["rectification_case_no"]
    assert number and (await Case.get(case_no=number)).service == "rectification"
    evaluation = await Evaluation.get(case_id=case["id"])
    key = PiiKeys.from_settings(api.app.ctx.settings).blind_index_key
    assert evaluation.evaluator_hash == blind_index(str(await citizen_id(api, li)), key)
    assert "已评价" in error_of(await api.call("POST", url, token=li, json={"level": 1}), 409, "conflict")["message"]
    detail = (await api.call("GET", f"{APPLY}/{case['id']}", token=li)).json()
    assert detail["evaluation"] == {"level": 5, "label": "非常不满意", "rectification_case_no": number}

    good = await started(api, wang, "senior-card", SENIOR)
    happy = await api.call("POST", f"{APPLY}/{good['id']}/evaluation", token=wang, json={"level": 1})
    assert happy.status_code == 201 and happy.json()["rectification_case_no"] is None


async def test_supplement_when_the_officer_asks_for_it(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-huangli", *HUANG)
    case = await started(api, token, "residence-permit", RESIDENCE)
    url = f"{APPLY}/{case['id']}/supplement"
    payload = {"data": {"supplement": {"note": "已重新拍摄证件照", "photo_ref": "ZP20261207-0815"}}}
    assert "无需补正" in error_of(await api.call("POST", url, token=token, json=payload), 409, "conflict")["message"]

    [review] = case["current_steps"]
    await api.app.ctx.engine.complete_task(review["task_id"], ASK_SUPPLEMENT, actor="police_station01")
    waiting = (await api.call("GET", f"{APPLY}/{case['id']}", token=token)).json()
    assert waiting["sla_paused"] is True and waiting["current_steps"][0]["waiting_for_applicant"] is True
    error_of(await api.call("POST", url, token=token, json={"data": "照片"}), 422, "validation_failed")
    wrong = await api.call("POST", url, token=token, json={"data": {"supplement": {"photo_ref": "x"}}})
    assert {"supplement.note", "supplement.photo_ref"} <= set(error_of(wrong, 422, "validation_failed")["fields"])
    done = await api.call("POST", url, token=token, json=payload)
    assert done.status_code == 200 and done.json()["sla_paused"] is False
    assert [s["department"] for s in done.json()["current_steps"]] == ["police_station"]
    assert done.json()["current_steps"][0]["waiting_for_applicant"] is False
    error_of(await api.call("POST", url, token=token, json=payload), 409, "conflict")


# --------------------------------------------------------------------------- live status (SSE)

async def next_status(events: AsyncIterator[dict[str, Any]], timeout: float = 5.0) -> dict[str, Any]:
    """The next status event, skipping keep-alive comments."""
    async def read() -> dict[str, Any]:
        async for event in events:
            if "comment" not in event:
                return event
        raise AssertionError("the stream ended")
    return await asyncio.wait_for(read(), timeout)


def stream(api: OpenApiClient, case_id: int, token: str, **headers: str) -> Any:
    return api.client.stream("GET", f"{APPLY}/{case_id}/events",
                             headers={"Authorization": f"Bearer {token}", **headers})


async def test_events_push_officer_steps_and_keep_alive(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang", *WANG)
    case = await started(api, token, "business-startup", STARTUP)
    async with stream(api, case["id"], token) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        first = await next_status(events)
        assert (first["id"], first["event"], first["retry"]) == ("1", "status", "3000")
        assert first["data"] == {"case_id": case["id"], "case_no": case["case_no"], "status": "running",
                                 "status_label": "办理中", "events": [], "final": False}
        assert await asyncio.wait_for(anext(events), 3) == {"comment": "keep-alive"}  # every 0.3 s here
        await api.app.ctx.engine.complete_task(case["current_steps"][0]["task_id"], ACCEPT, actor="samr01")
        pushed = await next_status(events)
        assert pushed["id"] == "2" and pushed["data"]["status"] == "running"
        assert "task_completed" in pushed["data"]["events"] and pushed["data"]["final"] is False


async def test_events_end_with_a_final_status(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang", *WANG)
    case = await started(api, token, "business-startup", STARTUP)
    async with stream(api, case["id"], token) as response:
        events = sse_events(response)
        assert (await next_status(events))["data"]["status"] == "running"
        assert (await api.call("POST", f"{APPLY}/{case['id']}/withdraw", token=token)).status_code == 200
        last = await next_status(events)
        assert last["id"] == "2" and last["data"]["status"] == "withdrawn" and last["data"]["final"] is True
        assert [e async for e in events if "comment" not in e] == []  # the server closed the stream

    done = await started(api, token, "senior-card", SENIOR)
    async with stream(api, done["id"], token) as response:
        statuses = [e async for e in sse_events(response) if "comment" not in e]
    assert [(e["id"], e["data"]["status"], e["data"]["final"]) for e in statuses] == [("1", "completed", True)]
    await until_unsubscribed(api, case["id"])
    await until_unsubscribed(api, done["id"])


async def test_events_resume_after_last_event_id(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang", *WANG)
    case = await started(api, token, "business-startup", STARTUP)
    async with stream(api, case["id"], token, **{"Last-Event-ID": "41"}) as response:
        resumed = await next_status(sse_events(response))
    assert resumed["id"] == "42" and resumed["data"]["status"] == "running"
    async with stream(api, case["id"], token, **{"Last-Event-ID": "garbage"}) as response:
        assert (await next_status(sse_events(response)))["id"] == "1"
    # the clients hung up on a running case: the server let go of the channel
    await until_unsubscribed(api, case["id"])


async def until_unsubscribed(api: OpenApiClient, case_id: int) -> None:
    for _ in range(100):
        if await api.app.ctx.kv.publish(f"case:{case_id}", "{}") == 0:  # receivers now listening
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the stream's subscription is still open")


# --------------------------------------------------------------------------- OpenAPI

async def test_application_routes_are_documented(api: OpenApiClient) -> None:
    spec = await api.spec()
    validate_spec(spec)
    base = "/api/v1/applications"
    routes = {(base, "post"): "201", (base, "get"): "200", (f"{base}/{{case_id}}", "get"): "200",
              (f"{base}/{{case_id}}/supplement", "post"): "200", (f"{base}/{{case_id}}/withdraw", "post"): "200",
              (f"{base}/{{case_id}}/review-request", "post"): "200",
              (f"{base}/{{case_id}}/evaluation", "post"): "201", (f"{base}/{{case_id}}/events", "get"): "200"}
    for (path, method), success in routes.items():
        operation = spec["paths"][path][method]
        assert " / " in operation["summary"], path
        assert operation["security"] == [{"bearerAuth": []}], path
        assert {success, "401", "403", "503"} <= set(operation["responses"]), path
        if path.endswith("events"):
            assert "text/event-stream" in operation["responses"]["200"]["content"]
            continue
        assert "schema" in operation["responses"][success]["content"]["application/json"], path
        if method == "post":
            assert "application/json" in operation["requestBody"]["content"], path
            assert {"400", "404", "409", "415", "422"} <= set(operation["responses"]), path
    create = spec["paths"][base]["post"]
    assert {"200", "429"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in create["parameters"])
