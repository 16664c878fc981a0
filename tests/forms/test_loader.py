"""Loading forms from files, dicts and text; $ref resolution; refusal of unusable schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forms import COMPONENT_BASE, FormRegistry, FormSchemaError, load_form, validate_data

FORM = {
    "title": "出生登记",
    "type": "object",
    "required": ["child_name", "mother"],
    "properties": {
        "child_name": {"$ref": "components/person_name.json", "title": "新生儿姓名"},
        "birth_date": {"$ref": "https://govflow.example/forms/components/date.json", "title": "出生日期"},
        "mother": {"type": "object", "title": "母亲", "required": ["id_number"],
                   "properties": {"id_number": {"$ref": "components/id_number.json", "title": "母亲身份证号"}}},
    },
}


def test_form_file_in_a_temp_dir_resolves_component_refs(tmp_path: Path) -> None:
    path = tmp_path / "newborn.json"
    path.write_text(json.dumps(FORM, ensure_ascii=False), encoding="utf-8")
    form = load_form(path)
    assert form.name == "newborn.json" and form.title == "出生登记"
    assert form.validate({"child_name": "王小明", "mother": {"id_number": "1"}, "birth_date": "2024-13-01"}) == {
        "mother.id_number": "「母亲身份证号」格式不正确，应为18位公民身份号码（末位为数字或大写X）",
        "birth_date": "「出生日期」应为有效日期，格式为YYYY-MM-DD",
    }
    assert load_form(str(path)).validate({}) == {"child_name": "请填写「新生儿姓名」", "mother": "请填写「母亲」"}


def test_dict_text_and_named_forms_load_alike() -> None:
    for form in (load_form(FORM), load_form(json.dumps(FORM)), load_form(FORM, name="出生 登记.json")):
        assert form.validate({"child_name": "王", "mother": {}}) == {
            "child_name": "「新生儿姓名」至少2个字", "mother.id_number": "请填写「母亲身份证号」"}


def test_a_form_with_its_own_id_uses_absolute_refs() -> None:
    schema = {"$id": "https://example.org/forms/x.json", "type": "object",
              "properties": {"p": {"$ref": "https://govflow.example/forms/components/phone.json"}}}
    assert load_form(schema).validate({"p": "1"}) == {"p": "「手机号」格式不正确，应为11位大陆手机号"}
    with pytest.raises(FormSchemaError, match="does not resolve"):
        load_form({**schema, "properties": {"p": {"$ref": "components/phone.json"}}})


@pytest.mark.parametrize(("source", "reason"), [
    ({"properties": {"x": {"$ref": "components/nope.json"}}}, "'components/nope.json' does not resolve"),
    ({"properties": {"x": {"$ref": "#/$defs/missing"}}}, "does not resolve"),
    ({"type": 12}, "not a valid JSON Schema"),
    ({"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"}, "2020-12"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not valid JSON|not a JSON Schema"),
])
def test_unusable_schemas_raise_form_schema_error(source: object, reason: str) -> None:
    with pytest.raises(FormSchemaError, match=reason):
        load_form(source)  # type: ignore[arg-type]
    assert issubclass(FormSchemaError, ValueError)


def test_unreadable_file_and_validate_data_with_a_broken_schema(tmp_path: Path) -> None:
    with pytest.raises(FormSchemaError, match="cannot read"):
        load_form(tmp_path / "absent.json")
    with pytest.raises(FormSchemaError):
        validate_data('{"properties": {"x": {"$ref": "components/nope.json"}}}', {})


def test_own_components_dir(tmp_path: Path) -> None:
    (tmp_path / "postcode.json").write_text(json.dumps(
        {"title": "邮政编码", "type": "string", "pattern": "^\\d{6}$", "x-error": "应为6位数字"}), encoding="utf-8")
    registry = FormRegistry(tmp_path)
    assert list(registry.components) == [f"{COMPONENT_BASE}postcode.json"]
    form = load_form({"properties": {"zip": {"$ref": "components/postcode.json"}}}, registry=registry)
    assert form.validate({"zip": "20000"}) == {"zip": "「邮政编码」应为6位数字"}
    with pytest.raises(FormSchemaError):  # the default components are not in this registry
        load_form({"properties": {"p": {"$ref": "components/phone.json"}}}, registry=registry)


def test_broken_component_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"$ref": "other.json"}', encoding="utf-8")
    with pytest.raises(FormSchemaError, match="other.json"):
        FormRegistry(tmp_path)
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(FormSchemaError, match="bad.json"):
        FormRegistry(tmp_path)


def test_ref_problems_for_lint() -> None:
    registry = FormRegistry()
    assert registry.ref_problems(FORM) == []
    schema = {"properties": {"a": {"$ref": "components/x.json"}, "b": {"const": {"$ref": "ok"}}}}
    assert registry.ref_problems(schema) == ["$ref 'components/x.json' does not resolve"]
