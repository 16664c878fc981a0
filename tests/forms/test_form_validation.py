"""A realistic service form (business start-up) validated end to end: paths and Chinese messages."""

from __future__ import annotations

import json

import pytest

from forms import Form, load_form, validate_data
from tests.forms.helpers import STARTUP_FORM, credit_code, flip_check, good, id_number


@pytest.fixture(scope="module")
def form() -> Form:
    return load_form(STARTUP_FORM)


def test_good_data_has_no_errors(form: Form) -> None:
    assert form.validate(good()) == {}
    assert form.is_valid(good())
    minimal = good()
    for optional in ("industry", "filing_agent", "needs_seal", "needs_invoice", "open_bank_account",
                     "bank_name", "establish_date"):
        minimal.pop(optional)
    assert form.validate(minimal) == {}


def test_bad_identifiers_and_phone(form: Form) -> None:
    data = good()
    data["contact_phone"] = "1380013800"
    data["legal_representative"]["id_number"] = flip_check(id_number("31010119900307123"))
    data["filing_agent"]["uscc"] = flip_check(credit_code())
    assert form.validate(data) == {
        "contact_phone": "「联系电话」格式不正确，应为11位大陆手机号",
        "legal_representative.id_number": "「身份证号」不是有效的公民身份号码，请核对出生日期和末位校验码",
        "filing_agent.uscc": "「机构统一社会信用代码」不是有效的统一社会信用代码，请核对末位校验码",
    }


def test_missing_required_nested_fields(form: Form) -> None:
    data = good()
    del data["legal_representative"]["phone"]
    del data["address"]["detail"]
    del data["business_scope"]
    assert form.validate(data) == {
        "legal_representative.phone": "请填写「手机号」",
        "address.detail": "请填写「详细地址」",
        "business_scope": "请填写「经营范围」",
    }


def test_everything_missing(form: Form) -> None:
    errors = form.validate({})
    assert errors == {
        "company_name": "请填写「企业名称」", "company_type": "请填写「企业类型」", "address": "请填写「住所」",
        "registered_capital": "请填写「注册资本（万元）」", "legal_representative": "请填写「法定代表人」",
        "shareholders": "请填写「股东」", "business_scope": "请填写「经营范围」", "contact_phone": "请填写「联系电话」",
    }


def test_wrong_types(form: Form) -> None:
    data = good()
    data.update(company_name=123, registered_capital="100", needs_seal="yes", shareholders={"0": {}},
                legal_representative=["张三"])
    assert form.validate(data) == {
        "company_name": "「企业名称」应为文本",
        "registered_capital": "「注册资本（万元）」应为数字",
        "needs_seal": "「申请刻制公章」应为是/否",
        "shareholders": "「股东」应为列表",
        "legal_representative": "「法定代表人」应为对象",
    }


def test_array_item_errors_carry_the_index(form: Form) -> None:
    data = good()
    data["shareholders"][1]["contribution"] = 10.001
    data["shareholders"][1]["share_ratio"] = 120
    data["shareholders"].append({"name": "李", "id_number": flip_check(id_number())})
    assert form.validate(data) == {
        "shareholders.1.contribution": "「认缴出资额（万元）」最多保留两位小数",
        "shareholders.1.share_ratio": "「持股比例（%）」不能大于 100",
        "shareholders.2.name": "「股东姓名」至少2个字",
        "shareholders.2.id_number": "「股东身份证号」不是有效的公民身份号码，请核对出生日期和末位校验码",
        "shareholders.2.contribution": "请填写「认缴出资额（万元）」",
    }
    data["shareholders"] = []
    assert form.validate(data) == {"shareholders": "「股东」数量应至少为 1"}


def test_choices_extra_fields_and_conditional_requirement(form: Form) -> None:
    data = good()
    data.update(company_type="ltd", industry="mining", nickname="x")
    del data["bank_name"]
    assert form.validate(data) == {
        "company_type": "「企业类型」必须是以下之一：有限责任公司、股份有限公司、个人独资企业、合伙企业",
        "industry": "「所属行业」必须是以下之一：信息技术、零售、餐饮",
        "$": "提交的数据包含不允许的字段：nickname",
        "bank_name": "请填写「开户银行」",
    }
    data = good()
    data["open_bank_account"] = False
    del data["bank_name"]
    assert form.validate(data) == {}


def test_validate_data_resolves_component_refs_from_text_and_dict(form: Form) -> None:
    text = STARTUP_FORM.read_text(encoding="utf-8")
    data = good()
    data["contact_phone"] = "2"
    expected = {"contact_phone": "「联系电话」格式不正确，应为11位大陆手机号"}
    assert validate_data(text, data) == expected
    assert validate_data(json.loads(text), data) == expected
    assert form.validate(data) == expected


def test_validate_data_stays_compatible_with_plain_schemas() -> None:
    schema = {"type": "object", "required": ["accepted", "age"],
              "properties": {"accepted": {"type": "boolean", "title": "是否受理"},
                             "age": {"type": "integer", "title": "年龄", "minimum": 0, "maximum": 150}}}
    assert validate_data(schema, {"accepted": True, "age": 30}) == {}
    assert validate_data(schema, {"accepted": "yes", "age": -1}) == {
        "accepted": "「是否受理」应为是/否", "age": "「年龄」不能小于 0"}
    assert validate_data(schema, {"age": 151}) == {"accepted": "请填写「是否受理」", "age": "「年龄」不能大于 150"}
    untitled = {"type": "object", "required": ["x"], "properties": {"x": {"type": "string"}}}
    assert validate_data(untitled, {}) == {"x": "请填写「x」"}
    assert validate_data(json.dumps(untitled), {"x": 1}) == {"x": "「x」应为文本"}


def test_message_overrides_form_authors_can_give() -> None:
    schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "title": "邮政编码", "pattern": "^\\d{6}$",
                     "x-ui": {"formatMessage": "应为6位数字"}},
            "phone": {"$ref": "components/phone.json", "title": "紧急联系人电话",
                      "x-error": {"pattern": "{title}填写有误，请输入手机号"}},
            "count": {"type": "integer", "minimum": 1, "title": "份数", "x-error": "至少申领1份"},
        },
    }
    assert validate_data(schema, {"code": "12345", "phone": "110", "count": 0}) == {
        "code": "「邮政编码」应为6位数字",
        "phone": "紧急联系人电话填写有误，请输入手机号",
        "count": "「份数」至少申领1份",
    }
    assert validate_data(schema, {"count": "1"}) == {"count": "「份数」应为整数"}  # type keeps its own message


def test_nested_refs_inside_defs_and_multiple_errors_prefer_the_type() -> None:
    schema = {
        "type": "object",
        "$defs": {"person": {"type": "object", "required": ["id"],
                             "properties": {"id": {"$ref": "components/id_number.json", "title": "证件号码"}}}},
        "properties": {"people": {"type": "array", "items": {"$ref": "#/$defs/person"}}},
    }
    errors = validate_data(schema, {"people": [{"id": "1"}, {"id": 5}, {}]})
    assert errors == {"people.0.id": "「证件号码」格式不正确，应为18位公民身份号码（末位为数字或大写X）",
                      "people.1.id": "「证件号码」应为文本", "people.2.id": "请填写「证件号码」"}
