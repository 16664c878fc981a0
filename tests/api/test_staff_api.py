"""The staff workbench over real HTTP, on both database passes: login, lockout and rate limits,
the staff guard (citizen tokens, other departments), the inbox, claim/unclaim/complete/comment,
and — on PostgreSQL — two officers racing for one task. Every answer is checked against the
OpenAPI document."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from sanic import Sanic

from engine.store.models import CaseEvent, HumanTask
from tests.api.helpers import STAFF_PASSWORD, OpenApiClient, citizen_token, error_of, running_api, seed_staff
from tests.api.test_applications_api import ACCEPT, STARTUP, WANG, started

LOGIN, TASKS = "/api/v1/staff/login", "/api/v1/staff/tasks"
PASSWORD = STAFF_PASSWORD
STAFF = {"samr01": (["samr"], ["officer"]), "samr02": (["samr"], ["officer"]), "psb01": (["psb"], ["officer"]),
         "designer01": (["window"], ["designer"])}


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch) as served:
        await seed_staff(STAFF)
        yield served


async def staff_token(api: OpenApiClient, username: str) -> str:
    """Log in through the API and check the answer names the account and its departments."""
    response = await api.call("POST", LOGIN, json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["staff"]["username"] == username and body["staff"]["departments"] == STAFF[username][0]
    return str(body["access_token"])


async def intake(api: OpenApiClient) -> str:
    """A business-startup case by 王建国: its first task (intake_check, lane samr)."""
    token = await citizen_token(api, "dev-wang", *WANG)
    case = await started(api, token, "business-startup", STARTUP)
    [task] = await HumanTask.filter(case_id=case["id"], state="ready")
    return str(task.id)


async def test_login_errors_and_lockout_with_retry_after(api: OpenApiClient) -> None:
    await staff_token(api, "samr01")
    error_of(await api.call("POST", LOGIN, json={"username": "ghost", "password": PASSWORD}), 401,
             "invalid_credentials")
    error_of(await api.call("POST", LOGIN, json={"username": "psb01"}), 422, "validation_failed")
    for _ in range(4):
        error_of(await api.call("POST", LOGIN, json={"username": "psb01", "password": "nope"}), 401,
                 "invalid_credentials")
    locked = await api.call("POST", LOGIN, json={"username": "psb01", "password": "nope"})
    error_of(locked, 429, "account_locked")
    assert int(locked.headers["Retry-After"]) == 900
    again = await api.call("POST", LOGIN, json={"username": "psb01", "password": PASSWORD})
    error_of(again, 429, "account_locked")
    assert 0 < int(again.headers["Retry-After"]) <= 900


async def test_guard_citizens_other_departments_and_roles(api: OpenApiClient) -> None:
    task_id = await intake(api)
    citizen = await citizen_token(api, "dev-li")
    error_of(await api.call("GET", TASKS), 401, "unauthorized")
    error_of(await api.call("GET", TASKS, token=citizen), 403, "staff_only")
    error_of(await api.call("POST", f"{TASKS}/{task_id}/claim", token=citizen), 403, "staff_only")
    psb = await staff_token(api, "psb01")
    assert (await api.call("GET", TASKS, token=psb)).json()["total"] == 0
    error_of(await api.call("GET", f"{TASKS}/{task_id}", token=psb), 403, "forbidden_department")
    error_of(await api.call("POST", f"{TASKS}/{task_id}/claim", token=psb), 403, "forbidden_department")
    error_of(await api.call("POST", f"{TASKS}/{task_id}/complete", token=psb, json={"data": ACCEPT}), 403,
             "forbidden_department")
    designer = await staff_token(api, "designer01")
    error_of(await api.call("GET", TASKS, token=designer), 403, "forbidden_role")
    samr = await staff_token(api, "samr01")
    error_of(await api.call("GET", "/api/v1/applications", token=samr), 403, "forbidden")  # not a citizen
    error_of(await api.call("GET", f"{TASKS}/00000000-0000-0000-0000-000000000000", token=samr), 404, "not_found")
    error_of(await api.call("GET", f"{TASKS}?status=everything", token=samr), 422, "validation_failed")


async def test_claim_unclaim_complete_comment_and_next_departments(api: OpenApiClient) -> None:
    task_id = await intake(api)
    samr01, samr02, psb = [await staff_token(api, n) for n in ("samr01", "samr02", "psb01")]
    inbox = (await api.call("GET", TASKS, token=samr01)).json()
    assert [t["id"] for t in inbox["items"]] == [task_id] and inbox["counts"]["ready"] == 1
    detail = (await api.call("GET", f"{TASKS}/{task_id}", token=samr01)).json()
    assert detail["case"]["applicant_name"] == "王**" and WANG[1] not in str(detail)
    assert detail["form"]["fields"] and detail["task"]["form_key"]
    assert (await api.call("POST", f"{TASKS}/{task_id}/claim", token=samr01)).json()["assignee"] == "samr01"
    error_of(await api.call("POST", f"{TASKS}/{task_id}/claim", token=samr02), 409, "task_already_claimed")
    error_of(await api.call("POST", f"{TASKS}/{task_id}/unclaim", token=samr02), 409, "task_already_claimed")
    mine = (await api.call("GET", f"{TASKS}?status=mine", token=samr01)).json()
    assert mine["total"] == 1 and (mine["counts"]["ready"], mine["counts"]["mine"]) == (0, 1)
    assert mine["items"][0]["assignee_name"] == "samr01（市场监督管理局）"  # who claimed it, with the department
    bad = await api.call("POST", f"{TASKS}/{task_id}/complete", token=samr01,
                         json={"data": {"intake_accepted": "yes"}})
    assert "intake_accepted" in error_of(bad, 422, "validation_failed")["fields"]
    comment = await api.call("POST", f"{TASKS}/{task_id}/comment", token=samr01, json={"text": "材料已核对"})
    assert comment.status_code == 201
    done = await api.call("POST", f"{TASKS}/{task_id}/complete", token=samr01,
                          json={"data": ACCEPT, "opinion": "予以受理"})
    assert done.status_code == 200 and done.json()["state"] == "completed"
    error_of(await api.call("POST", f"{TASKS}/{task_id}/complete", token=samr01, json={"data": ACCEPT}), 409,
             "task_already_completed")
    assert (await api.call("GET", f"{TASKS}?status=done", token=samr01)).json()["total"] == 1
    psb_inbox = (await api.call("GET", TASKS, token=psb)).json()
    assert [t["task_spec"] for t in psb_inbox["items"]] == ["psb_seal"]
    timeline = (await api.call("GET", f"{TASKS}/{psb_inbox['items'][0]['id']}", token=psb)).json()["timeline"]
    mine_events = [(e["kind"], e["actor"], e["department"], e["opinion"]) for e in timeline if e["actor"] == "samr01"]
    assert mine_events == [("task_claimed", "samr01", "samr", None), ("comment", "samr01", "samr", "材料已核对"),
                           ("task_completed", "samr01", "samr", "予以受理")]


async def test_inbox_due_filters_ordering_and_pages(api: OpenApiClient) -> None:
    ids = [await intake(api) for _ in range(3)]
    now = api.app.ctx.engine.deps.clock()
    for task_id, hours in zip(ids, (30, -2, 10), strict=True):
        await HumanTask.filter(id=task_id).update(due_at=now + timedelta(hours=hours))
    samr = await staff_token(api, "samr01")
    page1 = (await api.call("GET", f"{TASKS}?size=2", token=samr)).json()
    page2 = (await api.call("GET", f"{TASKS}?size=2&page=2", token=samr)).json()
    assert [t["id"] for t in page1["items"] + page2["items"]] == [ids[1], ids[2], ids[0]]
    assert page1["total"] == 3 and page1["counts"]["overdue"] == 1 and page1["counts"]["soon"] == 1
    overdue = (await api.call("GET", f"{TASKS}?due=overdue", token=samr)).json()
    assert [t["id"] for t in overdue["items"]] == [ids[1]] and overdue["items"][0]["overdue"] is True
    assert [t["id"] for t in (await api.call("GET", f"{TASKS}?due=soon", token=samr)).json()["items"]] == [ids[2]]


@pytest.mark.postgres
@pytest.mark.parametrize("action", ["complete", "claim"])
async def test_two_officers_race_for_one_task(api: OpenApiClient, action: str) -> None:
    task_id = await intake(api)
    tokens = [await staff_token(api, n) for n in ("samr01", "samr02")]
    body = {"json": {"data": ACCEPT}} if action == "complete" else {}
    answers = await asyncio.gather(*(api.call("POST", f"{TASKS}/{task_id}/{action}", token=t, **body)
                                     for t in tokens))
    assert sorted(r.status_code for r in answers) == [200, 409]
    loser = next(r for r in answers if r.status_code == 409)
    assert loser.json()["error"]["code"] in {"task_already_claimed", "task_already_completed"}
    kind = "task_completed" if action == "complete" else "task_claimed"
    assert await CaseEvent.filter(task_id=task_id, kind=kind).count() == 1
