"""加签 opinions (``sign``) and what the task page is offered (``return_targets``, ``colleagues``,
``actions``) over real HTTP on both database passes; every answer is checked against the OpenAPI
document."""

from __future__ import annotations

from engine.platform.seed import hash_password
from engine.store.models import HumanTask, StaffUser
from tests.api import test_staff_api
from tests.api.helpers import OpenApiClient, error_of
from tests.api.test_applications_api import ACCEPT
from tests.api.test_staff_api import PASSWORD, intake, staff_token

TASKS = "/api/v1/staff/tasks"
api = test_staff_api.api  # the served app with seeded staff
SOCIAL_INSURANCE = {"si_registration_no": "3101152026113001", "si_opinion": "单位参保登记完成"}


async def _detail(api: OpenApiClient, token: str, task_id: str) -> dict:
    response = await api.call("GET", f"{TASKS}/{task_id}", token=token)
    assert response.status_code == 200, response.text
    return response.json()


async def test_before_signer_blocks_until_they_sign(api: OpenApiClient) -> None:
    samr01, samr02, psb = [await staff_token(api, n) for n in ("samr01", "samr02", "psb01")]
    task_id = await intake(api)
    added = await api.call("POST", f"{TASKS}/{task_id}/add-signer", token=samr01,
                           json={"user": "samr02", "position": "before", "opinion": "请科长把关"})
    assert added.status_code == 201, added.text
    side = added.json()["id"]
    assert "complete" not in (await _detail(api, samr01, task_id))["actions"]
    error_of(await api.call("POST", f"{TASKS}/{task_id}/complete", token=samr01, json={"data": ACCEPT}), 409,
             "waiting_for_added_signer")

    # only the added signer signs; nobody claims or completes the side task
    error_of(await api.call("POST", f"{TASKS}/{side}/sign", token=samr01,
                            json={"decision": "approve", "opinion": "同意"}), 403, "not_your_task")
    error_of(await api.call("POST", f"{TASKS}/{side}/sign", token=psb,
                            json={"decision": "approve", "opinion": "同意"}), 403, "forbidden_department")
    for action, body in (("claim", None), ("complete", {"data": {}})):
        error_of(await api.call("POST", f"{TASKS}/{side}/{action}", token=samr02, json=body), 409,
                 "cosign_use_sign")
    error_of(await api.call("POST", f"{TASKS}/{task_id}/sign", token=samr01,
                            json={"decision": "approve", "opinion": "同意"}), 409, "not_a_cosign_task")
    bad = await api.call("POST", f"{TASKS}/{side}/sign", token=samr02, json={"decision": "maybe", "opinion": "嗯"})
    assert "decision" in error_of(bad, 422, "validation_failed")["fields"]
    error_of(await api.call("POST", f"{TASKS}/{side}/sign", token=samr02, json={"decision": "approve"}), 422,
             "validation_failed")
    signer_view = await _detail(api, samr02, side)
    assert signer_view["task"]["kind"] == "cosign" and signer_view["actions"] == ["sign", "comment"]
    assert (await _detail(api, samr01, side))["actions"] == ["comment"]

    signed = await api.call("POST", f"{TASKS}/{side}/sign", token=samr02,
                            json={"decision": "approve", "opinion": "经复核，同意受理"})
    assert signed.status_code == 200, signed.text
    assert (signed.json()["state"], signed.json()["completed_by"]) == ("completed", "samr02")
    error_of(await api.call("POST", f"{TASKS}/{side}/sign", token=samr02,
                            json={"decision": "reject", "opinion": "改主意"}), 409, "task_not_ready")
    timeline = (await _detail(api, samr01, task_id))["timeline"]
    entry = next(e for e in timeline if e["kind"] == "cosign_completed")
    assert (entry["action"], entry["actor"], entry["department"], entry["opinion"], entry["decision"]) == (
        "加签意见", "samr02", "samr", "经复核，同意受理", "approve")
    assert next(e for e in timeline if e["kind"] == "signer_added")["action"] == "加签"
    done = await api.call("POST", f"{TASKS}/{task_id}/complete", token=samr01, json={"data": ACCEPT})
    assert done.status_code == 200, done.text


