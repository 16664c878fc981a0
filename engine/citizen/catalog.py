"""The service catalogue (政务服务事项): one versioned item per folder of ``processes/``.

Every channel (mobile, window, web) reads the same item and starts the same process version.
``item.yaml`` carries the national item fields; its schema is ``ITEM_SCHEMA``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from engine.errors import ModelError, NotFound

ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["slug", "version", "name", "basic_code", "implementation_code", "department", "type",
                 "legal_limit", "promised_limit", "visits", "channels", "fees", "legal_basis", "materials",
                 "form"],
    "properties": {
        "slug": {"type": "string", "pattern": "^[a-z][a-z0-9-]{1,40}$"},
        "version": {"type": "string", "minLength": 1},
        "name": {"type": "string", "minLength": 2},
        "basic_code": {"type": "string", "minLength": 4},
        "implementation_code": {"type": "string", "minLength": 4},
        "department": {"type": "string"},
        "type": {"enum": ["即办件", "承诺件"]},
        "legal_limit": {"$ref": "#/$defs/limit"},
        "promised_limit": {"$ref": "#/$defs/limit"},
        "visits": {"type": "integer", "minimum": 0},
        "channels": {"type": "array", "items": {"enum": ["mobile", "window", "web"]}, "minItems": 1},
        "fees": {"type": "string"},
        "legal_basis": {"type": "array", "items": {"type": "string"}},
        "real_name_level": {"type": "integer", "minimum": 0, "maximum": 3},
        "form": {"type": "string"},
        "process": {"type": "string"},
        "result_certificate": {"type": ["string", "null"]},
        "summary": {"type": "string"},
        "platform": {"type": "boolean"},
        "materials": {"type": "array", "items": {
            "type": "object", "required": ["name", "required", "form", "source"],
            "properties": {
                "name": {"type": "string"}, "required": {"type": "boolean"}, "form": {"type": "string"},
                # 容缺受理: the application may go in without it; the officer asks for it by 补正
                "may_follow": {"type": "boolean"},
                "source": {"type": "object", "required": ["type"], "properties": {
                    "type": {"enum": ["citizen", "certificate", "shared_data"]},
                    "certificate_type": {"type": "string"}, "dataset": {"type": "string"}}},
            }}},
    },
    "$defs": {"limit": {"type": "object", "required": ["value", "unit"], "properties": {
        "value": {"type": "integer", "minimum": 0}, "unit": {"const": "工作日"}}}},
}
_ITEM_VALIDATOR = Draft202012Validator(ITEM_SCHEMA)


@dataclass
class ServiceItem:
    slug: str
    version: str
    name: str
    department: str
    type: str
    folder: Path
    raw: dict[str, Any] = field(repr=False)

    @property
    def promised_days(self) -> int:
        return int(self.raw["promised_limit"]["value"])

    @property
    def sla_working_days(self) -> int | None:
        """The promise that drives the SLA clock; 即办件 are done on the spot and have none."""
        return self.promised_days or None if self.type == "承诺件" else None

    @property
    def materials(self) -> list[dict[str, Any]]:
        return list(self.raw.get("materials") or [])

    @property
    def form_path(self) -> Path:
        return self.folder / self.raw["form"]

    @property
    def real_name_level(self) -> int:
        return int(self.raw.get("real_name_level", 0))

    @property
    def platform(self) -> bool:
        """Platform processes (e.g. bad-review rectification) are not offered to citizens."""
        return bool(self.raw.get("platform", False))

    def public_view(self) -> dict[str, Any]:
        keys = ("slug", "version", "name", "basic_code", "implementation_code", "department", "type",
                "legal_limit", "promised_limit", "visits", "channels", "fees", "legal_basis", "summary",
                "result_certificate", "real_name_level")
        return {k: self.raw.get(k) for k in keys if k in self.raw} | {"materials": self.materials}


def load_item(folder: Path) -> ServiceItem:
    path = folder / "item.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ModelError(f"{path}: cannot read item ({exc})") from None
    problems = sorted(_ITEM_VALIDATOR.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if problems:
        first = problems[0]
        where = ".".join(map(str, first.absolute_path)) or "$"
        raise ModelError(f"{path}: {where}: {first.message}")
    if raw["slug"] != folder.name:
        raise ModelError(f"{path}: slug {raw['slug']!r} must equal the folder name {folder.name!r}")
    if not (folder / raw["form"]).is_file():
        raise ModelError(f"{path}: form {raw['form']} not found")
    return ServiceItem(slug=raw["slug"], version=str(raw["version"]), name=raw["name"],
                       department=raw["department"], type=raw["type"], folder=folder, raw=raw)


class Catalog:
    """All service items under a processes folder, by slug."""

    def __init__(self, items: dict[str, ServiceItem]) -> None:
        self._items = items

    @classmethod
    def load(cls, processes_dir: Path) -> "Catalog":
        items = {}
        for folder in sorted(p for p in processes_dir.iterdir() if (p / "item.yaml").is_file()):
            item = load_item(folder)
            items[item.slug] = item
        return cls(items)

    def get(self, slug: str) -> ServiceItem:
        item = self._items.get(slug)
        if item is None:
            raise NotFound(f"服务事项 {slug} 不存在")
        return item

    def items(self, *, include_platform: bool = False) -> list[ServiceItem]:
        return [i for i in self._items.values() if include_platform or not i.platform]

    def __contains__(self, slug: object) -> bool:
        return slug in self._items


__all__ = ["Catalog", "ServiceItem", "ITEM_SCHEMA", "load_item"]
