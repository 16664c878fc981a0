"""Two people acting on one task at the same moment, on PostgreSQL with real concurrency: each
request goes through its own HTTP client (its own connection) to the served app and
``asyncio.gather`` sends them together. Exactly one wins (200/201), the other gets a 409 with a
stable code, and the case is left consistent (no double completion, no lost update)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from engine.platform.seed import hash_password
from engine.store.models import Case, CaseEvent, HumanTask, StaffUser
from tests.api import test_staff_api
from tests.api.helpers import OpenApiClient, citizen_token
from tests.api.test_applications_api import ACCEPT, STARTUP, WANG, started
from tests.api.test_staff_api import PASSWORD, staff_token

pytestmark = pytest.mark.postgres
TASKS, APPLY = "/api/v1/staff/tasks", "/api/v1/applications"
api = test_staff_api.api  # the served app with seeded staff
CONFLICT_CODES = {"task_already_claimed", "task_already_completed", "waiting_for_applicant",
                  "waiting_for_added_signer", "task_not_ready", "conflict"}
SUPPLEMENT = {"reason": "请补充住所使用证明"}


@asynccontextmanager
async def second_client(api: OpenApiClient) -> AsyncIterator[OpenApiClient]:
    """Another real HTTP client of the same served app (separate connection pool)."""
    async with httpx.AsyncClient(base_url=api.client.base_url, timeout=10) as client:
        yield OpenApiClient(client, api.app)


async def race(api: OpenApiClient, first: tuple[str, str, Any], second: tuple[str, str, Any]) -> list[httpx.Response]:
    """Send ``(token, path, json body)`` pairs at once, each over its own client."""
    async with second_client(api) as other:
        answers = await asyncio.gather(*(
            client.call("POST", path, token=token, **({"json": body} if body is not None else {}))
            for client, (token, path, body) in ((api, first), (other, second))))
    return list(answers)


def one_winner(answers: list[httpx.Response]) -> httpx.Response:
    statuses = sorted(r.status_code for r in answers)
    assert statuses in ([200, 409], [201, 409]), [r.text for r in answers]
    loser = next(r for r in answers if r.status_code == 409)
    assert loser.json()["error"]["code"] in CONFLICT_CODES, loser.text
    return next(r for r in answers if r.status_code != 409)


async def _case(api: OpenApiClient) -> tuple[str, int, str]:
    token = await citizen_token(api, "dev-wang", *WANG)
    case = await started(api, token, "business-startup", STARTUP)
    [task] = await HumanTask.filter(case_id=case["id"], state="ready")
    return token, case["id"], str(task.id)


@pytest.mark.parametrize("second", ["complete", "claim", "supplement", "transfer"])
async def test_two_officers_one_task(api: OpenApiClient, second: str) -> None:
    _, case_id, task_id = await _case(api)
    samr01, samr02 = await staff_token(api, "samr01"), await staff_token(api, "samr02")
    await StaffUser.create(username="samr03", name="samr03", password_hash=hash_password(PASSWORD),
                           departments=["samr"], roles=["officer"])
    bodies = {"complete": {"data": ACCEPT}, "claim": None, "supplement": SUPPLEMENT, "transfer": {"to": "samr03"}}
    paths = {"supplement": "return"}
    answers = await race(api, (samr01, f"{TASKS}/{task_id}/complete", {"data": ACCEPT}),
                         (samr02, f"{TASKS}/{task_id}/{paths.get(second, second)}", bodies[second]))
    winner = one_winner(answers)
    completed = await CaseEvent.filter(task_id=task_id, kind="task_completed").count()
    row = await HumanTask.get(id=task_id)
    if second == "complete":
        assert completed == 1 and row.completed_by == ("samr01" if winner is answers[0] else "samr02")
    elif winner is answers[0]:  # the completion won: nothing else happened to the task
        assert completed == 1 and row.state == "completed" and row.completed_by == "samr01"
        assert await HumanTask.filter(case_id=case_id, kind="supplement").count() == 0
    else:
        assert completed == 0 and row.state in ("claimed", "waiting", "ready")
        assert row.assignee == ("samr03" if second == "transfer" else "samr02")
    assert await CaseEvent.filter(task_id=task_id, kind="supplement_requested").count() == (
        1 if second == "supplement" and winner is answers[1] else 0)


async def test_two_officers_ask_for_supplement_at_once(api: OpenApiClient) -> None:
    _, case_id, task_id = await _case(api)
    samr01, samr02 = await staff_token(api, "samr01"), await staff_token(api, "samr02")
    one_winner(await race(api, (samr01, f"{TASKS}/{task_id}/return", SUPPLEMENT),
                          (samr02, f"{TASKS}/{task_id}/return", SUPPLEMENT)))
    assert await HumanTask.filter(case_id=case_id, kind="supplement").count() == 1
    assert (await Case.get(id=case_id)).paused_at is not None


async def test_citizen_supplies_twice_at_once(api: OpenApiClient) -> None:
    token, case_id, task_id = await _case(api)
    samr01 = await staff_token(api, "samr01")
    assert (await api.call("POST", f"{TASKS}/{task_id}/return", token=samr01, json=SUPPLEMENT)).status_code == 200
    body = {"data": {"note": "已补充"}}
    one_winner(await race(api, (token, f"{APPLY}/{case_id}/supplement", body),
                          (token, f"{APPLY}/{case_id}/supplement", body)))
    assert await CaseEvent.filter(case_id=case_id, kind="supplement_received").count() == 1
    row = await HumanTask.get(id=task_id)
    assert (row.state, row.assignee) == ("claimed", "samr01")
    assert (await Case.get(id=case_id)).paused_at is None


async def test_added_signer_signs_twice_at_once_and_add_signer_races_complete(api: OpenApiClient) -> None:
    _, case_id, task_id = await _case(api)
    samr01, samr02 = await staff_token(api, "samr01"), await staff_token(api, "samr02")
    added = await api.call("POST", f"{TASKS}/{task_id}/add-signer", token=samr01,
                           json={"user": "samr02", "position": "before"})
    side = added.json()["id"]
    one_winner(await race(api, (samr02, f"{TASKS}/{side}/sign", {"decision": "approve", "opinion": "同意"}),
                          (samr02, f"{TASKS}/{side}/sign", {"decision": "reject", "opinion": "不同意"})))
    assert await CaseEvent.filter(case_id=case_id, kind="cosign_completed").count() == 1

    # a second signer added while the officer completes: either the completion waits for them or it is done
    answers = await race(api, (samr01, f"{TASKS}/{task_id}/complete", {"data": ACCEPT}),
                         (samr01, f"{TASKS}/{task_id}/add-signer", {"user": "samr02", "position": "before"}))
    winner = one_winner(answers)
    open_signers = await HumanTask.filter(case_id=case_id, kind="cosign", state="ready").count()
    if winner is answers[0]:
        assert open_signers == 0 and (await HumanTask.get(id=task_id)).state == "completed"
    else:
        assert open_signers == 1 and (await HumanTask.get(id=task_id)).state == "ready"  # the auto-claim undone
