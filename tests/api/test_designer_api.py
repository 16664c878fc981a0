"""The designer API over real HTTP on both database passes: validate, deploy (raw XML and JSON),
versions and XML, hostile input refused with nothing stored, roles, heat-map stats after cases
ran, and case migration; every answer is checked against the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sanic import Sanic

from engine.store.designer_models import DesignerAudit
from engine.store.models import Case, HumanTask, ProcessDefinition
from tests.api.helpers import OpenApiClient, citizen_token, error_of, running_api, seed_staff
from tests.api.helpers import staff_login as token
from tests.api.test_applications_api import ACCEPT
from tests.api.test_staff_api import intake
from tests.conftest import FIXTURES

D = "/api/v1/designer"
THREE = (FIXTURES / "models" / "task_ops" / "three_steps.bpmn").read_text(encoding="utf-8")
XML = {"Content-Type": "application/xml"}
STAFF = {"designer01": (["window"], ["designer"]), "admin": (["window"], ["admin"]),
         "samr01": (["samr"], ["officer"]), "sup01": (["supervisor"], ["supervisor"])}
BOMB = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&lol2;</bpmn:definitions>')
XXE = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&x;</bpmn:definitions>')
DMN = ('<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="d" namespace="x">'
       '<decision id="dec" name="资格"><decisionTable id="t"><input id="i"><inputExpression id="ie"><text>age</text>'
       '</inputExpression></input><output id="o" name="ok"/><rule id="r"><inputEntry id="e"><text>&gt;= 60</text>'
       '</inputEntry><outputEntry id="oe"><text>True</text></outputEntry></rule></decisionTable></decision>'
       '</definitions>')


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch) as served:
        await seed_staff(STAFF)
        yield served


async def _counts() -> tuple[int, int]:
    return await ProcessDefinition.all().count(), await DesignerAudit.all().count()


async def test_validate_answers_codes_element_ids_and_lines(api: OpenApiClient) -> None:
    designer = await token(api, "designer01")
    bad = THREE.replace('<bpmn:flowNodeRef>review</bpmn:flowNodeRef>', '').replace(
        '<bpmn:sequenceFlow id="f5" sourceRef="approve" targetRef="end" />',
        '<bpmn:sequenceFlow id="f5" sourceRef="approve" targetRef="end">'
        '<bpmn:conditionExpression>${approved}</bpmn:conditionExpression></bpmn:sequenceFlow>')
    answer = await api.call("POST", f"{D}/validate", token=designer, content=bad.encode(), headers=XML)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["valid"] is False
    by_code = {e["code"]: e for e in body["errors"]}
    assert by_code["task_without_lane"]["element_id"] == "review" and by_code["task_without_lane"]["line"] == 24
    assert "人工任务不在任何泳道中" in by_code["task_without_lane"]["message"]
    assert by_code["foreign_expression"]["element_id"] == "f5" and "approved" in by_code["foreign_expression"]["message"]
    good = await api.call("POST", f"{D}/validate", token=designer, json={"xml": THREE})
    assert good.json()["valid"] is True and good.json()["process_ids"] == ["three_steps"]
    dmn = await api.call("POST", f"{D}/validate", token=designer, content=DMN.encode(),
                         headers={"Content-Type": "text/xml"})
    assert dmn.json()["valid"] is True and dmn.json()["decision_ids"] == ["dec"]
    assert await _counts() == (0, 0)


async def test_deploy_list_versions_and_xml(api: OpenApiClient) -> None:
    designer = await token(api, "designer01")
    first = await api.call("POST", f"{D}/processes", token=designer, content=THREE.encode(), headers=XML)
    assert first.status_code == 201, first.text
    assert first.json()["created"] is True and first.json()["version"] == 1
    same = await api.call("POST", f"{D}/processes", token=designer, json={"bpmn": THREE})
    assert same.status_code == 200 and same.json()["created"] is False
    assert same.json()["content_hash"] == first.json()["content_hash"]
    changed = THREE.replace('name="领导审批"', 'name="分管领导审批"')
    second = await api.call("POST", f"{D}/processes", token=designer, content=changed.encode(), headers=XML)
    assert second.status_code == 201 and second.json()["version"] == 2
    listed = (await api.call("GET", f"{D}/processes", token=designer)).json()["items"]
    assert [(p["process_id"], p["latest_version"], p["versions"]) for p in listed] == [("three_steps", 2, 2)]
    versions = (await api.call("GET", f"{D}/processes/three_steps/versions", token=designer)).json()["items"]
    assert [v["version"] for v in versions] == [2, 1] and versions[0]["deployed_by"] == "designer01"
    xml = await api.call("GET", f"{D}/processes/three_steps/versions/1/bpmn", token=designer)
    assert xml.status_code == 200 and xml.headers["x-layout"] == "generated"
    assert 'bpmnElement="approve"' in xml.text and "领导审批" in xml.text and "分管" not in xml.text
    latest = await api.call("GET", f"{D}/processes/three_steps/versions/latest/bpmn", token=designer)
    assert "分管领导审批" in latest.text
    # the laid-out XML deployed back is a new version that still runs
    third = await api.call("POST", f"{D}/processes", token=designer, content=latest.content, headers=XML)
    assert third.status_code == 201 and third.json()["version"] == 3
    stored = await api.call("GET", f"{D}/processes/three_steps/versions/3/bpmn", token=designer)
    assert stored.headers["x-layout"] == "stored" and stored.text == latest.text
    assert [a.detail["created"] for a in await DesignerAudit.filter(action="deploy").order_by("id")] == [
        True, False, True, True]
    error_of(await api.call("GET", f"{D}/processes/nope/versions", token=designer), 404, "not_found")
    error_of(await api.call("GET", f"{D}/processes/three_steps/versions/9/bpmn", token=designer), 404, "not_found")
    error_of(await api.call("GET", f"{D}/processes/three_steps/versions/x/bpmn", token=designer), 422,
             "validation_failed")


@pytest.mark.parametrize("body, headers, status, code", [
    (BOMB, XML, 422, "doctype_forbidden"),
    (XXE, XML, 422, "doctype_forbidden"),
    ("not xml at all <", XML, 422, "not_xml"),
    ("\xff\xfe<x/>", XML, 422, "not_xml"),
    ('<html xmlns="http://www.w3.org/1999/xhtml"/>', XML, 422, "not_bpmn_or_dmn"),
    (DMN, XML, 422, "not_bpmn_or_dmn"),
    (THREE, {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
    (THREE.replace("reviewed = True", "__import__('os').system('id')"), XML, 422, "sandbox_violation"),
    (THREE.replace("reviewed = True", "x = ().__class__.__bases__[0].__subclasses__()"), XML, 422,
     "sandbox_violation"),
    (THREE.replace('<bpmn:flowNodeRef>review</bpmn:flowNodeRef>', ''), XML, 422, "lint_failed"),
    ("<a>" + "x" * 1_100_000 + "</a>", XML, 413, "payload_too_large"),
])
async def test_hostile_input_is_refused_and_nothing_stored(api: OpenApiClient, body: str, headers: dict[str, str],
                                                           status: int, code: str) -> None:
    designer = await token(api, "designer01")
    before = await _counts()
    raw = body.encode("latin-1") if body.startswith("\xff") else body.encode()
    error_of(await api.call("POST", f"{D}/processes", token=designer, content=raw, headers=headers), status, code)
    assert await _counts() == before
    if code not in ("lint_failed", "sandbox_violation") and body != DMN:  # findings (or fine) for validate
        error_of(await api.call("POST", f"{D}/validate", token=designer, content=raw, headers=headers), status, code)


async def test_bad_json_bodies(api: OpenApiClient) -> None:
    designer = await token(api, "designer01")
    for body, code in [({"bpmn": THREE, "files": {"../etc/passwd": "x"}}, "invalid_file_name"),
                       ({"bpmn": THREE, "files": {"x.dmn": BOMB}}, "doctype_forbidden"),
                       ({"files": {}}, "validation_failed"), ({"bpmn": 5}, "validation_failed"),
                       ({"process_id": "nope"}, "validation_failed")]:
        error_of(await api.call("POST", f"{D}/processes", token=designer, json=body), 422, code)
    for body, field in [({"bpmn": None, "process_id": "three_steps"}, "bpmn"), ({"bpmn": THREE, "files": None}, "files"),
                        ({"bpmn": THREE, "process_id": None}, "process_id")]:  # null is not "omitted"
        refused = error_of(await api.call("POST", f"{D}/processes", token=designer, json=body), 422,
                           "validation_failed")
        assert list(refused["fields"]) == [field]
    error_of(await api.call("POST", f"{D}/processes", token=designer, content=b"{", headers={
        "Content-Type": "application/json"}), 400, "invalid_json")
    assert await _counts() == (0, 0)


async def test_only_designers_and_admins_deploy(api: OpenApiClient) -> None:
    citizen = await citizen_token(api, "dev-li")
    officer, supervisor, admin = [await token(api, n) for n in ("samr01", "sup01", "admin")]
    error_of(await api.call("POST", f"{D}/processes", content=THREE.encode(), headers=XML), 401, "unauthorized")
    error_of(await api.call("POST", f"{D}/processes", token=citizen, content=THREE.encode(), headers=XML), 403,
             "staff_only")
    for who in (officer, supervisor):
        error_of(await api.call("POST", f"{D}/processes", token=who, content=THREE.encode(), headers=XML), 403,
                 "forbidden_role")
        error_of(await api.call("POST", f"{D}/processes/three_steps/migrate", token=who,
                                json={"from_version": 1, "to_version": 2}), 403, "forbidden_role")
    error_of(await api.call("GET", f"{D}/processes", token=officer), 403, "forbidden_role")
    assert await _counts() == (0, 0)
    deployed = await api.call("POST", f"{D}/processes", token=admin, content=THREE.encode(), headers=XML)
    assert deployed.status_code == 201 and (await DesignerAudit.get()).actor == "admin"
    assert (await api.call("GET", f"{D}/processes", token=supervisor)).status_code == 200  # reading is allowed
    listed = (await api.call("GET", f"{D}/departments", token=supervisor)).json()["items"]
    assert {"code": "samr", "name": "市场监督管理局"} in listed
    error_of(await api.call("GET", f"{D}/departments", token=officer), 403, "forbidden_role")


async def test_round_trip_of_a_shipped_process_and_heat_map(api: OpenApiClient) -> None:
    designer, samr = await token(api, "designer01"), await token(api, "samr01")
    first_task = await intake(api)  # the catalog deploys business_startup v1; the case waits at intake_check
    done = await api.call("POST", f"/api/v1/staff/tasks/{first_task}/complete", token=samr, json={"data": ACCEPT})
    assert done.status_code == 200, done.text
    waiting_task = await intake(api)
    exported = await api.call("GET", f"{D}/processes/business_startup/versions/latest/bpmn", token=designer)
    edited = exported.text.replace('name="受理核验"', 'name="受理核验（新）"', 1)
    assert edited != exported.text
    deployed = await api.call("POST", f"{D}/processes", token=designer, content=edited.encode(),
                              headers={"Content-Type": "text/xml"})
    assert deployed.status_code == 201, deployed.text
    v2 = deployed.json()
    assert v2["version"] == 2 and {f for f in v2["files"] if f.startswith("forms/")}  # forms carried over
    form_name = next(f for f in v2["files"] if f.startswith("forms/"))
    form = await api.call("GET", f"{D}/processes/business_startup/versions/2/file?name={form_name}", token=designer)
    assert form.status_code == 200 and "properties" in form.json()
    error_of(await api.call("GET", f"{D}/processes/business_startup/versions/2/file?name=forms/nope.json",
                            token=designer), 404, "not_found")
    waiting = await HumanTask.get(id=waiting_task).prefetch_related("case")
    assert (await Case.get(id=waiting.case_id).prefetch_related("definition")).definition.version == 1
    newer = await HumanTask.get(id=await intake(api))  # a new application starts on the designer's version
    assert (await Case.get(id=newer.case_id).prefetch_related("definition")).definition.version == 2

    heat = await api.call("GET", f"{D}/processes/business_startup/stats?version=1", token=designer)
    assert heat.status_code == 200, heat.text
    intake_stats = heat.json()["elements"]["intake_check"]
    assert (intake_stats["waiting"], intake_stats["completed"]) == (1, 1)
    assert intake_stats["avg_seconds"] is not None and intake_stats["p90_seconds"] is not None
    everything = (await api.call("GET", f"{D}/processes/business_startup/stats", token=designer)).json()
    assert everything["elements"]["intake_check"]["waiting"] == 2
    later = await api.call("GET", f"{D}/processes/business_startup/stats?since=2999-01-01T00:00:00Z",
                           token=designer)
    assert later.json()["elements"]["intake_check"]["completed"] == 0
    error_of(await api.call("GET", f"{D}/processes/business_startup/stats?since=yesterday", token=designer), 422,
             "validation_failed")
    error_of(await api.call("GET", f"{D}/processes/nope/stats", token=designer), 404, "not_found")

    plan = await api.call("POST", f"{D}/processes/business_startup/migrate", token=designer,
                          json={"from_version": 1, "to_version": 2})
    assert plan.status_code == 200 and plan.json()["dry_run"] is True
    assert plan.json()["movable"] == 2 and plan.json()["moved"] == 0
    moved = await api.call("POST", f"{D}/processes/business_startup/migrate", token=designer,
                           json={"from_version": 1, "to_version": 2, "dry_run": False})
    assert moved.json()["moved"] == 2
    assert (await Case.get(id=waiting.case_id).prefetch_related("definition")).definition.version == 2
    error_of(await api.call("POST", f"{D}/processes/business_startup/migrate", token=designer,
                            json={"from_version": 1, "to_version": 7}), 404, "not_found")
    error_of(await api.call("POST", f"{D}/processes/business_startup/migrate", token=designer,
                            json={"from_version": "1", "to_version": 2}), 422, "validation_failed")
    past_int32 = error_of(await api.call("POST", f"{D}/processes/business_startup/migrate", token=designer,
                                         json={"from_version": 2952780303, "to_version": 2}), 422, "validation_failed")
    assert list(past_int32["fields"]) == ["from_version"]  # was a 500 on PostgreSQL (integer overflow)