async def test_after_signer_of_another_department_signs_once_the_task_is_done(api: OpenApiClient) -> None:
    samr01, psb = await staff_token(api, "samr01"), await staff_token(api, "psb01")
    task_id = await intake(api)
    added = await api.call("POST", f"{TASKS}/{task_id}/add-signer", token=samr01,
                           json={"user": "psb01", "position": "after"})
    side = added.json()["id"]
    assert added.json()["state"] == "pending"
    error_of(await api.call("POST", f"{TASKS}/{side}/sign", token=psb,
                            json={"decision": "approve", "opinion": "同意"}), 409, "task_not_ready")
    assert (await api.call("POST", f"{TASKS}/{task_id}/complete", token=samr01,
                           json={"data": ACCEPT})).status_code == 200
    inbox = (await api.call("GET", TASKS, token=psb)).json()
    assert side in [t["id"] for t in inbox["items"]]
    assert next(t for t in inbox["items"] if t["id"] == side)["kind"] == "cosign"
    assert side not in [t["id"] for t in (await api.call("GET", TASKS, token=samr01)).json()["items"]]
    signed = await api.call("POST", f"{TASKS}/{side}/sign", token=psb,
                            json={"decision": "reject", "opinion": "经营范围表述需规范"})
    assert signed.status_code == 200 and signed.json()["state"] == "completed"
    entry = next(e for e in (await _detail(api, samr01, task_id))["timeline"] if e["kind"] == "cosign_completed")
    assert (entry["actor"], entry["decision"], entry["opinion"]) == ("psb01", "reject", "经营范围表述需规范")


async def test_task_detail_offers_targets_colleagues_and_actions(api: OpenApiClient) -> None:
    samr01, samr02, psb = [await staff_token(api, n) for n in ("samr01", "samr02", "psb01")]
    task_id = await intake(api)
    fresh = await _detail(api, samr01, task_id)
    assert fresh["return_targets"] == [] and fresh["task"]["kind"] == "bpmn"
    assert fresh["colleagues"] == [{"username": "samr02", "name": "samr02"}]
    assert fresh["actions"] == ["claim", "complete", "supplement_request", "transfer", "add_signer", "comment"]
    assert (await api.call("POST", f"{TASKS}/{task_id}/claim", token=samr01)).status_code == 200
    assert (await _detail(api, samr01, task_id))["actions"] == [
        "unclaim", "complete", "supplement_request", "transfer", "add_signer", "comment"]
    assert (await _detail(api, samr02, task_id))["actions"] == ["comment"]
    done = await api.call("POST", f"{TASKS}/{task_id}/complete", token=samr01, json={"data": ACCEPT})
    # the business licence was issued in the same step: 撤回 is not offered, and refused
    assert (await _detail(api, samr01, task_id))["actions"] == ["comment"]
    error_of(await api.call("POST", f"{TASKS}/{task_id}/withdraw", token=samr01), 409, "next_step_started")

    [psb_task] = await HumanTask.filter(case_id=done.json()["case_id"], department="psb", state="ready")
    seal = await _detail(api, psb, str(psb_task.id))
    assert seal["return_targets"] == [{"step": "intake_check", "name": "受理核验"}]
    assert seal["colleagues"] == []  # psb01 is alone in psb: no transfer offered
    assert seal["actions"] == ["claim", "complete", "return", "supplement_request", "add_signer", "comment"]
    # 撤回已办 is offered while the next step has not started (social insurance issues nothing)
    await StaffUser.create(username="hrss01", name="人社经办", password_hash=hash_password(PASSWORD),
                           departments=["hrss"], roles=["officer"])
    login = await api.call("POST", "/api/v1/staff/login", json={"username": "hrss01", "password": PASSWORD})
    hrss = login.json()["access_token"]
    [si] = await HumanTask.filter(case_id=done.json()["case_id"], department="hrss", state="ready")
    assert (await api.call("POST", f"{TASKS}/{si.id}/complete", token=hrss,
                           json={"data": SOCIAL_INSURANCE})).status_code == 200
    assert (await _detail(api, hrss, str(si.id)))["actions"] == ["withdraw", "comment"]
    withdrawn = await api.call("POST", f"{TASKS}/{si.id}/withdraw", token=hrss)
    assert withdrawn.status_code == 200, withdrawn.text
    again = await _detail(api, hrss, str(si.id))
    assert (again["task"]["state"], again["task"]["assignee"]) == ("claimed", "hrss01")
    assert again["actions"] == ["unclaim", "complete", "return", "supplement_request", "add_signer", "comment"]
    back = await api.call("POST", f"{TASKS}/{psb_task.id}/return", token=psb,
                          json={"reason": "受理意见需补充", "to_step": seal["return_targets"][0]["step"]})
    assert back.status_code == 200, back.text
    [again] = await HumanTask.filter(case_id=done.json()["case_id"], state="ready")
    assert (str(again.id), again.task_spec, again.department) == (task_id, "intake_check", "samr")  # same Spiff id
    assert (await _detail(api, samr01, task_id))["actions"][:2] == ["claim", "complete"]
    assert await HumanTask.filter(case_id=done.json()["case_id"], department="hrss", state="cancelled").exists()
    entry = next(e for e in (await _detail(api, samr01, str(again.id)))["timeline"] if e["kind"] == "task_returned")
    assert (entry["action"], entry["actor"], entry["department"], entry["opinion"]) == (
        "退回", "psb01", "psb", "受理意见需补充")
