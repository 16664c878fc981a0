"""The shared components: metadata, and what each accepts and refuses (with its Chinese message)."""

from __future__ import annotations

import json

import pytest

from forms import COMPONENT_BASE, default_registry, validate_data
from forms.registry import COMPONENTS_DIR
from tests.forms.helpers import credit_code, flip_check, id_number

NAMES = ["address", "date", "id_number", "money", "person_name", "phone", "region_code", "uscc"]


def check(component: str, value: object, title: str | None = None) -> dict[str, str]:
    field: dict[str, object] = {"$ref": f"components/{component}.json"}
    if title:
        field["title"] = title
    return validate_data({"type": "object", "properties": {"v": field}}, {"v": value})


def test_every_component_has_id_title_description_and_ui_hints() -> None:
    files = sorted(p.stem for p in COMPONENTS_DIR.glob("*.json"))
    assert set(NAMES) <= set(files)
    for name in files:
        schema = json.loads((COMPONENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == f"{COMPONENT_BASE}{name}.json"
        assert schema["title"] and schema["description"]
        assert schema["x-ui"]["widget"]
        assert default_registry().component(name)["title"] == schema["title"]


@pytest.mark.parametrize("phone", ["13800138000", "19912345678", "15000000000"])
def test_phone_accepts_mainland_mobiles(phone: str) -> None:
    assert check("phone", phone) == {}


@pytest.mark.parametrize("phone", ["12800138000", "1380013800", "138001380000", "+8613800138000",
                                   "13800138000\n", "1380013800０", "١٣800138000", "138 0013 8000", ""])
def test_phone_refuses_anything_else(phone: str) -> None:
    assert check("phone", phone) == {"v": "「手机号」格式不正确，应为11位大陆手机号"}


def test_id_number_check_digit_birth_date_and_shape() -> None:
    valid = id_number("31010119900307123")
    assert check("id_number", valid) == {}
    assert check("id_number", id_number()) == {}  # ends in X
    bad_check = "「身份证号」不是有效的公民身份号码，请核对出生日期和末位校验码"
    assert check("id_number", flip_check(valid)) == {"v": bad_check}
    assert check("id_number", id_number("31010119901307123")) == {"v": bad_check}  # month 13
    shape = "「身份证号」格式不正确，应为18位公民身份号码（末位为数字或大写X）"
    assert check("id_number", id_number().lower()) == {"v": shape}
    assert check("id_number", valid[:-1]) == {"v": shape}
    assert check("id_number", valid + "\n") == {"v": shape}


def test_uscc_check_character() -> None:
    code = credit_code()
    assert check("uscc", code) == {}
    assert check("uscc", credit_code("91110108551385082")) == {}
    assert check("uscc", flip_check(code)) == {"v": "「统一社会信用代码」不是有效的统一社会信用代码，请核对末位校验码"}
    assert check("uscc", code.lower()) == {
        "v": "「统一社会信用代码」格式不正确，应为18位数字或大写字母（不含I、O、Z、S、V）"}


def test_money_is_a_number_with_at_most_two_decimals() -> None:
    for good in (0, 0.07, 0.1, 1234.56, 100, 999999999999.99):
        assert check("money", good) == {}, good
    assert check("money", 0.071) == {"v": "「金额」最多保留两位小数"}
    assert check("money", -0.01) == {"v": "「金额」不能为负数"}
    assert check("money", "100.00") == {"v": "「金额」应为数字"}
    assert check("money", True) == {"v": "「金额」应为数字"}
    assert check("money", float("nan")) == {"v": "「金额」应为数字"}
    assert check("money", float("inf")) == {"v": "「金额」应为数字"}
    assert check("money", 1e13) == {"v": "「金额」金额过大"}


@pytest.mark.parametrize("name", ["张三", "欧阳娜娜", "阿卜杜·热合曼", "John Smith", "Mary-Jane O'Neil", "䶮䶮"])
def test_person_name_accepts_real_names(name: str) -> None:
    assert check("person_name", name, "申请人姓名") == {}


def test_person_name_refusals() -> None:
    assert check("person_name", "张") == {"v": "「姓名」至少2个字"}
    assert check("person_name", "张" * 51) == {"v": "「姓名」最多50个字"}
    bad = "「姓名」格式不正确，应为汉字或拉丁字母（姓名中的间隔号用“·”）"
    for name in ("张3", "·张三", "张三·", "John  Smith", "张三 ", "Zhang三"):
        assert check("person_name", name) == {"v": bad}, name


def test_date_format() -> None:
    assert check("date", "2024-02-29") == {}
    for value in ("2023-02-29", "2024/01/01", "20240101", "2024-1-1", "２０２４-01-01"):
        assert check("date", value, "出生日期") == {"v": "「出生日期」应为有效日期，格式为YYYY-MM-DD"}, value


def test_address_is_region_code_plus_detail() -> None:
    assert check("address", {"region_code": "310101", "detail": "南京东路100号"}) == {}
    assert check("address", {"region_code": "010101", "detail": "路"}, "住所") == {
        "v.region_code": "「所在地区」格式不正确，应为6位行政区划代码",
        "v.detail": "「详细地址」至少 2 个字符",
    }
    assert check("address", {}) == {"v.region_code": "请填写「所在地区」", "v.detail": "请填写「详细地址」"}
    assert check("address", {"region_code": "310101", "detail": "x" * 201})["v.detail"] == "「详细地址」最多 200 个字符"
    assert check("address", "上海") == {"v": "「地址」应为对象"}


def test_region_code() -> None:
    assert check("region_code", "440304") == {}
    assert check("region_code", "44030") == {"v": "「行政区划代码」格式不正确，应为6位行政区划代码"}
