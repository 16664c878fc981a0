"""Material auto-fill: which of a service item's materials the applicant need not upload.

A material whose source is an e-certificate type is satisfied (免提交) by a valid certificate of
that type the applicant holds: the department then uses a purpose-bound copy (加注件). Materials
from shared data are fetched by the back office. Everything else is uploaded by the applicant.
Pure functions over plain dicts (or objects with the same attributes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Iterable, Mapping

SATISFIED = "satisfied"
NEEDS_UPLOAD = "needs_upload"
LABEL_BY_CERTIFICATE = "已由电子证照自动获取（免提交）"
LABEL_BY_SHARED_DATA = "由共享数据获取"
LABEL_NEEDS_UPLOAD = "需上传"
VALID = "01"
STATE_NAMES = {"01": "有效", "02": "已暂停", "03": "已撤销", "04": "已注销", "05": "已过期"}


@dataclass(frozen=True)
class MaterialStatus:
    """One material of a service item and how the applicant provides it."""

    name: str
    required: bool
    status: str  # SATISFIED or NEEDS_UPLOAD
    label: str  # what the applicant reads
    source_type: str  # "certificate", "shared_data" or "citizen"
    form: str | None = None  # 纸质 / 电子证照 / …, as the catalogue says
    certificate_type: str | None = None
    by_certificate: str | None = None  # identifier of the certificate used
    certificate_name: str | None = None
    by_shared_data: str | None = None  # dataset name
    purpose_bound: bool = False  # the department gets a purpose-bound copy (加注件)
    reason: str | None = None  # why a certificate material still needs an upload

    @property
    def satisfied(self) -> bool:
        """Whether the applicant need not upload it."""
        return self.status == SATISFIED

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with ``satisfied`` spelled out."""
        return {**asdict(self), "satisfied": self.satisfied}


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)


def _state(value: Any) -> str:
    text = str(value if value is not None else "").strip()
    return text.zfill(2) if text.isdigit() else text


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _usable(cert: Any, today: date | None) -> bool:
    if _state(_get(cert, "state")) != VALID:
        return False
    if today is None:
        return True
    end = _as_date(_get(cert, "valid_to") or _get(cert, "valid_until"))
    start = _as_date(_get(cert, "valid_from"))
    return (end is None or today <= end) and (start is None or start <= today)


def _not_usable_reason(type_code: str, certificates: list[Any]) -> str:
    held = [c for c in certificates if _get(c, "type_code") == type_code]
    if not held:
        return "未找到该类电子证照"
    states = {_state(_get(c, "state")) for c in held}
    if VALID in states:
        return "电子证照不在有效期内，不能使用"
    state = sorted(states)[0]
    return f"电子证照{STATE_NAMES.get(state, '状态无效')}，不能使用"


def _resolve_one(material: Any, certificates: list[Any], today: date | None) -> MaterialStatus:
    source = _get(material, "source")
    kind = str(_get(source, "type") or "citizen") if source is not None else "citizen"
    required = _get(material, "required")
    base = {"name": str(_get(material, "name") or ""), "form": _get(material, "form"),
            "required": True if required is None else bool(required)}
    if kind == "certificate":
        type_code = str(_get(source, "certificate_type") or "")
        cert = next((c for c in certificates if type_code and _get(c, "type_code") == type_code
                     and _usable(c, today)), None)
        if cert is not None:
            return MaterialStatus(**base, status=SATISFIED, label=LABEL_BY_CERTIFICATE, source_type=kind,
                                  certificate_type=type_code, by_certificate=str(_get(cert, "identifier")),
                                  certificate_name=_get(cert, "name"), purpose_bound=True)
        return MaterialStatus(**base, status=NEEDS_UPLOAD, label=LABEL_NEEDS_UPLOAD, source_type=kind,
                              certificate_type=type_code or None,
                              reason=_not_usable_reason(type_code, certificates))
    if kind == "shared_data":
        return MaterialStatus(**base, status=SATISFIED, label=LABEL_BY_SHARED_DATA, source_type=kind,
                              by_shared_data=str(_get(source, "dataset") or ""))
    return MaterialStatus(**base, status=NEEDS_UPLOAD, label=LABEL_NEEDS_UPLOAD, source_type="citizen")


def resolve_materials(materials: Iterable[Any], available_certificates: Iterable[Any],
                      today: date | None = None) -> list[MaterialStatus]:
    """The status of each material, in the catalogue's order.

    A certificate counts only in state ``01`` (and, when ``today`` is given, inside its
    ``valid_from``/``valid_to``); the first usable one of the type is used. A material without
    ``required`` is taken as required; one without a source is a citizen upload.
    """
    certificates = list(available_certificates or [])
    return [_resolve_one(m, certificates, today) for m in materials or []]


def missing_required(statuses: Iterable[MaterialStatus],
                     uploaded_names: Iterable[str]) -> list[MaterialStatus]:
    """Required materials neither satisfied automatically nor among ``uploaded_names``."""
    uploaded = set(uploaded_names or [])
    return [s for s in statuses if s.required and not s.satisfied and s.name not in uploaded]


__all__ = ["LABEL_BY_CERTIFICATE", "LABEL_BY_SHARED_DATA", "LABEL_NEEDS_UPLOAD", "MaterialStatus",
           "NEEDS_UPLOAD", "SATISFIED", "STATE_NAMES", "missing_required", "resolve_materials"]
