"""GET /api/v1/me/access-log over real HTTP on both database passes: every personal-data read
(identity decryption at application, shared-data look-ups, an officer opening the task, window
intake) shows up for the citizen whose data it was — with department, masked actor, case and
purpose — and a citizen sees only their own records. Answers are checked against OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sanic import Sanic

from engine.accountability import audit
from engine.platform.seed import hash_password
from engine.store.models import StaffUser
from tests.api.helpers import OpenApiClient, citizen_token, error_of, running_api
from tests.api.test_applications_api import HUANG, RESIDENCE, SENIOR, WANG, started
from tests.api.test_staff_intake import multipart

LOG, TASKS, LOGIN = "/api/v1/me/access-log", "/api/v1/staff/tasks", "/api/v1/staff/login"
PASSWORD = "correct horse battery staple"
STAFF = {"ps01": (["police_station"], ["officer"]), "win01": (["window"], ["clerk"])}


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch, tmp_path) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch, UPLOAD_DIR=str(tmp_path / "uploads")) as served:
        hashed = hash_password(PASSWORD)
        for username, (departments, roles) in STAFF.items():
            await StaffUser.create(username=username, name=username, password_hash=hashed,
                                   departments=departments, roles=roles)
        yield served


async def staff_login(api: OpenApiClient, username: str) -> str:
    response = await api.call("POST", LOGIN, json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def entries(api: OpenApiClient, token: str, **params: int) -> dict:
    response = await api.call("GET", LOG, token=token, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_each_citizen_sees_who_read_their_own_data(api: OpenApiClient) -> None:
    wang = await citizen_token(api, "dev-wang", *WANG)
    huang = await citizen_token(api, "dev-huang", *HUANG)
    senior = await started(api, wang, "senior-card", SENIOR)
    permit = await started(api, huang, "residence-permit", RESIDENCE)

    # the officer opens Huang's task: a read of her case data by the police station
    officer = await staff_login(api, "ps01")
    [task] = (await api.call("GET", TASKS, token=officer)).json()["items"]
    assert (await api.call("GET", f"{TASKS}/{task['id']}", token=officer)).status_code == 200

    mine = await entries(api, wang)
    assert mine["total"] == len(mine["items"]) >= 2
    assert {e["case_no"] for e in mine["items"]} == {senior["case_no"]}  # the decryption too, once filed
    by_dataset = {e["dataset"]: e for e in mine["items"]}
    decrypt = by_dataset["citizen"]  # reading the bound identity to file the application
    assert decrypt["actor"] == "本人" and "老年人优待证" in decrypt["purpose"]
    population = by_dataset["population"]
    assert (population["department"], population["department_name"]) == ("mca", "民政局")
    assert population["case_no"] == senior["case_no"] and population["purpose"]
    assert "出生日期" in population["fields"]

    hers = await entries(api, huang)
    assert permit["case_no"] in {e["case_no"] for e in hers["items"]}
    assert senior["case_no"] not in {e["case_no"] for e in hers["items"]}
    [seen] = [e for e in hers["items"] if e["dataset"] == "case"]
    assert (seen["department"], seen["department_name"]) == ("police_station", "派出所")
    assert seen["actor"] == "ps*1" and seen["case_no"] == permit["case_no"]  # masked staff account
    assert "查看申请信息" in seen["purpose"] and "申请表" in seen["fields"]
    assert hers["items"][0]["at"] >= hers["items"][-1]["at"]  # newest first

    # every one of these reads is also in the audit chain, which verifies
    assert (await audit.verify()).ok


async def test_window_intake_lands_in_the_citizens_log(api: OpenApiClient) -> None:
    wang = await citizen_token(api, "dev-wang", *WANG)
    clerk = await staff_login(api, "win01")
    response = await api.call("POST", "/api/v1/staff/applications", token=clerk, **multipart([]))
    assert response.status_code == 201, response.text
    [intake] = [e for e in (await entries(api, wang))["items"] if e["dataset"] == "window_intake"]
    assert intake["case_no"] == response.json()["case_no"] and intake["department"] == "window"
    assert intake["actor"] == "wi**1" and "窗口受理" in intake["purpose"] and "身份证号" in intake["fields"]


async def test_pagination_and_an_account_without_real_name(api: OpenApiClient) -> None:
    wang = await citizen_token(api, "dev-wang", *WANG)
    for _ in range(2):
        await started(api, wang, "senior-card", SENIOR)
    everything = await entries(api, wang, size=100)
    first, second = await entries(api, wang, page=1, size=2), await entries(api, wang, page=2, size=2)
    assert first["total"] == everything["total"] >= 4 and len(first["items"]) == 2
    assert [e["id"] for e in first["items"] + second["items"]] == [e["id"] for e in everything["items"][:4]]
    nobody = await citizen_token(api, "dev-nobody")
    assert await entries(api, nobody) == {"items": [], "page": 1, "size": 20, "total": 0}


async def test_refusals(api: OpenApiClient) -> None:
    error_of(await api.call("GET", LOG), 401, "unauthorized")
    officer = await staff_login(api, "ps01")
    assert (await api.call("GET", LOG, token=officer)).status_code == 403
    wang = await citizen_token(api, "dev-wang", *WANG)
    error_of(await api.call("GET", LOG, token=wang, params={"size": 0}), 422, "validation_failed")
    error_of(await api.call("GET", LOG, token=wang, params={"page": "x"}), 422, "validation_failed")
