"""The notification catalogue: ``processes/notifications.yaml`` read into ``EventSpec``s, and the
rendering of a message's title, body, WeChat ``data`` and SMS parameters from its fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CITIZEN, STAFF = "citizen", "staff"
WECHAT_THING_CHARS = 20  # thing.DATA: at most 20 characters (WeChat's keyword rules)
WECHAT_LIMITS = {"thing": 20, "character_string": 32, "phrase": 5, "name": 10, "number": 32, "letter": 32,
                 "symbol": 5, "amount": 32, "time": 32, "date": 32, "phone_number": 17, "car_number": 8}


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def fill(template: str, fields: dict[str, Any]) -> str:
    """``template`` with its ``{field}`` names filled; a missing field is left empty."""
    return template.format_map(_Blank({k: "" if v is None else v for k, v in fields.items()})).strip()


@dataclass(frozen=True)
class WeChatTemplate:
    template_id: str
    page: str = ""
    data: dict[str, str] = field(default_factory=dict)  # keyword -> field name

    def render(self, fields: dict[str, Any]) -> dict[str, dict[str, str]]:
        """The ``data`` of ``subscribe/send``: ``{keyword: {"value": ...}}`` within WeChat's limits."""
        out = {}
        for keyword, name in self.data.items():
            value = str(fields.get(name) or "-")
            kind = keyword.rstrip("0123456789")
            limit = WECHAT_LIMITS.get(kind, WECHAT_THING_CHARS)
            if len(value) > limit:
                value = value[: limit - 1] + "…" if kind == "thing" else value[:limit]
            out[keyword] = {"value": value}
        return out


@dataclass(frozen=True)
class SmsTemplate:
    template_id: str
    params: tuple[str, ...] = ()

    def render(self, fields: dict[str, Any]) -> list[str]:
        """The ``TemplateParamSet``: each parameter at most 12 characters (the mainland rule for variables)."""
        return [str(fields.get(name) or "-")[:12] for name in self.params]


@dataclass(frozen=True)
class EventSpec:
    event: str
    to: str  # applicant | staff
    title: str
    body: str
    wechat: WeChatTemplate | None = None
    sms: SmsTemplate | None = None
    label: str = ""  # the subscribe choice's text (default: the title)

    @property
    def recipient_kind(self) -> str:
        return CITIZEN if self.to == "applicant" else STAFF


@dataclass
class NotificationCatalog:
    events: dict[str, EventSpec] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "NotificationCatalog":
        if not path.exists():
            return cls()
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        events = {}
        for name, spec in (raw.get("events") or {}).items():
            wechat = spec.get("wechat")
            sms = spec.get("sms")
            events[name] = EventSpec(
                event=name, to=str(spec.get("to") or "applicant"), title=str(spec["title"]), body=str(spec["body"]),
                label=str(spec.get("label") or spec["title"]),
                wechat=WeChatTemplate(str(wechat["template_id"]), str(wechat.get("page") or ""),
                                      {str(k): str(v) for k, v in (wechat.get("data") or {}).items()})
                if wechat else None,
                sms=SmsTemplate(str(sms["template_id"]), tuple(str(p) for p in sms.get("params") or ()))
                if sms else None)
        return cls(events)

    def get(self, event: str) -> EventSpec | None:
        return self.events.get(event)

    def by_template(self, template_id: str) -> EventSpec | None:
        return next((e for e in self.events.values() if e.wechat and e.wechat.template_id == template_id), None)

    def citizen_templates(self) -> list[EventSpec]:
        return [e for e in self.events.values() if e.recipient_kind == CITIZEN and e.wechat]


__all__ = ["CITIZEN", "STAFF", "EventSpec", "NotificationCatalog", "SmsTemplate", "WeChatTemplate", "fill"]
