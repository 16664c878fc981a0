"""The render description: order, widgets, labels, options, component fields resolved."""

from __future__ import annotations

import json
from typing import Any

import pytest

from forms import Form, load_form
from tests.forms.helpers import STARTUP_FORM


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_form(STARTUP_FORM).ui_spec()


def by_name(fields: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in fields}


def test_spec_is_json_and_ordered_by_x_ui_order(spec: dict[str, Any]) -> None:
    assert json.loads(json.dumps(spec, ensure_ascii=False)) == spec
    assert spec["title"] == "企业开办一件事" and spec["name"] == "business_startup.json"
    assert [f["name"] for f in spec["fields"]] == [
        "company_name", "company_type", "industry", "registered_capital", "address", "legal_representative",
        "shareholders", "business_scope", "contact_phone", "needs_seal", "needs_invoice", "open_bank_account",
        "bank_name", "filing_agent", "establish_date"]  # unordered ones follow in schema order
    assert load_form(STARTUP_FORM).order == [f["name"] for f in spec["fields"]]


def test_widgets_required_and_hints(spec: dict[str, Any]) -> None:
    fields = by_name(spec["fields"])
    widgets = {name: f["widget"] for name, f in fields.items()}
    assert widgets == {
        "company_name": "text", "company_type": "select", "industry": "radio", "registered_capital": "money",
        "address": "address", "legal_representative": "group", "shareholders": "table",
        "business_scope": "textarea", "contact_phone": "tel", "needs_seal": "switch",
        "needs_invoice": "switch",
        "open_bank_account": "switch", "bank_name": "text", "filing_agent": "group", "establish_date": "date"}
    assert {n for n, f in fields.items() if f["required"]} == {
        "company_name", "company_type", "address", "registered_capital", "legal_representative",
        "shareholders", "business_scope", "contact_phone"}
    assert fields["company_name"]["placeholder"] == "如：上海某某科技有限公司"
    assert fields["company_name"]["help"] == "须经名称自主申报"
    assert fields["company_name"]["constraints"] == {"minLength": 4, "maxLength": 100}
    assert fields["needs_seal"]["default"] is True and fields["needs_seal"]["type"] == "boolean"


def test_component_fields_merge_with_the_form_field(spec: dict[str, Any]) -> None:
    fields = by_name(spec["fields"])
    phone = fields["contact_phone"]
    assert phone["title"] == "联系电话" and phone["type"] == "string"
    assert phone["component"] == "https://govflow.example/forms/components/phone.json"
    assert phone["placeholder"] == "请输入11位手机号" and phone["constraints"]["pattern"] == r"^1[3-9]\d{9}$"
    capital = fields["registered_capital"]
    assert capital["title"] == "注册资本（万元）" and capital["unit"] == "万元"  # the field's x-ui wins
    assert capital["constraints"] == {"minimum": 0, "maximum": 999999999999.99, "multipleOf": 0.01}
    address = by_name(fields["address"]["fields"])
    assert [f["name"] for f in fields["address"]["fields"]] == ["region_code", "detail"]
    assert address["region_code"]["title"] == "所在地区" and address["region_code"]["widget"] == "region"
    assert address["detail"]["path"] == "address.detail" and address["detail"]["required"] is True
    rep = by_name(fields["legal_representative"]["fields"])
    assert rep["id_number"]["widget"] == "id-number" and rep["id_number"]["hints"]["sensitive"] is True
    assert rep["name"]["title"] == "法定代表人姓名"


def test_options_from_one_of_and_enum_names(spec: dict[str, Any]) -> None:
    fields = by_name(spec["fields"])
    assert fields["company_type"]["options"][0] == {"value": "llc", "label": "有限责任公司"}
    assert [o["label"] for o in fields["industry"]["options"]] == ["信息技术", "零售", "餐饮"]


def test_array_items(spec: dict[str, Any]) -> None:
    shareholders = by_name(spec["fields"])["shareholders"]
    assert shareholders["constraints"] == {"minItems": 1, "maxItems": 50}
    item = shareholders["item"]
    assert item["type"] == "object" and item["path"] == "shareholders.*"
    assert [f["name"] for f in item["fields"]] == ["name", "id_number", "contribution", "share_ratio"]
    assert by_name(item["fields"])["contribution"]["path"] == "shareholders.*.contribution"
    assert by_name(item["fields"])["share_ratio"]["required"] is False


def test_small_forms_nested_order_checkboxes_and_recursion() -> None:
    form: Form = load_form({
        "type": "object",
        "properties": {
            "kids": {"type": "array", "uniqueItems": True, "title": "事项",
                     "items": {"enum": ["a", "b"], "x-ui": {"enumNames": ["甲", "乙"]}}},
            "box": {"type": "object", "x-ui": {"order": ["z", "y"]},
                    "properties": {"y": {"type": "integer"},
                                   "z": {"type": ["string", "null"], "format": "email"}}},
            "tree": {"$ref": "#/$defs/node"},
        },
        "$defs": {"node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}},
    })
    fields = by_name(form.ui_spec()["fields"])
    assert fields["kids"]["widget"] == "checkboxes" and fields["kids"]["item"]["options"][1]["label"] == "乙"
    box = fields["box"]["fields"]
    assert [f["name"] for f in box] == ["z", "y"]
    assert box[0]["widget"] == "email" and box[0]["nullable"] is True and box[1]["widget"] == "number"
    depth, node = 0, fields["tree"]
    while "fields" in node:
        node, depth = node["fields"][0], depth + 1
    assert node.get("truncated") and depth < 40
    json.dumps(form.ui_spec())


def test_checkbox_labels_written_on_the_array_name_the_items() -> None:
    seal = load_form(open("processes/business-startup/forms/seal.json", encoding="utf-8").read()).ui_spec()
    kinds = next(f for f in seal["fields"] if f["name"] == "seal_kinds")
    assert kinds["widget"] == "checkboxes"
    assert [(o["value"], o["label"]) for o in kinds["item"]["options"]][:2] == [
        ("official", "公章"), ("finance", "财务专用章")]
