"""The service catalogue over real HTTP: the public list and detail (form render spec, JSON Schema
and its components, materials), materials satisfied by the caller's e-certificates only with a
token of their holder, 404 for unknown and platform items, and the OpenAPI entries.

Every ``/api/v1`` answer is checked against the OpenAPI document (``OpenApiClient.call``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sanic import Sanic

from engine.citizen.applications import Applicant
from mobile_api.api.services import ANONYMOUS_REASON, UNBOUND_REASON
from tests.api.helpers import OpenApiClient, citizen_token, error_of, running_api
from tests.processes.conftest import ID_CARD, issue_certificate

WANG = Applicant(id_number="310104196103150273", name="王建国", openid="dev-wang")
LI = Applicant(id_number="310110198606200486", name="李娜", openid="dev-lina")
DETAIL = "/api/v1/services/senior-card"


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch) as served:
        yield served


def material(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in body["materials"] if m["name"] == name)


async def test_list_offers_citizen_items_only(api: OpenApiClient) -> None:
    response = await api.call("GET", "/api/v1/services")
    assert response.status_code == 200
    items = {item["slug"]: item for item in response.json()["items"]}
    assert set(items) == {"senior-card", "business-startup", "newborn", "residence-permit"}  # no rectification
    senior = items["senior-card"]
    assert (senior["name"], senior["type"], senior["department"]) == ("老年人优待证办理", "即办件", "mca")
    assert senior["department_name"] and senior["department_name"] != "mca"
    assert senior["real_name_level"] == 2 and senior["promised_limit"] == {"value": 0, "unit": "工作日"}
    assert [m["name"] for m in senior["materials"]] == ["居民身份证", "户籍信息", "近期免冠照片"]


async def test_detail_without_a_token_lists_plain_material_statuses(api: OpenApiClient) -> None:
    response = await api.call("GET", DETAIL)
    assert response.status_code == 200
    body = response.json()
    assert body["slug"] == "senior-card" and body["materials_personalised"] is False
    id_card = material(body, "居民身份证")
    assert (id_card["status"], id_card["satisfied"], id_card["source_type"]) == ("needs_upload", False, "certificate")
    assert id_card["reason"] == ANONYMOUS_REASON and id_card["by_certificate"] is None
    assert material(body, "户籍信息")["satisfied"] is True  # shared data: never uploaded
    assert material(body, "近期免冠照片")["status"] == "needs_upload"

    form = body["form"]
    assert form["title"] == "老年人优待证申请"
    assert [f["name"] for f in form["fields"]] == ["phone", "address", "delivery"]
    phone = form["fields"][0]
    assert phone["required"] is True and phone["widget"] == "tel" and phone["constraints"]["pattern"]
    # the raw schema with its components validates a form exactly as the server does
    schema, components = body["schema"], body["schema_components"]
    assert schema["required"] == ["phone", "address"]
    assert "https://govflow.example/forms/components/region_code.json" in components  # referenced by address
    registry = Registry().with_resources(
        [(uri, Resource.from_contents(c, default_specification=DRAFT202012)) for uri, c in components.items()])
    validator = Draft202012Validator({"$id": "https://govflow.example/forms/apply.json", **schema},
                                     registry=registry)
    good = {"phone": "13816612345", "address": {"region_code": "310104", "detail": "漕溪北路88弄"}}
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "phone": "12345"})


async def test_materials_are_satisfied_only_for_the_holder_with_a_token(api: OpenApiClient) -> None:
    wang = await citizen_token(api, "dev-wang", WANG.name, WANG.id_number)
    unbound = await citizen_token(api, "dev-nobody")
    li = await citizen_token(api, "dev-lina", LI.name, LI.id_number)
    issued = await issue_certificate(api.app.ctx.engine, ID_CARD, WANG)  # 王建国's 居民身份证 e-certificate

    mine = (await api.call("GET", DETAIL, token=wang)).json()
    assert mine["materials_personalised"] is True
    id_card = material(mine, "居民身份证")
    assert (id_card["status"], id_card["satisfied"], id_card["label"]) == ("satisfied", True,
                                                                            "已由电子证照自动获取（免提交）")
    assert id_card["by_certificate"] == issued["identifier"] and id_card["purpose_bound"] is True

    anonymous = (await api.call("GET", DETAIL)).json()
    assert material(anonymous, "居民身份证")["satisfied"] is False
    others = (await api.call("GET", DETAIL, token=li)).json()  # bound, but holds no ID-card certificate
    assert others["materials_personalised"] is True
    assert material(others, "居民身份证")["satisfied"] is False
    assert material(others, "居民身份证")["reason"] == "未找到该类电子证照"
    not_bound = (await api.call("GET", DETAIL, token=unbound)).json()
    assert not_bound["materials_personalised"] is False
    assert material(not_bound, "居民身份证")["reason"] == UNBOUND_REASON
    assert WANG.id_number not in api.all_text()


async def test_unknown_items_and_bad_tokens(api: OpenApiClient) -> None:
    error_of(await api.call("GET", "/api/v1/services/no-such-item"), 404, "not_found")
    error_of(await api.call("GET", "/api/v1/services/rectification"), 404, "not_found")  # platform item
    bad = await api.call("GET", DETAIL, token="not-a-jwt")
    error_of(bad, 401, "token_invalid")
    assert bad.headers["WWW-Authenticate"].startswith("Bearer")


async def test_catalogue_routes_are_documented(api: OpenApiClient) -> None:
    spec = await api.spec()
    listing = spec["paths"]["/api/v1/services"]["get"]
    assert " / " in listing["summary"] and {"200", "503"} <= set(listing["responses"])
    assert "security" not in listing
    detail = spec["paths"]["/api/v1/services/{slug}"]["get"]
    assert {"200", "401", "404"} <= set(detail["responses"])
    assert {} in detail["security"] and {"bearerAuth": []} in detail["security"]  # token optional
    schema = detail["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"materials", "form", "schema", "schema_components"} <= set(schema["required"])

