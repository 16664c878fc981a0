"""Who may handle a task, over real HTTP on both database passes (engine.workbench.assignment):
the two 会签 signatures of a residence permit come from two different officers — claiming,
completing or being handed (转办) a second instance answers 409 ``already_signed_this_case``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sanic import Sanic

from engine.platform.seed import hash_password
from engine.store.certificate_models import Certificate
from engine.store.models import HumanTask, StaffUser
from tests.api.helpers import OpenApiClient, citizen_token, error_of, running_api
from tests.api.test_applications_api import HUANG, RESIDENCE, started

LOGIN, TASKS = "/api/v1/staff/login", "/api/v1/staff/tasks"
PASSWORD = "correct horse battery staple"
OFFICERS = ("police01", "police02", "police03")
REVIEW = {"review_outcome": "approve", "review_opinion": "材料齐全，提交会签"}


def sign(decision: str = "approve") -> dict:
    return {"data": {"signature": {"decision": decision, "opinion": "同意签发" if decision == "approve" else "不同意"}}}


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch) as served:
        hashed = hash_password(PASSWORD)
        for username in OFFICERS:
            await StaffUser.create(username=username, name=username, password_hash=hashed,
                                   departments=["police_station"], roles=["officer"])
        yield served


async def token_of(api: OpenApiClient, username: str) -> str:
    response = await api.call("POST", LOGIN, json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def countersign_tasks(api: OpenApiClient, reviewer: str) -> tuple[int, list[str]]:
    citizen = await citizen_token(api, "dev-huangli", *HUANG)
    case = await started(api, citizen, "residence-permit", RESIDENCE)
    [review] = case["current_steps"]
    done = await api.call("POST", f"{TASKS}/{review['task_id']}/complete", token=reviewer, json={"data": REVIEW})
    assert done.status_code == 200, done.text
    rows = await HumanTask.filter(case_id=case["id"], task_spec="countersign [child]", state="ready").order_by("id")
    assert len(rows) == 2
    return case["id"], [str(r.id) for r in rows]


async def test_one_officer_cannot_sign_both_countersign_instances(api: OpenApiClient) -> None:
    p1, p2 = await token_of(api, "police01"), await token_of(api, "police02")
    case_id, (first, second) = await countersign_tasks(api, p1)
    assert (await api.call("POST", f"{TASKS}/{first}/complete", token=p1, json=sign())).status_code == 200
    for action, body in (("claim", None), ("complete", sign())):
        refused = error_of(await api.call("POST", f"{TASKS}/{second}/{action}", token=p1, json=body), 409,
                           "already_signed_this_case")
        assert "不同人员" in refused["message"]
    row = await HumanTask.get(id=second)
    assert (row.state, row.assignee) == ("ready", None)  # the refused completion left no claim behind
    detail = (await api.call("GET", f"{TASKS}/{second}", token=p1)).json()
    assert "complete" not in detail["actions"] and "claim" not in detail["actions"]
    assert "不同人员" in detail["blocked"]["complete"]
    done = await api.call("POST", f"{TASKS}/{second}/complete", token=p2, json=sign())
    assert done.status_code == 200, done.text
    assert await Certificate.filter(case_id=case_id).count() == 1


async def test_a_second_instance_is_not_handed_to_whoever_signed_or_holds_the_first(api: OpenApiClient) -> None:
    p1, p2, p3 = [await token_of(api, u) for u in OFFICERS]
    _, (first, second) = await countersign_tasks(api, p3)
    assert (await api.call("POST", f"{TASKS}/{first}/claim", token=p1)).status_code == 200
    # holding one instance already: the other one is not for police01 either
    error_of(await api.call("POST", f"{TASKS}/{second}/claim", token=p1), 409, "already_signed_this_case")
    refused = error_of(await api.call("POST", f"{TASKS}/{second}/transfer", token=p2, json={"to": "police01"}),
                       409, "already_signed_this_case")
    assert refused["message"].startswith("police01")
    assert (await HumanTask.get(id=second)).assignee is None
    # a withdrawn signature does not count: police01 withdraws, releases, and may take the other one
    assert (await api.call("POST", f"{TASKS}/{first}/complete", token=p1, json=sign())).status_code == 200
    assert (await api.call("POST", f"{TASKS}/{first}/withdraw", token=p1)).status_code == 200
    assert (await api.call("POST", f"{TASKS}/{first}/unclaim", token=p1)).status_code == 200
    assert (await api.call("POST", f"{TASKS}/{second}/claim", token=p1)).status_code == 200


async def test_an_officer_never_handles_their_own_application(api: OpenApiClient) -> None:
    """回避: police02's account is linked to 黄丽's ID number (as the citizens' keyed hash); her own
    residence-permit application is not for police02 — claim, complete and 转办 answer 409
    ``own_case_recusal`` and the task detail says why instead of hiding the buttons."""
    from engine.accountability import PiiKeys
    from engine.workbench import link_identity

    await link_identity("police02", HUANG[1], pii_key=PiiKeys.from_settings(api.app.ctx.settings).blind_index_key)
    p1, p2 = await token_of(api, "police01"), await token_of(api, "police02")
    citizen = await citizen_token(api, "dev-huangli", *HUANG)
    case = await started(api, citizen, "residence-permit", RESIDENCE)
    [review] = case["current_steps"]
    task = review["task_id"]
    for action, body in (("claim", None), ("complete", {"data": REVIEW})):
        refused = error_of(await api.call("POST", f"{TASKS}/{task}/{action}", token=p2, json=body), 409,
                           "own_case_recusal")
        assert "回避" in refused["message"]
    refused = error_of(await api.call("POST", f"{TASKS}/{task}/transfer", token=p1, json={"to": "police02"}),
                       409, "own_case_recusal")
    assert refused["message"].startswith("police02")
    # nor 补正 / 退回 or 加签 by the applicant's own account, nor a 加签 given to it
    error_of(await api.call("POST", f"{TASKS}/{task}/return", token=p2, json={"reason": "请补充租赁合同"}), 409,
             "own_case_recusal")
    error_of(await api.call("POST", f"{TASKS}/{task}/add-signer", token=p2,
                            json={"user": "police01", "position": "before"}), 409, "own_case_recusal")
    error_of(await api.call("POST", f"{TASKS}/{task}/add-signer", token=p1,
                            json={"user": "police02", "position": "before"}), 409, "own_case_recusal")
    assert (await HumanTask.get(id=task)).state == "ready"
    assert await HumanTask.filter(case_id=case["id"], kind__in=("cosign", "supplement")).count() == 0
    assert (await HumanTask.get(id=task)).assignee is None
    detail = (await api.call("GET", f"{TASKS}/{task}", token=p2)).json()
    assert "claim" not in detail["actions"] and "complete" not in detail["actions"]
    assert not {"claim", "complete", "return", "supplement_request", "add_signer"} & set(detail["actions"])
    assert all("回避" in detail["blocked"][a] for a in ("claim", "complete", "return", "supplement_request",
                                                       "add_signer"))
    assert "transfer" in detail["actions"]  # handing one's own case on is allowed
    done = await api.call("POST", f"{TASKS}/{task}/complete", token=p1, json={"data": REVIEW})
    assert done.status_code == 200, done.text
