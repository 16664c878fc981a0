"""The message centre, consents, 催办 and 抄送 over real HTTP (every answer checked against the
OpenAPI document): a 补正 request reaches the citizen, a supervisor's and a citizen's 催办 reach
the officer's bell (once a working day), a step copied to a colleague reaches their bell and
reading it leaves a receipt on the case timeline."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sanic import Sanic

from engine.platform.seed import hash_password
from engine.store.models import CaseEvent, HumanTask, StaffUser
from tests.api.helpers import OpenApiClient, citizen_token, error_of, running_api
from tests.api.test_applications_api import ACCEPT, STARTUP, WANG, started

PASSWORD = "correct horse battery staple"
STAFF = {"samr01": (["samr"], ["officer"]), "samr02": (["samr"], ["officer"]),
         "boss": (["supervisor", "samr"], ["supervisor"])}
TASKS, ME, BELL = "/api/v1/staff/tasks", "/api/v1/me/messages", "/api/v1/staff/messages"


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch,
              tmp_path: Path) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch, UPLOAD_DIR=str(tmp_path / "uploads")) as served:
        hashed = hash_password(PASSWORD)
        for username, (departments, roles) in STAFF.items():
            await StaffUser.create(username=username, name=f"{username}姓名", password_hash=hashed,
                                   departments=departments, roles=roles)
        yield served


async def login(api: OpenApiClient, username: str) -> str:
    response = await api.call("POST", "/api/v1/staff/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def startup_case(api: OpenApiClient) -> tuple[str, int, str]:
    token = await citizen_token(api, "dev-wang", *WANG)
    case = await started(api, token, "business-startup", STARTUP)
    [task] = await HumanTask.filter(case_id=case["id"], state="ready")
    return token, case["id"], str(task.id)


async def test_supplement_request_reaches_the_citizen_and_new_tasks_the_department(api: OpenApiClient) -> None:
    token, case_id, task_id = await startup_case(api)
    samr01 = await login(api, "samr01")
    bell = (await api.call("GET", BELL, token=samr01)).json()
    assert [(i["kind"], i["case_id"]) for i in bell["items"]] == [("task_assigned", case_id)] and bell["unread"] == 1
    asked = await api.call("POST", f"{TASKS}/{task_id}/return", token=samr01, json={"reason": "住所证明缺少签字"})
    assert asked.status_code == 200, asked.text
    mine = (await api.call("GET", ME, token=token)).json()
    assert [i["kind"] for i in mine["items"]] == ["supplement_requested", "application_received"]
    assert "住所证明缺少签字" in mine["items"][0]["body"] and mine["items"][0]["case_id"] == case_id
    assert mine["unread"] == 2
    only_unread = (await api.call("GET", f"{ME}?unread=1&limit=1", token=token)).json()
    assert len(only_unread["items"]) == 1 and only_unread["unread"] == 2

    other = await citizen_token(api, "dev-li")
    error_of(await api.call("POST", f"{ME}/{mine['items'][0]['id']}/read", token=other), 404, "not_found")
    error_of(await api.call("POST", f"{BELL}/{mine['items'][0]['id']}/read", token=samr01), 404, "not_found")
    error_of(await api.call("GET", BELL, token=token), 403, "staff_only")
    error_of(await api.call("GET", f"{ME}?limit=0", token=token), 422, "validation_failed")


async def test_urges_reach_the_officers_bell_once_a_working_day(api: OpenApiClient) -> None:
    token, case_id, task_id = await startup_case(api)
    samr01, samr02, boss = await login(api, "samr01"), await login(api, "samr02"), await login(api, "boss")
    assert (await api.call("POST", f"{TASKS}/{task_id}/claim", token=samr01)).status_code == 200
    error_of(await api.call("POST", f"{TASKS}/{task_id}/urge", token=samr02, json={}), 403, "forbidden_role")

    urged = await api.call("POST", f"{TASKS}/{task_id}/urge", token=boss, json={"reason": "企业急需开业"})
    assert urged.status_code == 200 and urged.json()["case_id"] == case_id
    [message] = [i for i in (await api.call("GET", BELL, token=samr01)).json()["items"] if i["kind"] == "urged"]
    assert message["title"] == f"催办：{message['case_no']}" and "企业急需开业" in message["body"]
    assert message["sender"] == "boss" and "boss姓名" in message["body"]
    assert not [i for i in (await api.call("GET", BELL, token=samr02)).json()["items"] if i["kind"] == "urged"]
    again = await api.call("POST", f"{TASKS}/{task_id}/urge", token=boss)
    error_of(again, 429, "urge_too_soon")
    assert int(again.headers["Retry-After"]) > 0

    by_citizen = await api.call("POST", f"/api/v1/applications/{case_id}/urge", token=token)
    assert by_citizen.status_code == 200
    error_of(await api.call("POST", f"/api/v1/applications/{case_id}/urge", token=token), 429, "urge_too_soon")
    stranger = await citizen_token(api, "dev-li")
    error_of(await api.call("POST", f"/api/v1/applications/{case_id}/urge", token=stranger), 404, "not_found")
    error_of(await api.call("POST", f"/api/v1/applications/{case_id}/urge", token=token, json={"reason": 5}),
             422, "validation_failed")
    urges = [i for i in (await api.call("GET", BELL, token=samr01)).json()["items"] if i["kind"] == "urged"]
    assert len(urges) == 2 and "申请人" in urges[0]["body"]


async def test_cc_reaches_the_colleague_with_a_read_receipt(api: OpenApiClient) -> None:
    _token, case_id, task_id = await startup_case(api)
    samr01, samr02 = await login(api, "samr01"), await login(api, "samr02")
    picker = (await api.call("GET", "/api/v1/staff/colleagues", token=samr01)).json()["items"]
    assert [c["username"] for c in picker] == ["boss", "samr02"]
    error_of(await api.call("POST", f"{TASKS}/{task_id}/complete", token=samr01,
                            json={"data": ACCEPT, "cc": ["nobody"]}), 422, "validation_failed")
    done = await api.call("POST", f"{TASKS}/{task_id}/complete", token=samr01,
                          json={"data": ACCEPT, "opinion": "受理", "cc": ["samr02"]})
    assert done.status_code == 200, done.text
    bell = (await api.call("GET", BELL, token=samr02)).json()
    [cc] = [i for i in bell["items"] if i["kind"] == "cc"]
    assert cc["case_id"] == case_id and cc["sender"] == "samr01" and "samr01姓名" in cc["body"]
    read = await api.call("POST", f"{BELL}/{cc['id']}/read", token=samr02)
    assert read.status_code == 200 and read.json()["read"] is True
    assert (await api.call("GET", BELL, token=samr02)).json()["unread"] == bell["unread"] - 1
    [receipt] = await CaseEvent.filter(case_id=case_id, kind="cc_read")
    assert receipt.actor == "samr02"
    completed = await CaseEvent.get(case_id=case_id, kind="task_completed")
    assert completed.detail["cc"] == ["samr02"]


async def test_subscription_answers_are_validated(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang")
    offered = (await api.call("GET", "/api/v1/me/subscriptions", token=token)).json()["items"]
    assert {i["event"] for i in offered} == {"application_received", "supplement_requested", "decision_made",
                                             "certificate_issued", "case_finished", "case_refused"}
    assert not any(i["accepted"] for i in offered)
    error_of(await api.call("POST", "/api/v1/me/subscriptions", token=token, json={"accept": ["TPL_NOPE"]}),
             422, "validation_failed")
    error_of(await api.call("POST", "/api/v1/me/subscriptions", token=token, json={"accept": "TPL_CASE_FINISHED"}),
             422, "validation_failed")
    twice = {"accept": ["TPL_CASE_FINISHED"], "reject": ["TPL_CASE_FINISHED"]}
    error_of(await api.call("POST", "/api/v1/me/subscriptions", token=token, json=twice), 422, "validation_failed")
    answer = await api.call("POST", "/api/v1/me/subscriptions", token=token,
                            json={"accept": ["TPL_CASE_FINISHED", "TPL_SUPPLEMENT_REQUESTED"],
                                  "reject": ["TPL_CASE_REFUSED"]})
    accepted = {i["template_id"] for i in answer.json()["items"] if i["accepted"]}
    assert accepted == {"TPL_CASE_FINISHED", "TPL_SUPPLEMENT_REQUESTED"}
    rejected = await api.call("POST", "/api/v1/me/subscriptions", token=token, json={"reject": ["TPL_CASE_FINISHED"]})
    assert {i["template_id"] for i in rejected.json()["items"] if i["accepted"]} == {"TPL_SUPPLEMENT_REQUESTED"}
