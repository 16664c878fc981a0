"""Four-eyes publishing over real HTTP on both database passes: a designer's deploy is pending and
runs no new case; the deployer cannot approve it; only an admin or a supervisor of a department
whose lanes the process uses may; approve makes it live (at once or at effective_at), reject
keeps the live version live; cases started before keep their version; the diff names what
changed; every decision is audited."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone

import pytest
from sanic import Sanic

from engine.errors import NotFound
from engine.store.designer_models import DesignerAudit
from engine.store.models import Case, ProcessDefinition
from tests.api.helpers import OpenApiClient, error_of, running_api, seed_staff
from tests.api.helpers import staff_login as token
from tests.conftest import FIXTURES

ROOT = FIXTURES.parents[1]
D = "/api/v1/designer"
P = f"{D}/processes/three_steps/versions"
THREE = (FIXTURES / "models" / "task_ops" / "three_steps.bpmn").read_text(encoding="utf-8")
XML = {"Content-Type": "application/xml"}
STAFF = {"designer01": (["window"], ["designer"]), "designer02": (["window"], ["designer"]),
         "admin": (["window"], ["admin"]), "mcasup": (["mca"], ["supervisor"]),
         "psbsup": (["psb"], ["supervisor"]), "mca01": (["mca"], ["officer"])}


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch) as served:
        await seed_staff(STAFF)
        yield served


async def _deploy(api: OpenApiClient, who: str, xml: str) -> dict:
    deployed = await api.call("POST", f"{D}/processes", token=await token(api, who), content=xml.encode(), headers=XML)
    assert deployed.status_code == 201, deployed.text
    return deployed.json()


async def _start(api: OpenApiClient) -> Case:
    engine = api.app.ctx.engine
    started = await engine.start_case(await engine.live_definition("three_steps"), service="three-steps", data={})
    return await Case.get(id=started.id).prefetch_related("definition")


async def _states(api: OpenApiClient, who: str) -> dict[int, tuple[str, bool]]:
    listed = await api.call("GET", P, token=await token(api, who))
    assert listed.status_code == 200, listed.text
    return {v["version"]: (v["state"], v["may_review"]) for v in listed.json()["items"]}


async def test_a_deploy_waits_for_a_second_person_and_only_then_runs_new_cases(api: OpenApiClient) -> None:
    v1 = await _deploy(api, "designer01", THREE)
    assert v1["state"] == "pending"
    with pytest.raises(NotFound):  # nothing live yet: no case can start on an unapproved model
        await api.app.ctx.engine.live_definition("three_steps")
    [listed] = (await api.call("GET", f"{D}/processes", token=await token(api, "admin"))).json()["items"]
    assert listed["live_version"] is None and listed["pending_versions"] == [1]

    designer, admin, mca_sup, psb_sup = [await token(api, n) for n in ("designer01", "admin", "mcasup", "psbsup")]
    error_of(await api.call("POST", f"{P}/1/approve", token=designer, json={}), 403, "forbidden_role")
    error_of(await api.call("POST", f"{P}/1/approve", token=await token(api, "mca01"), json={}), 403,
             "forbidden_role")
    error_of(await api.call("POST", f"{P}/1/approve", token=psb_sup, json={}), 403, "not_reviewer")  # no psb lane
    assert await _states(api, "psbsup") == {1: ("pending", False)}
    assert await _states(api, "mcasup") == {1: ("pending", True)}
    approved = await api.call("POST", f"{P}/1/approve", token=mca_sup, json={"note": "同意上线"})
    assert approved.status_code == 200, approved.text
    assert (approved.json()["state"], approved.json()["reviewed_by"]) == ("live", "mcasup")
    first = await _start(api)
    assert first.definition.version == 1

    # an admin deploys v2: the admin may not approve it himself, the other designer neither (role)
    v2 = await _deploy(api, "admin", THREE.replace('name="领导审批"', 'name="分管领导审批"'))
    assert v2["version"] == 2 and v2["state"] == "pending"
    error_of(await api.call("POST", f"{P}/2/approve", token=admin, json={}), 403, "self_approval")
    assert await _states(api, "admin") == {2: ("pending", False), 1: ("live", False)}
    diff = await api.call("GET", f"{P}/2/diff", token=designer)
    assert diff.status_code == 200, diff.text
    assert diff.json()["against_version"] == 1 and diff.json()["changed"] == ["approve"]
    assert diff.json()["added"] == [] and diff.json()["removed"] == []
    assert diff.json()["names"] == {"approve": "分管领导审批"}

    # reject: a reason is required; the live version stays live; a rejected version cannot be approved
    error_of(await api.call("POST", f"{P}/2/reject", token=mca_sup, json={"note": "  "}), 422, "validation_failed")
    rejected = await api.call("POST", f"{P}/2/reject", token=mca_sup, json={"note": "名称不规范"})
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    error_of(await api.call("POST", f"{P}/2/approve", token=mca_sup, json={}), 409, "version_not_pending")
    assert (await _start(api)).definition.version == 1

    # v3 approved for a later date: scheduled, v1 still live; then effective now: live, v1 superseded
    v3 = await _deploy(api, "designer01", THREE.replace('name="领导审批"', 'name="局长审批"'))
    error_of(await api.call("POST", f"{P}/3/approve", token=admin, json={"effective_at": "tomorrow"}), 422,
             "validation_failed")
    later = (datetime.now(timezone.utc) + timedelta(days=3)).isoformat()
    scheduled = await api.call("POST", f"{P}/3/approve", token=admin, json={"note": "下月生效", "effective_at": later})
    assert scheduled.status_code == 200 and scheduled.json()["state"] == "scheduled", scheduled.text
    assert (await _start(api)).definition.version == 1
    await ProcessDefinition.filter(process_id="three_steps", version=v3["version"]).update(
        effective_at=datetime.now(timezone.utc) - timedelta(seconds=1))  # the date has come
    assert (await _start(api)).definition.version == 3
    assert await _states(api, "designer01") == {3: ("live", False), 2: ("rejected", False), 1: ("superseded", False)}
    assert (await Case.get(id=first.id).prefetch_related("definition")).definition.version == 1  # kept its version
    [listed] = (await api.call("GET", f"{D}/processes", token=designer)).json()["items"]
    assert listed["live_version"] == 3 and listed["pending_versions"] == []

    trail = [(a.action, a.actor, a.version) for a in await DesignerAudit.filter(
        action__in=["approve", "reject"]).order_by("id")]
    assert trail == [("approve", "mcasup", 1), ("reject", "mcasup", 2), ("approve", "admin", 3)]
    assert (await DesignerAudit.get(action="reject")).detail["note"] == "名称不规范"


async def test_review_input_is_checked(api: OpenApiClient) -> None:
    await _deploy(api, "designer01", THREE)
    admin = await token(api, "admin")
    error_of(await api.call("POST", f"{P}/9/approve", token=admin, json={}), 404, "not_found")
    error_of(await api.call("POST", f"{P}/x/approve", token=admin, json={}), 422, "validation_failed")
    error_of(await api.call("POST", f"{P}/1/approve", token=admin, json={"note": 5}), 422, "validation_failed")
    error_of(await api.call("POST", f"{P}/1/approve", token=admin, json={"note": "x" * 600}), 422,
             "validation_failed")
    error_of(await api.call("POST", f"{P}/1/reject", token=admin, json={}), 422, "validation_failed")
    error_of(await api.call("POST", f"{P}/1/approve"), 401, "unauthorized")
    error_of(await api.call("GET", f"{P}/9/diff", token=admin), 404, "not_found")
    # the first version of a process has nothing live to compare with: everything is added
    first = (await api.call("GET", f"{P}/1/diff", token=admin)).json()
    assert first["against_version"] is None and "approve" in first["added"] and first["changed"] == []
    assert (await ProcessDefinition.get(process_id="three_steps")).review_state == "pending"
    assert not await DesignerAudit.filter(action__in=["approve", "reject"]).exists()


async def test_deploy_and_validate_refuse_a_model_its_item_does_not_allow(api: OpenApiClient) -> None:
    """senior_card belongs to the senior-card item: issuing a 居住证 or calling the birth registry is
    refused, the service task is named (the page marks it), and nothing is stored."""
    designer = await token(api, "designer01")
    ctx = api.app.ctx
    await ctx.applications.definition_for(ctx.catalog.get("senior-card"))  # the folder's version: forms, DMN
    shipped = (ROOT / "processes" / "senior-card" / "senior_card.bpmn").read_text(encoding="utf-8")
    other_type = shipped.replace("'11310000612852669L001'", "'11310000996137268Q003'")
    foreign = shipped.replace('id="population.lookup"', 'id="hospital.birth_record"')
    before = await ProcessDefinition.all().count()
    for xml, element, code in ((other_type, "issue_certificate", "certificate_type_not_allowed"),
                               (foreign, "lookup_population", "connector_not_allowed")):
        refused = error_of(await api.call("POST", f"{D}/processes", token=designer, content=xml.encode(),
                                          headers=XML), 422, "lint_failed")
        assert element in refused["fields"] and "未授权" in refused["fields"][element]
        checked = (await api.call("POST", f"{D}/validate", token=designer, content=xml.encode(), headers=XML)).json()
        assert checked["valid"] is False
        assert [(f["code"], f["element_id"]) for f in checked["errors"]] == [(code, element)]
    assert await ProcessDefinition.all().count() == before
    ok = await api.call("POST", f"{D}/validate", token=designer, content=shipped.encode(), headers=XML)
    assert ok.json()["valid"] is True
