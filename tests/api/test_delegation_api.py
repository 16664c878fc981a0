"""Absence delegation (代理) over HTTP: set it, the delegate's inbox shows 代 X and the delegate
completes the officer's task; cancelled, the same call answers 403 ``delegation_not_active``; the
distinct-signer rule of a 会签 checks the delegate's own identity."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sanic import Sanic

from engine.store.models import CaseEvent, HumanTask
from tests.api.helpers import OpenApiClient, citizen_token, error_of, running_api, seed_staff, staff_login
from tests.api.test_applications_api import HUANG, RESIDENCE, STARTUP, WANG, started
from tests.api.test_human_loop import open_task

TASKS, DELEGATIONS = "/api/v1/staff/tasks", "/api/v1/staff/delegations"
ACCEPT = {"intake_accepted": True, "intake_opinion": "材料齐全，符合法定形式，予以受理"}
STAFF = {"samr01": (["samr"], ["officer"]), "samr02": (["samr"], ["officer"]), "samr03": (["samr"], ["officer"]),
         "police01": (["police_station"], ["officer"]), "police02": (["police_station"], ["officer"])}


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch,
              tmp_path: Path) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch, UPLOAD_DIR=str(tmp_path / "uploads")) as served:
        await seed_staff(STAFF, name=lambda u: {"samr01": "张三", "samr02": "李四"}.get(u, u))
        yield served


def _period(hours_from: float = -1, hours_to: float = 24) -> dict[str, str]:
    now = datetime.now(UTC)
    return {"from": (now + timedelta(hours=hours_from)).isoformat(), "to": (now + timedelta(hours=hours_to)).isoformat()}


async def test_delegate_sees_and_completes_the_officers_task_until_cancelled(api: OpenApiClient) -> None:
    citizen = await citizen_token(api, "dev-wang", *WANG)
    first = await started(api, citizen, "business-startup", STARTUP)
    officer, delegate = await staff_login(api, "samr01"), await staff_login(api, "samr02")
    task = await open_task(first["id"])
    assert (await api.call("POST", f"{TASKS}/{task}/claim", token=officer)).status_code == 200
    error_of(await api.call("POST", f"{TASKS}/{task}/complete", token=delegate, json={"data": ACCEPT}), 409,
             "task_already_claimed")
    error_of(await api.call("POST", DELEGATIONS, token=officer, json={"delegate": "police01", **_period()}), 403,
             "delegate_other_department")
    made = await api.call("POST", DELEGATIONS, token=officer, json={"delegate": "samr02", "reason": "休假",
                                                                     **_period()})
    assert made.status_code == 201, made.text
    assert (made.json()["state"], made.json()["delegate_name"]) == ("active", "李四")
    error_of(await api.call("POST", DELEGATIONS, token=officer, json={"delegate": "samr02", **_period(2, 3)}), 409,
             "delegation_overlaps")
    received = (await api.call("GET", DELEGATIONS, token=delegate)).json()["received"]
    assert [d["officer_name"] for d in received] == ["张三"]

    inbox = (await api.call("GET", TASKS, token=delegate)).json()
    [item] = [i for i in inbox["items"] if i["id"] == task]
    assert (item["on_behalf_of"], item["on_behalf_of_name"]) == ("samr01", "张三")
    done = await api.call("POST", f"{TASKS}/{task}/complete", token=delegate,
                          json={"data": ACCEPT, "opinion": "代为受理"})
    assert done.status_code == 200, done.text
    assert done.json()["completed_by"] == "samr02"
    timeline = (await api.call("GET", f"{TASKS}/{task}", token=officer)).json()["timeline"]
    [entry] = [e for e in timeline if e["kind"] == "task_completed"]
    assert (entry["actor"], entry["on_behalf_of"], entry["actor_label"]) == ("samr02", "samr01", "李四（市场监督管理局） 代 张三")

    # 补正 asked for the officer: the task waits for the applicant and comes back to the officer
    third = await open_task((await started(api, citizen, "business-startup", STARTUP))["id"])
    assert (await api.call("POST", f"{TASKS}/{third}/claim", token=officer)).status_code == 200
    asked = await api.call("POST", f"{TASKS}/{third}/return", token=delegate, json={"reason": "请补充住所证明"})
    assert asked.status_code == 200, asked.text
    held = await HumanTask.get(id=third)
    assert (held.state, held.assignee) == ("waiting", "samr01")
    [requested] = await CaseEvent.filter(task_id=third, kind="supplement_requested")
    assert (requested.actor, requested.detail["on_behalf_of"]) == ("samr02", "samr01")

    # cancelled: the officer's next claimed task is theirs alone again
    second = await started(api, citizen, "business-startup", STARTUP)
    other = await open_task(second["id"])
    assert (await api.call("POST", f"{TASKS}/{other}/claim", token=officer)).status_code == 200
    cancelled = await api.call("POST", f"{DELEGATIONS}/{made.json()['id']}/cancel", token=officer)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    error_of(await api.call("POST", f"{DELEGATIONS}/{made.json()['id']}/cancel", token=officer), 409, "conflict")
    assert other not in {i["id"] for i in (await api.call("GET", TASKS, token=delegate)).json()["items"]}
    error_of(await api.call("POST", f"{TASKS}/{other}/complete", token=delegate, json={"data": ACCEPT}), 403,
             "delegation_not_active")
    assert (await HumanTask.get(id=other)).assignee == "samr01"


async def test_a_delegate_who_signed_one_countersign_instance_cannot_sign_the_other(api: OpenApiClient) -> None:
    citizen = await citizen_token(api, "dev-huang", *HUANG)
    case = await started(api, citizen, "residence-permit", RESIDENCE)
    police, chief = await staff_login(api, "police01"), await staff_login(api, "police02")
    done = await api.call("POST", f"{TASKS}/{await open_task(case['id'])}/complete", token=police, json={
        "data": {"review_outcome": "approve", "review_opinion": "材料齐全，提交会签"}})
    assert done.status_code == 200, done.text
    first, second = [str(t.id) for t in await HumanTask.filter(case_id=case["id"], state="ready", kind="bpmn")]
    sign = {"data": {"signature": {"decision": "approve", "opinion": "同意签发"}}}
    assert (await api.call("POST", f"{TASKS}/{first}/complete", token=police, json=sign)).status_code == 200
    assert (await api.call("POST", f"{TASKS}/{second}/claim", token=chief)).status_code == 200
    made = await api.call("POST", DELEGATIONS, token=chief, json={"delegate": "police01", **_period()})
    assert made.status_code == 201, made.text
    # police01 stands in for police02, but the signer is police01, who signed the first instance
    error_of(await api.call("POST", f"{TASKS}/{second}/complete", token=police, json=sign), 409,
             "already_signed_this_case")
    assert (await HumanTask.get(id=second)).assignee == "police02"


async def test_the_delegate_signs_an_added_signers_opinion_for_them(api: OpenApiClient) -> None:
    citizen = await citizen_token(api, "dev-wang", *WANG)
    case = await started(api, citizen, "business-startup", STARTUP)
    officer, signer, delegate = (await staff_login(api, "samr01"), await staff_login(api, "samr03"),
                                 await staff_login(api, "samr02"))
    task = await open_task(case["id"])
    added = await api.call("POST", f"{TASKS}/{task}/add-signer", token=officer,
                           json={"user": "samr03", "position": "before"})
    assert added.status_code == 201, added.text
    side = added.json()["id"]
    sign = {"decision": "approve", "opinion": "同意受理"}
    error_of(await api.call("POST", f"{TASKS}/{side}/sign", token=delegate, json=sign), 403, "not_your_task")
    made = await api.call("POST", DELEGATIONS, token=signer, json={"delegate": "samr02", **_period()})
    assert made.status_code == 201, made.text
    inbox = (await api.call("GET", TASKS, token=delegate)).json()
    assert [i["on_behalf_of"] for i in inbox["items"] if i["id"] == side] == ["samr03"]
    signed = await api.call("POST", f"{TASKS}/{side}/sign", token=delegate, json=sign)
    assert signed.status_code == 200, signed.text
    assert signed.json()["completed_by"] == "samr02"
    [event] = await CaseEvent.filter(kind="cosign_completed", task_id=side)
    assert (event.actor, event.detail["on_behalf_of"]) == ("samr02", "samr03")
