"""Material auto-fill from e-certificates and shared data; what is still missing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from forms import MaterialStatus, missing_required, resolve_materials
from forms.materials import LABEL_BY_CERTIFICATE, LABEL_BY_SHARED_DATA, LABEL_NEEDS_UPLOAD

HUKOU = "11100000000013338W001"
BIRTH = "12100000400000843X002"
MATERIALS = [
    {"name": "户口簿", "required": True, "form": "电子证照",
     "source": {"type": "certificate", "certificate_type": HUKOU}},
    {"name": "出生医学证明", "required": True, "form": "电子证照",
     "source": {"type": "certificate", "certificate_type": BIRTH}},
    {"name": "父母身份信息", "required": True, "source": {"type": "shared_data", "dataset": "population"}},
    {"name": "结婚证复印件", "required": False, "form": "纸质", "source": {"type": "citizen"}},
    {"name": "委托书", "required": True},
]


def cert(type_code: str, identifier: str, state: str = "01", **extra: str) -> dict[str, str]:
    return {"type_code": type_code, "identifier": identifier, "name": "居民户口簿", "state": state, **extra}


def test_a_valid_certificate_satisfies_its_material() -> None:
    statuses = resolve_materials(MATERIALS, [cert(HUKOU, "1.2.156.3005.2.x.y.1.001.K")])
    hukou = statuses[0]
    assert hukou.status == "satisfied" and hukou.satisfied
    assert hukou.label == LABEL_BY_CERTIFICATE == "已由电子证照自动获取（免提交）"
    assert hukou.by_certificate == "1.2.156.3005.2.x.y.1.001.K" and hukou.purpose_bound is True
    assert hukou.certificate_name == "居民户口簿" and hukou.source_type == "certificate"
    birth = statuses[1]
    assert birth.status == "needs_upload" and birth.label == LABEL_NEEDS_UPLOAD == "需上传"
    assert birth.reason == "未找到该类电子证照" and birth.by_certificate is None and not birth.purpose_bound
    assert [s.name for s in statuses] == [m["name"] for m in MATERIALS]


def test_revoked_suspended_or_expired_certificates_do_not_count() -> None:
    for state, word in (("03", "已撤销"), ("02", "已暂停"), ("05", "已过期"), ("04", "已注销")):
        status = resolve_materials(MATERIALS[:1], [cert(HUKOU, "old", state)])[0]
        assert status.status == "needs_upload" and status.reason == f"电子证照{word}，不能使用"
    both = resolve_materials(MATERIALS[:1], [cert(HUKOU, "old", "03"), cert(HUKOU, "new")])[0]
    assert both.satisfied and both.by_certificate == "new"


def test_validity_dates_count_when_today_is_given() -> None:
    expired = cert(HUKOU, "c1", valid_from="2010-01-01", valid_to="2020-01-01")
    assert resolve_materials(MATERIALS[:1], [expired])[0].satisfied  # state alone
    late = resolve_materials(MATERIALS[:1], [expired], today=date(2024, 5, 1))[0]
    assert not late.satisfied and late.reason == "电子证照不在有效期内，不能使用"
    assert resolve_materials(MATERIALS[:1], [expired], today=date(2015, 5, 1))[0].satisfied


def test_shared_data_and_citizen_uploads() -> None:
    statuses = resolve_materials(MATERIALS, [])
    shared = statuses[2]
    assert shared.satisfied and shared.by_shared_data == "population"
    assert shared.label == LABEL_BY_SHARED_DATA == "由共享数据获取" and not shared.purpose_bound
    assert statuses[3].status == "needs_upload" and statuses[3].source_type == "citizen"
    assert statuses[4].required and statuses[4].source_type == "citizen"  # no source: an upload


def test_missing_required() -> None:
    statuses = resolve_materials(MATERIALS, [cert(HUKOU, "c1")])
    assert [s.name for s in missing_required(statuses, [])] == ["出生医学证明", "委托书"]
    assert [s.name for s in missing_required(statuses, ["委托书"])] == ["出生医学证明"]
    assert missing_required(statuses, ["委托书", "出生医学证明", "结婚证复印件"]) == []


def test_objects_and_int_states_work_and_to_dict_is_json() -> None:
    @dataclass
    class Cert:
        type_code: str
        identifier: str
        name: str
        state: int

    @dataclass
    class Material:
        name: str
        required: bool
        source: dict[str, str]

    statuses = resolve_materials([Material("户口簿", True, {"type": "certificate", "certificate_type": HUKOU})],
                                 [Cert(HUKOU, "c9", "户口簿", 1)])
    assert isinstance(statuses[0], MaterialStatus) and statuses[0].by_certificate == "c9"
    data = statuses[0].to_dict()
    assert json.loads(json.dumps(data, ensure_ascii=False))["satisfied"] is True
    assert resolve_materials([], []) == [] and resolve_materials(None, None) == []  # type: ignore[arg-type]
