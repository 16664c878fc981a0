"""Validate submitted form data against a JSON Schema (2020-12) with field paths and Chinese messages."""

from __future__ import annotations

from functools import lru_cache
import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError


def _label(error: ValidationError) -> str:
    title = error.schema.get("title") if isinstance(error.schema, dict) else None
    return f"「{title}」" if title else ""


def _message(error: ValidationError) -> str:
    v, value = error.validator, error.validator_value
    label = _label(error)
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return f"缺少必填项 {missing}".strip()
    if v == "type":
        names = {"string": "文本", "integer": "整数", "number": "数字", "boolean": "是/否",
                 "object": "对象", "array": "列表", "null": "空值"}
        kinds = value if isinstance(value, list) else [value]
        return f"{label}应为{'或'.join(names.get(k, k) for k in kinds)}"
    if v == "minLength":
        return f"{label}至少 {value} 个字符"
    if v == "maxLength":
        return f"{label}最多 {value} 个字符"
    if v == "minimum":
        return f"{label}不能小于 {value}"
    if v == "maximum":
        return f"{label}不能大于 {value}"
    if v == "pattern":
        return f"{label}格式不正确"
    if v == "enum":
        return f"{label}必须是以下之一：{'、'.join(map(str, value))}"
    if v == "const":
        return f"{label}必须为 {value}"
    if v == "format":
        return f"{label}格式不正确"
    if v == "additionalProperties":
        return "包含不允许的字段"
    if v in {"minItems", "maxItems"}:
        return f"{label}数量应{'至少' if v == 'minItems' else '至多'}为 {value}"
    return f"{label}不符合要求"


def _path(error: ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "required" and "'" in error.message:
        parts.append(error.message.split("'")[1])
    return ".".join(parts) or "$"


@lru_cache(maxsize=512)
def _validator(schema_text: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_text))


def validate_data(schema: dict[str, Any] | str, data: Any) -> dict[str, str]:
    """Field path -> Chinese message for every problem; empty when the data is valid."""
    text = schema if isinstance(schema, str) else json.dumps(schema, sort_keys=True)
    errors: dict[str, str] = {}
    for error in sorted(_validator(text).iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        errors.setdefault(_path(error), _message(error))
    return errors


__all__ = ["validate_data"]
