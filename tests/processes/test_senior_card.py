"""老年人优待证 (processes/senior-card) end to end: 秒批 from the population registry, the officer
path when the rules cannot decide, and the signed e-certificate as the result.

Cases start through ``ApplicationService`` with demo people (processes/demo/README.md); after every
wait state the stored case is reloaded and must round-trip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from engine.accountability.privacy import PiiKeys, blind_index, decrypt
from engine.certificates.signing import verify_certificate
from engine.certificates.store import signed_from_row
from engine.citizen.applications import Applicant, ApplicationService
from engine.errors import ValidationFailed
from engine.kernel.cases import CaseEngine
from engine.store.certificate_models import Certificate, CertificateUse
from engine.store.db import db_connection
from engine.store.models import Case, CaseEvent, HumanTask
from engine.store.shared_models import DataAccessLog
from tests.processes.conftest import ID_CARD, Clock, assert_round_trip, cst, issue_certificate

SENIOR_CARD = "11310000612852669L001"  # 老年人优待证
NOW = cst(2026, 11, 30, 10, 0)  # a Monday; ages as in processes/demo/README.md (demo today 2026-11-29)

WANG = Applicant(id_number="310104196103150273", name="王建国", openid="openid-wangjianguo", phone="13816612345")
LI = Applicant(id_number="310110198606200486", name="李娜", openid="openid-lina", phone="13917724680")
ZHANG = Applicant(id_number="110101195605100718", name="张卫东", openid="openid-zhangweidong", phone="13601015566")
CHEN = Applicant(id_number="310106196612050927", name="陈美华", openid="openid-chenmeihua", phone="13764418899")
SUN = Applicant(id_number="310109196611291162", name="孙秀英", openid="openid-sunxiuying")
UNKNOWN = Applicant(id_number="310101198001010034", name="钱文华", openid="openid-qianwenhua", phone="13512345678")

FORM = {"phone": "13816612345", "address": {"region_code": "310104", "detail": "漕溪北路88弄3号602室"},
        "delivery": "mail"}


@pytest.fixture
def clock(engine: CaseEngine) -> Clock:
    """Pin the engine clock (ages, certificate dates, SLA) to a known day."""
    pinned = Clock(NOW)
    engine.deps.clock = pinned
    return pinned


@pytest.fixture
def pii(settings: Any) -> PiiKeys:
    return PiiKeys.from_settings(settings)


async def apply(applications: ApplicationService, who: Applicant, form: dict | None = None) -> Any:
    return await applications.apply("senior-card", form or {**FORM, "phone": who.phone or "13800138000"},
                                    applicant=who)


async def certificates_table() -> list[dict[str, Any]]:
    """Every row of the certificates table as the database returns it (no ORM decoding)."""
    return await db_connection().execute_query_dict("SELECT * FROM certificates")


async def assert_valid_certificate(engine: CaseEngine, pii: PiiKeys, case_id: int, holder: Applicant) -> Certificate:
    [row] = await Certificate.filter(case_id=case_id)
    assert (row.type_code, row.name, row.state) == (SENIOR_CARD, "老年人优待证", "01")
    assert (row.holder_name, row.holder_code_type, row.issuer_name) == (holder.name, "111", "上海市民政局")
    assert row.holder_code_masked == holder.id_number[:3] + "*" * 11 + holder.id_number[-4:]
    assert row.holder_code_hash == blind_index(holder.id_number, pii.blind_index_key)
    holder_code = decrypt(row.holder_code_enc, pii.encryption_key, context=b"certificate.holder_code")
    assert holder_code == holder.id_number
    assert verify_certificate(signed_from_row(row, holder_code), engine.deps.keyring.verifier())
    tampered = signed_from_row(row, holder_code)
    tampered.data.holder_name = "冒名"
    assert not verify_certificate(tampered, engine.deps.keyring.verifier())
    # the holder's ID number is nowhere in clear in the certificates table
    assert holder.id_number not in json.dumps(await certificates_table(), ensure_ascii=False, default=str)
    return row


async def test_local_65_is_approved_in_seconds_with_a_signed_certificate(
        engine: CaseEngine, applications: ApplicationService, clock: Clock, pii: PiiKeys) -> None:
    id_card = await issue_certificate(engine, ID_CARD, WANG)  # 居民身份证 e-certificate: material 免提交
    started = await apply(applications, WANG)
    assert started.status == "completed" and started.ready_tasks == []

    data = await assert_round_trip(engine, started.id)
    decision = data["decision"]
    assert decision == {"outcome": "approve", "rule": "rule_local_60",
                        "reason": "申请人年满60周岁且为本市户籍，符合申领条件，自动准予",
                        "inputs": {"found": True, "age": 65, "local": True}, "table": "senior_card_decision"}
    assert WANG.id_number not in json.dumps(decision, ensure_ascii=False)
    assert not {"decision_outcome", "decision_rule", "decision_reason", "decision_inputs"} & set(data)
    result = data["result"]
    assert (result["outcome"], result["decided_by"], result["reason"]) == ("approved", "auto", decision["reason"])

    row = await assert_valid_certificate(engine, pii, started.id, WANG)
    assert result["certificate"]["identifier"] == row.identifier == data["certificate"]["identifier"]
    assert row.issue_date.isoformat() == "2026-11-30" and row.valid_to is None
    assert row.data["extra"] == {"gender": "男", "birth_date": "1961-03-15", "household_region": "310104",
                                 "delivery": "mail"}

    case = await Case.get(id=started.id)
    assert case.status == "completed" and case.due_at is None  # 即办件: no SLA clock
    assert await HumanTask.filter(case_id=started.id).count() == 0

    # the ID card material was satisfied by the e-certificate: a purpose-bound use was logged
    material = next(m for m in data["materials"] if m["name"] == "居民身份证")
    assert material["satisfied"] and material["by_certificate"] == id_card["identifier"]
    [use] = await CertificateUse.filter(case_no=started.case_no)
    assert use.department == "mca" and "老年人优待证" in use.reason

    # the population read is logged with the case, purpose and a masked subject only
    [log] = await DataAccessLog.filter(case_id=started.id, dataset="population")
    assert (log.dataset, log.case_no, log.department) == ("population", started.case_no, "mca")
    assert log.subject_masked == "310***********0273"
    assert log.subject_hash == blind_index(WANG.id_number, pii.blind_index_key)
    assert log.purpose == "核验老年人优待证申请人的年龄和户籍" and "birth_date" in log.fields_read

    # … and the ID card certificate's use shows in its holder's access log with the department
    [used] = await DataAccessLog.filter(case_id=started.id, dataset="certificate")
    assert (used.department, used.subject_hash) == ("mca", log.subject_hash) and "老年人优待证" in used.purpose

    # the audit chain holds the start, the read, the decision, the use, the issue and the end
    from engine.accountability import audit
    from engine.store.audit_models import AuditRecord

    kinds = [r.kind for r in await AuditRecord.filter(case_no=started.case_no).order_by("seq")]
    assert kinds[0] == "case.start" and kinds.count("decision") == 1 and "certificate.issue" in kinds
    assert {"pii.read", "certificate.use", "case.complete"} <= set(kinds)
    decision = await AuditRecord.get(case_no=started.case_no, kind="decision")
    assert '"outcome":"approve"' in decision.detail
    assert (await audit.verify()).ok

    steps = [(e.kind, e.task_name) for e in await CaseEvent.filter(case_id=started.id).order_by("id")]
    assert ("step_done", "人口库核验") in steps and ("step_done", "秒批规则判定") in steps
    assert ("step_done", "签发老年人优待证") in steps and steps[-1] == ("case_completed", None)


async def test_under_60_is_rejected_with_the_chinese_reason(
        engine: CaseEngine, applications: ApplicationService, clock: Clock) -> None:
    started = await apply(applications, LI)
    assert started.status == "completed" and started.ready_tasks == []
    data = await assert_round_trip(engine, started.id)
    assert data["decision"]["outcome"] == "reject" and data["decision"]["rule"] == "rule_under_60"
    assert data["decision"]["inputs"] == {"found": True, "age": 40, "local": True}
    assert data["result"] == {"outcome": "rejected", "decided_by": "auto",
                              "reason": "申请人未满60周岁，不符合老年人优待证申领条件"}
    assert "certificate" not in data
    assert await Certificate.filter(case_id=started.id).count() == 0
    assert (await Case.get(id=started.id)).due_at is None
    [log] = await DataAccessLog.filter(case_id=started.id)
    assert log.subject_masked == "310***********0486"


@pytest.mark.parametrize(("who", "outcome", "rule", "age", "local"), [
    (SUN, "approve", "rule_local_60", 60, True),      # 60th birthday the day before
    (CHEN, "reject", "rule_under_60", 59, True),      # 60 on 2026-12-05
    (ZHANG, "manual", "rule_nonlocal_60", 70, False),  # Beijing household registration
    (UNKNOWN, "manual", "rule_not_found", None, False),  # valid number, not in the registry
])
async def test_each_rule_of_the_decision_table(engine: CaseEngine, applications: ApplicationService, clock: Clock,
                                               who: Applicant, outcome: str, rule: str, age: int | None,
                                               local: bool) -> None:
    started = await apply(applications, who, {**FORM, "phone": "13800138000"})
    data = await assert_round_trip(engine, started.id)
    assert (data["decision"]["outcome"], data["decision"]["rule"]) == (outcome, rule)
    assert data["decision"]["inputs"] == {"found": age is not None, "age": age, "local": local}
    assert data["decision"]["reason"]
    assert [t.task_spec for t in started.ready_tasks] == (["officer_review"] if outcome == "manual" else [])


async def test_not_in_registry_goes_to_an_mca_officer_who_approves(
        engine: CaseEngine, applications: ApplicationService, clock: Clock, pii: PiiKeys) -> None:
    started = await apply(applications, UNKNOWN)
    assert started.status == "running"
    [task] = started.ready_tasks
    assert (task.task_spec, task.name, task.lane, task.department, task.form_key) == (
        "officer_review", "民政人工审核", "mca", "mca", "review.json")
    row = await HumanTask.get(id=task.id)
    assert row.state == "ready" and row.department == "mca" and row.due_at is None
    assert (await Case.get(id=started.id)).due_at is None  # 即办件, even on the officer path

    data = await assert_round_trip(engine, started.id)
    assert data["decision"]["reason"] == "人口库中未查到申请人的户籍信息，无法自动核验，转民政部门人工审核"
    assert data["person"]["found"] is False and "result" not in data
    [log] = await DataAccessLog.filter(case_id=started.id)
    assert log.subject_masked == "310***********0034" and log.fields_read == []

    with pytest.raises(ValidationFailed) as bad:
        await engine.complete_task(task.id, {"review_approved": "yes"}, actor="mca01")
    assert set(bad.value.fields) >= {"review_approved", "review_opinion"}
    assert await assert_round_trip(engine, started.id) == data  # nothing changed

    done = await engine.complete_task(task.id, {"review_approved": True, "review_opinion": "经核验户口登记材料，符合条件"},
                                      actor="mca01", opinion="准予")
    assert done.status == "completed" and done.ready_tasks == []
    data = await assert_round_trip(engine, started.id)
    assert data["result"]["outcome"] == "approved" and data["result"]["decided_by"] == "officer"
    assert data["result"]["reason"] == "经民政部门人工审核准予：经核验户口登记材料，符合条件"
    assert data["decision"]["outcome"] == "manual"  # the automatic decision stays on record
    cert = await assert_valid_certificate(engine, pii, started.id, UNKNOWN)
    assert data["result"]["certificate"]["number"] == cert.number
    event = await CaseEvent.get(case_id=started.id, kind="task_completed")
    assert (event.task_name, event.actor, event.department, event.detail) == (
        "民政人工审核", "mca01", "mca", {"opinion": "准予"})


async def test_non_local_applicant_reviewed_and_rejected_by_the_officer(
        engine: CaseEngine, applications: ApplicationService, clock: Clock) -> None:
    started = await apply(applications, ZHANG)
    [task] = started.ready_tasks
    assert task.department == "mca"
    await assert_round_trip(engine, started.id)
    done = await engine.complete_task(task.id, {"review_approved": False,
                                                "review_opinion": "未能提供本市居住证明，请补充后重新申请"}, actor="mca02")
    assert done.status == "completed"
    data = await assert_round_trip(engine, started.id)
    assert data["result"] == {"outcome": "rejected", "decided_by": "officer",
                              "reason": "经民政部门人工审核不予办理：未能提供本市居住证明，请补充后重新申请"}
    assert data["decision"]["rule"] == "rule_nonlocal_60"
    assert await Certificate.filter(case_id=started.id).count() == 0
    assert (await HumanTask.get(id=task.id)).state == "completed"


async def test_application_form_is_validated_before_a_case_starts(
        engine: CaseEngine, applications: ApplicationService, clock: Clock) -> None:
    with pytest.raises(ValidationFailed) as bad:
        await applications.apply("senior-card", {"phone": "12345", "address": {"region_code": "310104"}},
                                 applicant=WANG)
    assert "phone" in bad.value.fields and any(k.startswith("address") for k in bad.value.fields)
    assert await Case.all().count() == 0 and await DataAccessLog.all().count() == 0


def test_catalogue_item_describes_a_senior_card_instant_item(catalog: Any) -> None:
    item = catalog.get("senior-card")
    assert (item.type, item.department, item.sla_working_days, item.real_name_level) == ("即办件", "mca", None, 2)
    view = item.public_view()
    assert view["result_certificate"] == SENIOR_CARD and view["fees"] == "不收费" and view["visits"] == 0
    assert any("老年人权益保障法" in basis for basis in view["legal_basis"])
    sources = {m["name"]: m["source"] for m in item.materials}
    assert sources["居民身份证"] == {"type": "certificate", "certificate_type": ID_CARD}
    assert sources["户籍信息"] == {"type": "shared_data", "dataset": "population"}
    assert sources["近期免冠照片"] == {"type": "citizen"}


# ---------------------------------------------------------------------------- govflow run
def _start_data(who: Applicant) -> str:
    return json.dumps({"form": FORM, "applicant": {
        "id_number": who.id_number, "name": who.name, "id_masked": who.id_number[:3] + "*" * 11 + who.id_number[-4:],
        "name_masked": who.name[0] + "**", "phone": who.phone}}, ensure_ascii=False)


@pytest.mark.sqlite_only  # a subprocess without a database: once is enough
@pytest.mark.parametrize(("who", "outcome", "reason", "records"), [
    (WANG, "approved", "申请人年满60周岁且为本市户籍，符合申领条件，自动准予", "access_log x1, certificate x1"),
    (LI, "rejected", "申请人未满60周岁，不符合老年人优待证申领条件", "access_log x1"),
])
def test_govflow_run_decides_with_the_real_connectors(who: Applicant, outcome: str, reason: str,
                                                       records: str) -> None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    run = subprocess.run([sys.executable, "-m", "mobile_api.cli", "run", "processes/senior-card",
                          "--data", _start_data(who)], capture_output=True, text=True, cwd=root, timeout=120,
                         env={**os.environ, "GOVFLOW_ENV": "development"})
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["decision"]["reason"] == reason and data["result"]["outcome"] == outcome
    assert f"records (in memory, not stored): {records}" in run.stderr
