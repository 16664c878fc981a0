"""Approval operations over real HTTP (退回, 转办, 加签, 撤回已办) on both database passes, with
department checks and conflicts; every answer is checked against the OpenAPI document."""

from __future__ import annotations

from engine.store.models import HumanTask
from tests.api import test_staff_api
from tests.api.helpers import OpenApiClient, error_of
from tests.api.test_applications_api import ACCEPT
from tests.api.test_staff_api import intake, staff_token

TASKS = "/api/v1/staff/tasks"
api = test_staff_api.api  # the served app with seeded staff


async def _accepted(api: OpenApiClient, samr: str) -> tuple[str, str]:
    """Intake accepted by samr01: (the intake task, psb's next task)."""
    task_id = await intake(api)
    done = await api.call("POST", f"{TASKS}/{task_id}/complete", token=samr, json={"data": ACCEPT})
    assert done.status_code == 200, done.text
    case_id = done.json()["case_id"]
    [psb_task] = await HumanTask.filter(case_id=case_id, department="psb", state="ready")
    return task_id, str(psb_task.id)


async def test_return_to_an_earlier_step_and_withdraw(api: OpenApiClient) -> None:
    samr, psb = await staff_token(api, "samr01"), await staff_token(api, "psb01")
    intake_id, psb_task = await _accepted(api, samr)
    error_of(await api.call("POST", f"{TASKS}/{psb_task}/return", token=samr,
                            json={"reason": "退回", "to_step": "intake_check"}), 403, "forbidden_department")
    blank = await api.call("POST", f"{TASKS}/{psb_task}/return", token=psb, json={"reason": "材料不全", "to_step": " "})
    assert "to_step" in error_of(blank, 422, "validation_failed")["fields"]
    error_of(await api.call("POST", f"{TASKS}/{psb_task}/return", token=psb,
                            json={"reason": "退回", "to_step": "no_such_step"}), 409, "conflict")
    back = await api.call("POST", f"{TASKS}/{psb_task}/return", token=psb,
                          json={"reason": "材料不全，退回受理", "to_step": "intake_check"})
    assert back.status_code == 200, back.text
    assert [t["task_spec"] for t in back.json()["ready_tasks"]] == ["intake_check"]
    error_of(await api.call("POST", f"{TASKS}/{psb_task}/return", token=psb,
                            json={"reason": "再退", "to_step": "intake_check"}), 409, "task_already_completed")
    error_of(await api.call("POST", f"{TASKS}/{intake_id}/withdraw", token=psb), 403, "forbidden_department")


async def test_withdraw_after_the_next_step_started_is_409(api: OpenApiClient) -> None:
    samr, psb, samr02 = [await staff_token(api, n) for n in ("samr01", "psb01", "samr02")]
    intake_id, psb_task = await _accepted(api, samr)
    error_of(await api.call("POST", f"{TASKS}/{intake_id}/withdraw", token=samr02), 403, "not_your_task")
    assert (await api.call("POST", f"{TASKS}/{psb_task}/claim", token=psb)).status_code == 200
    error_of(await api.call("POST", f"{TASKS}/{intake_id}/withdraw", token=samr), 409, "next_step_started")


async def test_transfer_and_add_signer(api: OpenApiClient) -> None:
    samr01, samr02, psb = [await staff_token(api, n) for n in ("samr01", "samr02", "psb01")]
    task_id = await intake(api)
    error_of(await api.call("POST", f"{TASKS}/{task_id}/transfer", token=samr01, json={"to": "psb01"}), 403,
             "transfer_other_department")
    error_of(await api.call("POST", f"{TASKS}/{task_id}/transfer", token=psb, json={"to": "psb01"}), 403,
             "forbidden_department")
    error_of(await api.call("POST", f"{TASKS}/{task_id}/transfer", token=samr01, json={"to": "ghost"}), 404,
             "not_found")
    moved = await api.call("POST", f"{TASKS}/{task_id}/transfer", token=samr01,
                           json={"to": "samr02", "reason": "请假"})
    assert moved.status_code == 200 and moved.json()["assignee"] == "samr02"
    for action, body in (("claim", None), ("complete", {"data": ACCEPT})):  # transferred: only samr02 takes it
        assert "转办给 samr02" in error_of(await api.call("POST", f"{TASKS}/{task_id}/{action}", token=samr01,
                                                       json=body), 409, "task_already_claimed")["message"]
    error_of(await api.call("POST", f"{TASKS}/{task_id}/transfer", token=samr01, json={"to": "samr01"}), 409,
             "task_already_claimed")
    signer = await api.call("POST", f"{TASKS}/{task_id}/add-signer", token=samr02,
                            json={"user": "samr01", "position": "before", "opinion": "请会签"})
    assert signer.status_code == 201, signer.text
    assert (signer.json()["kind"], signer.json()["assignee"]) == ("cosign", "samr01")
    error_of(await api.call("POST", f"{TASKS}/{task_id}/add-signer", token=samr02,
                            json={"user": "samr01", "position": "middle"}), 422, "validation_failed")
    error_of(await api.call("POST", f"{TASKS}/{task_id}/complete", token=samr02, json={"data": ACCEPT}), 409,
             "waiting_for_added_signer")
