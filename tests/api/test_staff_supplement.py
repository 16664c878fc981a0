"""补正 back to the applicant on any process (``return`` without ``to_step``) over real HTTP on
both database passes: the officer's task is held, the SLA clock pauses, the citizen sees the reason
and answers with the ordinary supplement call, the task comes back with the new material; window
cases are supplied by a clerk. Every answer is checked against the OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sanic import Sanic

from engine.store.models import Case, CaseEvent, HumanTask, Job
from tests.api.helpers import OpenApiClient, citizen_token, error_of, running_api, seed_staff
from tests.api.helpers import staff_login as login
from tests.api.test_applications_api import ACCEPT, STARTUP, WANG, started

APPLY, TASKS, LOGIN, INTAKE = ("/api/v1/applications", "/api/v1/staff/tasks", "/api/v1/staff/login",
                               "/api/v1/staff/applications")
STAFF = {"samr01": (["samr"], ["officer"]), "samr02": (["samr"], ["officer"]), "psb01": (["psb"], ["officer"]),
         "win01": (["window"], ["clerk"])}
REASON = "住所使用证明缺少产权人签字，请补充"
SUPPLIED = {"note": "已补充产权人签字的租赁合同", "materials": [{"name": "住所使用证明（补正）", "ref": "BZ-0001"}]}


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch,
              tmp_path: Path) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch, UPLOAD_DIR=str(tmp_path / "uploads")) as served:
        await seed_staff(STAFF, name=lambda username: f"{username}姓名")
        yield served


async def mobile_case(api: OpenApiClient) -> tuple[str, int, str]:
    """(citizen token, case id, its intake task id) of a business-startup case by 王建国."""
    token = await citizen_token(api, "dev-wang", *WANG)
    case = await started(api, token, "business-startup", STARTUP)
    [task] = await HumanTask.filter(case_id=case["id"], state="ready")
    return token, case["id"], str(task.id)


async def test_officer_asks_the_applicant_and_gets_the_task_back(api: OpenApiClient) -> None:
    token, case_id, task_id = await mobile_case(api)
    samr01, samr02 = await login(api, "samr01"), await login(api, "samr02")
    before = (await api.call("GET", f"{TASKS}/{task_id}", token=samr01)).json()
    assert "supplement_request" in before["actions"] and before["supplements"] == []

    asked = await api.call("POST", f"{TASKS}/{task_id}/return", token=samr01, json={"reason": REASON})
    assert asked.status_code == 200, asked.text
    [waiting_for] = asked.json()["ready_tasks"]
    assert waiting_for["lane"] == "applicant" and waiting_for["name"] == "补正材料：受理核验"

    # the officer's task is held: not in the ready inbox, under status=waiting, not completable by anyone
    assert (await api.call("GET", TASKS, token=samr02)).json()["total"] == 0
    held = (await api.call("GET", f"{TASKS}?status=waiting", token=samr01)).json()
    assert [(t["id"], t["state"], t["assignee"]) for t in held["items"]] == [(task_id, "waiting", "samr01")]
    assert held["counts"]["waiting"] == 1
    detail = (await api.call("GET", f"{TASKS}/{task_id}", token=samr01)).json()
    assert detail["actions"] == ["comment"] and detail["case"]["sla_paused"] is True
    assert detail["supplements"][0]["reason"] == REASON and detail["supplements"][0]["supplied_at"] is None
    for user, action, body in ((samr01, "complete", {"data": ACCEPT}), (samr02, "claim", None),
                               (samr01, "return", {"reason": "再次补正"}),
                               (samr01, "transfer", {"to": "samr02"})):
        error_of(await api.call("POST", f"{TASKS}/{task_id}/{action}", token=user, json=body), 409,
                 "waiting_for_applicant")

    # the clock is paused; the citizen sees the request and its reason
    case = await Case.get(id=case_id)
    assert case.paused_at is not None
    assert {j.status for j in await Job.filter(case_id=case_id, kind__in=("sla_warning", "sla_escalation"))} \
        == {"paused"}
    mine = (await api.call("GET", f"{APPLY}/{case_id}", token=token)).json()
    assert mine["sla_paused"] is True
    [step] = mine["current_steps"]
    assert (step["waiting_for_applicant"], step["reason"], step["name"]) == (True, REASON, "补正材料：受理核验")
    asked_step = next(s for s in mine["steps"] if s["kind"] == "supplement_requested")
    assert (asked_step["action"], asked_step["opinion"], asked_step["department"]) == ("要求补正", REASON, "samr")

    # the citizen answers with the ordinary supplement call
    answered = await api.call("POST", f"{APPLY}/{case_id}/supplement", token=token, json={"data": SUPPLIED})
    assert answered.status_code == 200, answered.text
    assert answered.json()["sla_paused"] is False
    assert [s["name"] for s in answered.json()["current_steps"]] == ["受理核验"]
    error_of(await api.call("POST", f"{APPLY}/{case_id}/supplement", token=token, json={"data": SUPPLIED}), 409,
             "conflict")
    assert (await Case.get(id=case_id)).paused_at is None
    assert {j.status for j in await Job.filter(case_id=case_id, kind__in=("sla_warning", "sla_escalation"))} \
        == {"pending"}

    # back with the officer who asked, the new material visible
    back = (await api.call("GET", f"{TASKS}/{task_id}", token=samr01)).json()
    assert (back["task"]["state"], back["task"]["assignee"]) == ("claimed", "samr01")
    assert "complete" in back["actions"] and back["case"]["sla_paused"] is False
    [round_] = back["supplements"]
    assert round_["reason"] == REASON and round_["data"] == SUPPLIED and round_["supplied_at"]
    supplied = {"name": "住所使用证明（补正）", "ref": "BZ-0001", "supplemented": True}
    # materials carry their status and files too (#15): the supplied entry as sent, marked received
    assert {**supplied, "status": "received", "files": []} in back["materials"]
    events = [(e["kind"], e["action"], e["department"], e["opinion"]) for e in back["timeline"]
              if e["kind"].startswith("supplement")]
    assert events == [("supplement_requested", "要求补正", "samr", REASON),
                      ("supplement_received", "补正材料", None, "申请人补正材料")]
    actors = {e["kind"]: e["actor"] for e in back["timeline"]}
    assert actors["supplement_requested"] == "samr01" and actors["supplement_received"].startswith("citizen:")
    kinds = [e.kind for e in await CaseEvent.filter(case_id=case_id).order_by("id")]
    assert kinds.index("sla_paused") < kinds.index("supplement_received") < kinds.index("sla_resumed")
    done = await api.call("POST", f"{TASKS}/{task_id}/complete", token=samr01, json={"data": ACCEPT})
    assert done.status_code == 200 and done.json()["state"] == "completed"


async def test_supplement_request_rights_and_input(api: OpenApiClient) -> None:
    token, case_id, task_id = await mobile_case(api)
    psb, samr01, samr02 = [await login(api, n) for n in ("psb01", "samr01", "samr02")]
    error_of(await api.call("POST", f"{TASKS}/{task_id}/return", json={"reason": REASON}), 401, "unauthorized")
    error_of(await api.call("POST", f"{TASKS}/{task_id}/return", token=token, json={"reason": REASON}), 403,
             "staff_only")
    error_of(await api.call("POST", f"{TASKS}/{task_id}/return", token=psb, json={"reason": REASON}), 403,
             "forbidden_department")
    error_of(await api.call("POST", f"{TASKS}/{task_id}/return", token=samr01, json={}), 422, "validation_failed")
    error_of(await api.call("POST", f"{TASKS}/{task_id}/return", token=samr01, json={"reason": "x" * 501}), 422,
             "validation_failed")
    assert (await api.call("POST", f"{TASKS}/{task_id}/claim", token=samr02)).status_code == 200
    error_of(await api.call("POST", f"{TASKS}/{task_id}/return", token=samr01, json={"reason": REASON}), 409,
             "task_already_claimed")
    error_of(await api.call("POST", f"{APPLY}/{case_id}/supplement", token=token, json={"data": SUPPLIED}), 409,
             "conflict")
    assert await HumanTask.filter(case_id=case_id, kind="supplement").count() == 0


def _multipart(service: str, form: dict, name: str, id_number: str) -> dict:
    data = {"service": service, "form": json.dumps(form, ensure_ascii=False), "name": name, "id_number": id_number}
    return {"files": [(k, (None, v)) for k, v in data.items()]}


async def test_window_case_the_clerk_supplies_for_the_walk_in_citizen(api: OpenApiClient) -> None:
    clerk, samr01 = await login(api, "win01"), await login(api, "samr01")
    filed = await api.call("POST", INTAKE, token=clerk, **_multipart("business-startup", STARTUP, *WANG))
    assert filed.status_code == 201, filed.text
    case_id = filed.json()["id"]
    [task] = await HumanTask.filter(case_id=case_id, state="ready")
    asked = await api.call("POST", f"{TASKS}/{task.id}/return", token=samr01, json={"reason": REASON})
    assert asked.status_code == 200, asked.text
    inbox = (await api.call("GET", TASKS, token=clerk)).json()
    [side] = inbox["items"]
    assert (side["kind"], side["department"], side["name"]) == ("supplement", "window", "补正材料：受理核验")
    detail = (await api.call("GET", f"{TASKS}/{side['id']}", token=clerk)).json()
    assert detail["supplements"][0]["reason"] == REASON and "complete" in detail["actions"]
    error_of(await api.call("POST", f"{TASKS}/{side['id']}/complete", token=samr01, json={"data": {}}), 403,
             "forbidden_department")
    supplied = await api.call("POST", f"{TASKS}/{side['id']}/complete", token=clerk,
                              json={"data": SUPPLIED, "opinion": "申请人到窗口补交租赁合同"})
    assert supplied.status_code == 200, supplied.text
    back = (await api.call("GET", f"{TASKS}/{task.id}", token=samr01)).json()
    assert back["task"]["state"] == "claimed" and back["supplements"][0]["data"] == SUPPLIED
    received = next(e for e in back["timeline"] if e["kind"] == "supplement_received")
    assert (received["actor"], received["department"], received["opinion"]) == (
        "win01", "window", "申请人到窗口补交租赁合同")
    assert (await Case.get(id=case_id)).paused_at is None
