"""Hostile input: the validator returns errors and never raises, whatever it is given."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from forms import load_form, validate_data
from forms.validation import MAX_ERRORS, UNCHECKABLE
from tests.forms.helpers import STARTUP_FORM, good

FORM = load_form(STARTUP_FORM)
RECURSIVE = {"type": "object", "properties": {"name": {"type": "string"}, "child": {"$ref": "#"}}}


def nested(depth: int, leaf: Any = None) -> Any:
    data = leaf
    for _ in range(depth):
        data = {"child": data}
    return data


def assert_errors(errors: Any) -> None:
    assert isinstance(errors, dict) and errors
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in errors.items())


@pytest.mark.parametrize("data", [None, [], [good()], "企业", 1, 1.5, True, b"{}", object()])
def test_non_object_top_level(data: Any) -> None:
    assert FORM.validate(data) == {"$": "提交的数据应为对象"}


def test_deeply_nested_data() -> None:
    deep = nested(100_000)
    errors = FORM.validate({**good(), "address": deep, "filing_agent": deep, "extra": deep})
    assert errors["address"] == "「住所」包含不允许的字段：child"
    assert_errors(errors)
    assert_errors(validate_data(RECURSIVE, nested(50_000, leaf=1)))
    assert validate_data(RECURSIVE, nested(50_000, leaf={}))["$"] == UNCHECKABLE
    assert validate_data(RECURSIVE, nested(20, leaf={"name": 3})) == {
        ".".join(["child"] * 20 + ["name"]): "「name」应为文本"}
    chain = [[]]
    for _ in range(50_000):
        chain = [chain]
    assert_errors(FORM.validate({**good(), "shareholders": chain, "industry": chain}))


def test_huge_strings_fail_fast() -> None:
    huge = "1" * 5_000_000
    data = good()
    data.update(contact_phone=huge, company_name=huge, business_scope="经" * 2_000_001, bank_name=huge)
    data["legal_representative"].update(id_number=huge, name="张" * 1_000_000)
    data["address"]["detail"] = huge
    started = time.monotonic()
    errors = FORM.validate(data)
    assert time.monotonic() - started < 20  # a hang guard, not a speed assertion
    assert errors["contact_phone"] == "「联系电话」格式不正确，应为11位大陆手机号"
    assert errors["company_name"] == "「企业名称」最多 100 个字符"
    assert errors["legal_representative.name"] == "「法定代表人姓名」最多50个字"
    assert errors["legal_representative.id_number"].startswith("「身份证号」")
    assert errors["address.detail"] == "「详细地址」最多 200 个字符"


def test_wrong_types_everywhere() -> None:
    for value in (None, 0, -1, 1e308, float("nan"), float("inf"), True, "", "x", [], {}, [None], {"a": None}):
        data = {key: value for key in FORM.schema["properties"]}
        errors = FORM.validate(data)
        assert_errors(errors)
        assert "company_name" in errors and any(k.startswith("shareholders") for k in errors)


def test_non_json_values_and_keys() -> None:
    odd = [{1: "x"}, {(1, 2): "y"}, {None: 1}, {1.5, 2}, (1, 2), b"bytes", bytearray(b"x"), object(),
           lambda: 1, Ellipsis, complex(1, 2), range(3), {"k": {1, 2}}]
    for value in odd:
        data = good()
        data["shareholders"] = [value]
        data["filing_agent"] = value
        assert_errors(FORM.validate(data))
        strict = {"type": "object", "patternProperties": {"^a": {"type": "string"}}, "additionalProperties": False}
        assert_errors(validate_data(strict, value if isinstance(value, dict) else {2: value}))


def test_many_errors_are_capped() -> None:
    data = good()
    data["shareholders"] = [{"name": i} for i in range(100_000)]
    errors = FORM.validate(data)
    assert 0 < len(errors) <= MAX_ERRORS


def test_random_junk_never_raises() -> None:
    rng = random.Random(20240501)
    atoms: list[Any] = [None, True, False, 0, -7, 3.14, 1e300, float("nan"), "", "13800138000", "张三",
                        "\x00\ud800", "a" * 1000, "310101", "2024-02-30"]

    def junk(depth: int) -> Any:
        roll = rng.random()
        if depth > 6 or roll < 0.4:
            return rng.choice(atoms)
        if roll < 0.7:
            return [junk(depth + 1) for _ in range(rng.randint(0, 4))]
        keys = list(FORM.schema["properties"]) + ["name", "id_number", "detail", "region_code", "x"]
        return {rng.choice(keys): junk(depth + 1) for _ in range(rng.randint(0, 6))}

    for _ in range(400):
        data = junk(0)
        if isinstance(data, dict) and rng.random() < 0.5:
            data = {**good(), **data}
        errors = FORM.validate(data)
        assert isinstance(errors, dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in errors.items())
