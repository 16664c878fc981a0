"""Validate submitted form data against a JSON Schema (2020-12) with field paths and Chinese messages.

``$ref``s to the shared components resolve through the default registry. Paths are dotted
(``shareholders.0.name``); a missing required field is reported at its own path; problems with
the top level are at ``$``. Validation never raises for any data: what it cannot check becomes
an error at ``$``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonschema.exceptions import ValidationError

from forms.messages import message, missing_property
from forms.registry import CompiledSchema, default_registry, parse_schema
from forms.walk import locate

MAX_ERRORS = 200  # stop collecting: hostile data could carry millions of bad items
UNCHECKABLE = "提交的数据无法校验（层级过深或包含不支持的值）"
# at one path, the most telling problem wins: a wrong type before a missing key before a format
_PRIORITY = {"type": 0, "required": 1, "dependentRequired": 1, "enum": 2, "const": 2, "oneOf": 2,
             "anyOf": 2, "pattern": 3, "format": 4}


def error_path(error: ValidationError) -> list[str | int]:
    """Instance path of ``error``; a missing property's own name is appended."""
    parts: list[str | int] = list(error.absolute_path)
    if error.validator in {"required", "dependentRequired"}:
        missing = missing_property(error)
        if missing is not None:
            parts.append(missing)
    return parts


def dotted(parts: list[str | int]) -> str:
    """``['shareholders', 0, 'name']`` -> ``shareholders.0.name``; the root is ``$``."""
    return ".".join(str(p) for p in parts) or "$"


def _sort_key(item: tuple[list[str | int], ValidationError]) -> tuple[Any, ...]:
    parts, error = item
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in parts) + (
        (2, _PRIORITY.get(str(error.validator), 9), ""),)


def collect_errors(compiled: CompiledSchema, data: Any) -> dict[str, str]:
    """Field path -> Chinese message for every problem of ``data``; empty when valid."""
    found: list[tuple[list[str | int], ValidationError]] = []
    broken = False
    try:
        for error in compiled.validator.iter_errors(data):
            found.append((error_path(error), error))
            if len(found) >= MAX_ERRORS:
                break
    except Exception:  # noqa: BLE001 - recursion, unhashable or non-JSON values: never raise
        broken = True
    errors: dict[str, str] = {}
    try:
        found.sort(key=_sort_key)
        for parts, error in found:
            path = dotted(parts)
            if path not in errors:
                errors[path] = message(error, locate(compiled.root, parts), parts)
    except Exception:  # noqa: BLE001 - same: a message must never turn into a crash
        broken = True
    if broken:
        errors.setdefault("$", UNCHECKABLE)
    return errors


@lru_cache(maxsize=512)
def _compiled(schema_text: str) -> CompiledSchema:
    return default_registry().compile(parse_schema(schema_text))


def validate_data(schema: dict[str, Any] | str, data: Any) -> dict[str, str]:
    """Field path -> Chinese message for every problem; empty when the data is valid.

    ``schema`` is a dict or its JSON text (compiled once per distinct text). A schema that is not
    usable raises ``FormSchemaError`` (a ``ValueError``): that is a model bug, caught by lint.
    """
    text = schema if isinstance(schema, str) else json.dumps(schema, sort_keys=True, ensure_ascii=False)
    return collect_errors(_compiled(text), data)


__all__ = ["MAX_ERRORS", "UNCHECKABLE", "collect_errors", "dotted", "error_path", "validate_data"]
