"""Chinese messages for validation errors, phrased with the field's own title.

Overrides, first found wins, from the field as the service form wrote it down to the component:
``x-error`` (a string for any failure but type/required, or ``{keyword: message}``) and
``x-ui.formatMessage`` (pattern and format failures). A message may hold ``{title}``; otherwise
it follows the label, as in ``「手机号」格式不正确，应为11位大陆手机号``.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from jsonschema.exceptions import ValidationError

from forms.walk import Node, first

TYPE_NAMES = {"string": "文本", "integer": "整数", "number": "数字", "boolean": "是/否",
              "object": "对象", "array": "列表", "null": "空值"}
FORMAT_HINTS = {
    "date": "应为有效日期，格式为YYYY-MM-DD", "date-time": "应为有效的日期时间",
    "time": "应为有效的时间", "email": "应为有效的电子邮箱地址",
    "gb11643": "不是有效的公民身份号码", "uscc": "不是有效的统一社会信用代码",
}
ROOT_LABEL = "提交的数据"


def missing_property(error: ValidationError) -> str | None:
    """The property a ``required`` / ``dependentRequired`` error is about."""
    names = error.validator_value if isinstance(error.validator_value, list) else []
    if error.validator == "dependentRequired" and isinstance(error.validator_value, dict):
        names = [n for group in error.validator_value.values() if isinstance(group, list) for n in group]
    for name in names:
        if isinstance(name, str) and error.message.startswith(f"{name!r} is a"):
            return name
    return None


def label(nodes: Sequence[Node], path: Sequence[str | int]) -> str:
    """「title」 of the field at ``path``: its title, else its name; the root is 提交的数据."""
    if not path:
        return ROOT_LABEL
    title = first(nodes, "title")
    if not isinstance(title, str) or not title.strip():
        names = [p for p in path if isinstance(p, str)]
        title = names[-1] if names else "列表项"
    return f"「{_short(title)}」"


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _override(error: ValidationError, nodes: Sequence[Node]) -> str | None:
    keyword = error.validator
    schemas = [n.schema for n in nodes]
    if isinstance(error.schema, dict) and all(s is not error.schema for s in schemas):
        schemas.append(error.schema)
    for schema in schemas:
        if not isinstance(schema, dict):
            continue
        custom = schema.get("x-error")
        if isinstance(custom, dict) and isinstance(custom.get(keyword), str):
            return custom[keyword]
        if isinstance(custom, str) and keyword not in {"type", "required", "dependentRequired"}:
            return custom
        hints = schema.get("x-ui")
        if isinstance(hints, dict) and isinstance(hints.get("formatMessage"), str) \
                and keyword in {"format", "pattern"}:
            return hints["formatMessage"]
    return None


def _choices(error: ValidationError, nodes: Sequence[Node]) -> str:
    values = error.validator_value if isinstance(error.validator_value, list) else []
    names = first(nodes, "x-ui")
    names = names.get("enumNames") if isinstance(names, dict) else None
    if isinstance(names, list) and len(names) == len(values):
        return "、".join(map(str, names))
    return "、".join(map(str, values))


def _const_options(value: Any) -> list[str] | None:
    """Titles (or values) of a oneOf/anyOf made of ``const`` branches, else None."""
    if not isinstance(value, list) or not value:
        return None
    out = []
    for branch in value:
        if not isinstance(branch, dict) or "const" not in branch:
            return None
        out.append(str(branch.get("title", branch["const"])))
    return out


def _extra_names(error: ValidationError) -> str:
    instance, schema = error.instance, error.schema if isinstance(error.schema, dict) else {}
    if not isinstance(instance, dict):
        return ""
    known = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    patterns = schema.get("patternProperties") if isinstance(schema.get("patternProperties"), dict) else {}
    extra = []
    for key in instance:
        if key in known or (isinstance(key, str) and any(_matches(p, key) for p in patterns)):
            continue
        extra.append(_short(str(key), 20))
        if len(extra) > 5:
            return "：" + "、".join(extra[:5]) + " 等"
    return "：" + "、".join(extra) if extra else ""


def _matches(pattern: str, key: str) -> bool:
    try:
        return re.search(pattern, key) is not None
    except re.error:
        return False


def message(error: ValidationError, nodes: Sequence[Node], path: Sequence[str | int]) -> str:
    """The Chinese message for ``error``; ``nodes`` are the schemas at ``path`` (the field)."""
    v, value = error.validator, error.validator_value
    name = label(nodes, path)
    custom = _override(error, nodes)
    if custom is not None:
        return custom.replace("{title}", name.strip("「」")) if "{title}" in custom else name + custom
    if v in {"required", "dependentRequired"}:
        return f"请填写{name}"
    if v == "type":
        kinds = value if isinstance(value, list) else [value]
        return f"{name}应为{'或'.join(TYPE_NAMES.get(k, str(k)) for k in kinds)}"
    simple = {
        "minLength": f"至少 {value} 个字符", "maxLength": f"最多 {value} 个字符",
        "minimum": f"不能小于 {value}", "maximum": f"不能大于 {value}",
        "exclusiveMinimum": f"必须大于 {value}", "exclusiveMaximum": f"必须小于 {value}",
        "pattern": "格式不正确", "const": f"必须为 {value}",
        "minItems": f"数量应至少为 {value}", "maxItems": f"数量应至多为 {value}",
        "uniqueItems": "不能有重复项", "minProperties": f"至少填写 {value} 项",
        "maxProperties": f"至多填写 {value} 项", "contains": "缺少符合要求的项",
    }
    if v in simple:
        return name + simple[v]
    if v == "enum":
        return f"{name}必须是以下之一：{_choices(error, nodes)}"
    if v == "multipleOf":
        return f"{name}最多保留两位小数" if value == 0.01 else f"{name}应为 {value} 的整数倍"
    if v == "format":
        hint = FORMAT_HINTS.get(str(value))
        return f"{name}格式不正确" + (f"，{hint}" if hint else "")
    if v in {"additionalProperties", "unevaluatedProperties"}:
        return f"{name}包含不允许的字段{_extra_names(error)}"
    if v in {"oneOf", "anyOf"}:
        options = _const_options(value)
        if options:
            return f"{name}必须是以下之一：{'、'.join(options)}"
    if v is None:  # a false schema
        return f"{name}不允许填写"
    return f"{name}不符合要求"


__all__ = ["FORMAT_HINTS", "ROOT_LABEL", "TYPE_NAMES", "label", "message", "missing_property"]
