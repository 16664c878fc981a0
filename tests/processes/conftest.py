"""Shared fixtures and helpers for the end-to-end tests of the service processes in ``processes/``.

Cases start through ``ApplicationService`` exactly as the mobile API and the window do; after each
wait state a test reloads the stored case and checks that it round-trips (``assert_round_trip``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from engine.accountability.privacy import PiiKeys
from engine.citizen.applications import Applicant, ApplicationService
from engine.citizen.catalog import Catalog
from engine.kernel.cases import CaseEngine, current_data
from engine.kernel.connectors import ConnectorContext
from engine.kernel.sla import CST

# Demo people (processes/demo/README.md): real names and GB 11643-valid numbers of the demo data.
MOTHER = Applicant(id_number="310112199504121645", name="刘婷", openid="openid-liuting", phone="18621034567")
FATHER = Applicant(id_number="32010219930908143X", name="周杰", openid="openid-zhoujie", phone="18817765432")
SINGLE_MOTHER = Applicant(id_number="440106199802142083", name="黄丽", openid="openid-huangli", phone="15013579246")
LOCAL_40 = Applicant(id_number="310110198606200486", name="李娜", openid="openid-lina", phone="13917724680")

# E-certificate type codes (processes/certificate_types.yaml)
HOUSEHOLD_REGISTER = "11310000996137268Q001"  # 居民户口簿
ID_CARD = "11310000996137268Q002"  # 居民身份证
RESIDENCE_PERMIT = "11310000996137268Q003"  # 居住证
BIRTH_CERTIFICATE = "113100008114921840001"  # 出生医学证明
SOCIAL_SECURITY_CARD = "11310000154552553F001"  # 社会保障卡
MEDICAL_INSURANCE = "11310000068181311Y001"  # 医疗保险参保凭证


class Clock:
    """An injected engine clock (``build_engine(settings, deps_overrides={"clock": clock})``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def cst(*args: int) -> datetime:
    return datetime(*args, tzinfo=CST)


@pytest.fixture
def catalog(settings) -> Catalog:  # noqa: ANN001 - engine.config.Settings
    return Catalog.load(settings.PROCESSES_DIR)


def application_service(engine: CaseEngine, settings: Any) -> ApplicationService:
    """The application service over the real catalogue, with the settings' blind-index key."""
    return ApplicationService(engine, Catalog.load(settings.PROCESSES_DIR),
                              pii_key=PiiKeys.from_settings(settings).blind_index_key)


@pytest.fixture
def applications(engine: CaseEngine, settings) -> ApplicationService:  # noqa: ANN001
    return application_service(engine, settings)


async def assert_round_trip(engine: CaseEngine, case_id: int) -> dict[str, Any]:
    """Reload the stored case, check that dumping it again reproduces the stored state, and
    return the data of the task now waiting (or of the finished workflow)."""
    case, workflow, _ = await engine.load(case_id)
    assert engine.deps.serializer.dump(workflow) == case.state
    return current_data(workflow)


async def issue_certificate(engine: CaseEngine, type_code: str, holder: Applicant,
                            data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Issue and store an e-certificate for ``holder`` outside any case (as earlier services did),
    through the same ``certificate.issue`` connector and record writer the processes use."""
    context = ConnectorContext(case_no="", service="test", actor="test", purpose="测试预置证照")
    issued = engine.deps.connectors.call("certificate.issue", {
        "type_code": type_code, "holder_name": holder.name, "holder_code": holder.id_number,
        "holder_code_type": "111", "data": data or {}}, context)
    for kind, payload in context.records:
        await engine.deps.record_writers[kind](None, None, payload)  # type: ignore[arg-type]
    return issued
