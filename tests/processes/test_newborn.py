"""出生一件事 end to end: shared birth record (卫健) → household registration (公安) → medical
insurance (医保) and social security card (人社) in parallel → done; e-certificates instead of
uploads; the not-found and refusal paths."""

from __future__ import annotations

import pytest
from stdnum.cn import ric

from engine.accountability.privacy import PiiKeys, blind_index
from engine.certificates.store import find_for_holder
from engine.citizen.applications import ApplicationService
from engine.errors import ValidationFailed
from engine.kernel.cases import CaseEngine
from engine.store.certificate_models import Certificate, CertificateUse
from engine.store.models import Case, CaseEvent, HumanTask
from engine.store.shared_models import DataAccessLog
from tests.processes.conftest import (
    BIRTH_CERTIFICATE,
    FATHER,
    HOUSEHOLD_REGISTER,
    ID_CARD,
    MEDICAL_INSURANCE,
    MOTHER,
    SINGLE_MOTHER,
    SOCIAL_SECURITY_CARD,
    assert_round_trip,
    issue_certificate,
)

FORM = {"birth_certificate_no": "Q312600001", "baby_name": "周小雨", "applicant_relation": "mother",
        "household_follow": "father", "contact_phone": "18621034567"}
HOUSEHOLD_ADDRESS = "上海市闵行区莘庄镇莘东路505弄12号301室"


def baby_id_number(region: str = "310112", born: str = "20261120", sequence: str = "002") -> str:
    """A GB 11643-valid number for the newborn (an even sequence digit: a girl)."""
    body = region + born + sequence
    return body + ric.calc_check_digit(body + "0")


BABY_ID = baby_id_number()


def household_approval(**extra: str) -> dict:
    return {"household": {"outcome": "approve", "baby_id_number": BABY_ID, "household_region": "310112",
                          "household_address": HOUSEHOLD_ADDRESS, "opinion": "材料齐全，准予随父落户", **extra}}


INSURANCE = {"insurance": {"scheme": "resident_child", "effective_date": "2026-11-20",
                           "opinion": "出生90日内参保，自出生之日起享受待遇"}}
SOCIAL_CARD = {"social_card": {"bank": "上海银行", "delivery": "mail", "opinion": "已受理制卡，邮寄到家"}}


async def test_newborn_runs_through_four_departments_and_issues_three_certificates(
        engine: CaseEngine, applications: ApplicationService, settings) -> None:
    id_card = await issue_certificate(engine, ID_CARD, MOTHER)
    household_book = await issue_certificate(engine, HOUSEHOLD_REGISTER, MOTHER, {"户籍地址": HOUSEHOLD_ADDRESS})

    started = await applications.apply("newborn", FORM, applicant=MOTHER)
    assert started.status == "running"
    # the birth record was found in shared data and names the applicant as mother: straight to 公安
    [register] = started.ready_tasks
    assert (register.task_spec, register.department, register.form_key) == (
        "register_household", "psb", "household.json")
    data = await assert_round_trip(engine, started.id)
    assert data["birth"]["found"] is True and data["birth"]["hospital"] == "上海市第一妇婴保健院"
    assert data["birth_verified"] is True and data["birth_verified_by"] == "shared_data"
    assert data["baby"] == {"name": "周小雨", "certificate_no": "Q312600001", "gender": "女",
                            "birth_date": "2026-11-20", "hospital": "上海市第一妇婴保健院"}

    # materials: the parent's 身份证 and 户口簿 are satisfied by e-certificates (免提交) ...
    materials = {m["name"]: m for m in data["materials"]}
    assert materials["父（母）居民身份证"]["satisfied"] and materials["父（母）居民身份证"]["by_certificate"] == \
        id_card["identifier"]
    assert materials["父（母）居民户口簿"]["label"] == "已由电子证照自动获取（免提交）"
    assert materials["父（母）居民户口簿"]["by_certificate"] == household_book["identifier"]
    assert materials["出生医学证明"]["source_type"] == "shared_data" and materials["出生医学证明"]["satisfied"]
    # ... and each use is a purpose-bound use recorded with the case number
    uses = await CertificateUse.filter(case_no=started.case_no).prefetch_related("certificate").order_by("id")
    assert {u.certificate.identifier for u in uses} == {id_card["identifier"], household_book["identifier"]}
    assert all(u.department == "nhc" and "出生一件事" in u.reason for u in uses)
    # the read of the birth record is logged with the case, never with a clear ID number
    reads = await DataAccessLog.filter(case_no=started.case_no, dataset="birth_records")
    assert reads and all("310112199504121645" not in (r.subject_masked or "") for r in reads)
    assert {r.purpose for r in reads} == {"出生一件事：核验出生医学证明"}

    # 公安: household registration issues the baby's 居民户口簿 page, then the parallel split
    split = await engine.complete_task(register.id, household_approval(), actor="psb01", opinion="准予登记")
    assert sorted((t.task_spec, t.department) for t in split.ready_tasks) == [
        ("apply_social_card", "hrss"), ("enrol_insurance", "nhsa")]
    rows = await HumanTask.filter(case_id=started.id, state="ready")
    assert sorted(r.department for r in rows) == ["hrss", "nhsa"]
    data = await assert_round_trip(engine, started.id)
    assert data["household_certificate"]["name"] == "居民户口簿"
    tasks = {t.department: t for t in split.ready_tasks}

    # 医保 first: 人社 still waits, the case keeps running
    after_nhsa = await engine.complete_task(tasks["nhsa"].id, INSURANCE, actor="nhsa01")
    assert after_nhsa.status == "running" and [t.department for t in after_nhsa.ready_tasks] == ["hrss"]
    await assert_round_trip(engine, started.id)
    # the 参保凭证 is issued as soon as 医保 is done, within that step's transaction
    assert await Certificate.filter(case_id=started.id, type_code=MEDICAL_INSURANCE).count() == 1
    assert await Certificate.filter(case_id=started.id, type_code=SOCIAL_SECURITY_CARD).count() == 0

    # 人社: the branches join and the case completes
    done = await engine.complete_task(tasks["hrss"].id, SOCIAL_CARD, actor="hrss01")
    assert done.status == "completed" and done.ready_tasks == []
    data = await assert_round_trip(engine, started.id)
    assert data["outcome"] == "completed" and data["result_message"].startswith("周小雨的出生一件事已办结")
    assert data["medical_certificate"]["name"] == "医疗保险参保凭证"
    assert data["social_card_certificate"]["name"] == "社会保障卡"

    issued = await Certificate.filter(case_id=started.id).order_by("id")
    assert [c.type_code for c in issued] == [HOUSEHOLD_REGISTER, MEDICAL_INSURANCE, SOCIAL_SECURITY_CARD]
    assert {c.holder_name for c in issued} == {"周小雨"}
    assert {c.identifier for c in issued} == set(data["certificates"])
    assert all(BABY_ID not in c.holder_code_masked and c.state == "01" for c in issued)
    key = PiiKeys.from_settings(settings).blind_index_key
    held = await find_for_holder(blind_index(BABY_ID, key))
    assert {c.type_code for c in held} == {HOUSEHOLD_REGISTER, MEDICAL_INSURANCE, SOCIAL_SECURITY_CARD}
    assert BIRTH_CERTIFICATE not in {c.type_code for c in held}  # read from shared data, not re-issued

    case = await Case.get(id=started.id)
    assert case.status == "completed" and case.completed_at is not None
    subcases = await engine.subcases(started.id)  # one case number, a sub-case per department
    assert subcases[0]["department"] == "psb" and {s["department"] for s in subcases} == {"psb", "nhsa", "hrss"}
    assert all(s["status"] == "done" and s["subcase_no"].startswith(started.case_no + "-") for s in subcases)
    timeline = [(e.kind, e.task_name, e.department) for e in await CaseEvent.filter(case_id=started.id).order_by("id")]
    assert ("task_completed", "出生户口登记", "psb") in timeline
    assert ("task_completed", "新生儿医保参保登记", "nhsa") in timeline
    assert ("task_completed", "新生儿社会保障卡申领", "hrss") in timeline
    steps = [name for kind, name, _ in timeline if kind == "step_done"]
    assert steps.index("获取出生医学证明信息") < steps.index("签发居民户口簿（新生儿页）") < steps.index("办结")
    assert timeline[-1][0] == "case_completed"


async def test_without_e_certificates_the_materials_need_uploading(
        engine: CaseEngine, applications: ApplicationService) -> None:
    started = await applications.apply("newborn", {**FORM, "applicant_relation": "father"}, applicant=FATHER)
    data = await assert_round_trip(engine, started.id)
    materials = {m["name"]: m for m in data["materials"]}
    assert materials["父（母）居民身份证"]["status"] == "needs_upload"
    assert materials["父（母）居民户口簿"]["reason"] == "未找到该类电子证照"
    assert await CertificateUse.filter(case_no=started.case_no).count() == 0
    assert [t.department for t in started.ready_tasks] == ["psb"]  # the father is named in the record too


async def test_birth_record_not_found_goes_to_a_health_officer_who_verifies_it(
        engine: CaseEngine, applications: ApplicationService) -> None:
    form = {**FORM, "birth_certificate_no": "Q312699999"}
    started = await applications.apply("newborn", form, applicant=MOTHER)
    [verify] = started.ready_tasks
    assert (verify.task_spec, verify.department, verify.form_key) == ("verify_birth", "nhc", "verify_birth.json")
    data = await assert_round_trip(engine, started.id)
    assert data["birth"]["found"] is False and data["birth_verified"] is False

    with pytest.raises(ValidationFailed) as missing:  # confirming needs the facts of the paper certificate
        await engine.complete_task(verify.id, {"birth_verification": {"outcome": "confirmed", "opinion": "核验属实"}})
    assert set(missing.value.fields) >= {"birth_verification.gender", "birth_verification.birth_date"}

    verified = await engine.complete_task(verify.id, {"birth_verification": {
        "outcome": "confirmed", "gender": "女", "birth_date": "2026-11-20", "hospital": "上海市第一妇婴保健院",
        "opinion": "经与助产机构核对纸质出生医学证明存根，信息属实"}}, actor="nhc01")
    [register] = verified.ready_tasks
    assert register.department == "psb"
    data = await assert_round_trip(engine, started.id)
    assert data["birth_verified_by"] == "nhc" and data["baby"]["hospital"] == "上海市第一妇婴保健院"

    split = await engine.complete_task(register.id, household_approval(), actor="psb01")
    for task in split.ready_tasks:
        await assert_round_trip(engine, started.id)
        payload = INSURANCE if task.department == "nhsa" else SOCIAL_CARD
        result = await engine.complete_task(task.id, payload, actor=f"{task.department}01")
    assert result.status == "completed" and result.data["outcome"] == "completed"
    assert (await assert_round_trip(engine, started.id))["baby"]["gender"] == "女"
    assert await Certificate.filter(case_id=started.id).count() == 3


@pytest.mark.parametrize("who, form", [
    (MOTHER, {**FORM, "birth_certificate_no": "Q312699999"}),  # no record
    (SINGLE_MOTHER, FORM),  # a record, but it names other parents
], ids=["record-not-found", "applicant-not-a-parent"])
async def test_unverifiable_birth_is_refused_by_the_health_officer(
        engine: CaseEngine, applications: ApplicationService, who, form) -> None:
    started = await applications.apply("newborn", form, applicant=who)
    [verify] = started.ready_tasks
    assert verify.task_spec == "verify_birth" and verify.department == "nhc"
    await assert_round_trip(engine, started.id)
    refused = await engine.complete_task(verify.id, {"birth_verification": {
        "outcome": "rejected", "opinion": "助产机构无该出生记录，请持纸质出生医学证明到窗口核验"}}, actor="nhc01")
    assert refused.status == "completed" and refused.ready_tasks == []
    data = await assert_round_trip(engine, started.id)
    assert data["outcome"] == "rejected" and data["reject_reason"].startswith("出生医学证明核验不通过")
    assert await HumanTask.filter(case_id=started.id, department="psb").count() == 0
    assert await Certificate.filter(case_id=started.id).count() == 0


async def test_household_registration_refused_ends_the_case_without_certificates(
        engine: CaseEngine, applications: ApplicationService) -> None:
    started = await applications.apply("newborn", FORM, applicant=MOTHER)
    refused = await engine.complete_task(started.ready_tasks[0].id, {"household": {
        "outcome": "reject", "opinion": "随父落户须提供父亲户籍信息，请补充后重新申请"}}, actor="psb01")
    assert refused.status == "completed"
    data = await assert_round_trip(engine, started.id)
    assert data["outcome"] == "rejected" and data["reject_reason"].startswith("不予户口登记")
    assert await HumanTask.filter(case_id=started.id, department__in=["nhsa", "hrss"]).count() == 0
    assert await Certificate.filter(case_id=started.id).count() == 0


async def test_approval_without_the_baby_id_number_is_refused_by_the_form(
        engine: CaseEngine, applications: ApplicationService) -> None:
    started = await applications.apply("newborn", FORM, applicant=MOTHER)
    with pytest.raises(ValidationFailed) as problems:
        await engine.complete_task(started.ready_tasks[0].id, {"household": {
            "outcome": "approve", "household_region": "310112", "household_address": HOUSEHOLD_ADDRESS,
            "opinion": "准予登记"}})
    assert "household.baby_id_number" in problems.value.fields
    assert (await HumanTask.get(id=started.ready_tasks[0].id)).state == "ready"


async def test_the_application_form_is_checked_before_a_case_starts(
        engine: CaseEngine, applications: ApplicationService) -> None:
    with pytest.raises(ValidationFailed) as problems:
        await applications.apply("newborn", {**FORM, "birth_certificate_no": "12345", "household_follow": "grandma"},
                                 applicant=MOTHER)
    assert "1位大写字母加9位数字" in problems.value.fields["birth_certificate_no"]
    assert "household_follow" in problems.value.fields
    assert await Case.all().count() == 0


async def test_a_return_past_the_issued_certificates_revokes_them(
        engine: CaseEngine, applications: ApplicationService) -> None:
    """Found while extending the operations model to this process (issue #14): 退回 to 出生户口登记 after the baby's 户口簿 page and
    参保凭证 were issued, then 不予户口登记, ended the case refused with both certificates still
    valid; approving again issued a second 户口簿 page. The certificates issued on the path a 退回
    undoes are revoked with it (audited), and a new decision issues afresh."""
    from engine.store.audit_models import AuditRecord
    from engine.workbench.task_ops import return_to_step

    started = await applications.apply("newborn", FORM, applicant=MOTHER)
    split = await engine.complete_task(started.ready_tasks[0].id, household_approval(), actor="psb01")
    [nhsa] = [t for t in split.ready_tasks if t.department == "nhsa"]
    await engine.complete_task(nhsa.id, INSURANCE, actor="nhsa01")
    issued = {c.identifier for c in await Certificate.filter(case_id=started.id, state="01")}
    assert len(issued) == 2

    back = await return_to_step(engine, started.id, target_task_spec="register_household", actor="psb01",
                                department="psb", reason="落户地址有误")
    assert [t.task_spec for t in back.ready_tasks] == ["register_household"]
    assert await Certificate.filter(case_id=started.id, state="01").count() == 0
    assert {c.identifier for c in await Certificate.filter(case_id=started.id, state="03")} == issued
    revoked = await AuditRecord.filter(kind="certificate.state", subject__in=sorted(issued)).count()
    assert revoked == 2
    event = await CaseEvent.filter(case_id=started.id, kind="task_returned").first()
    assert event is not None and set(event.detail["certificates_revoked"]) == issued

    # decided again: approved → exactly one valid certificate of each type, the new ones
    split = await engine.complete_task(back.ready_tasks[0].id, household_approval(), actor="psb01")
    for task in split.ready_tasks:
        await engine.complete_task(task.id, INSURANCE if task.department == "nhsa" else SOCIAL_CARD,
                                   actor=f"{task.department}01")
    data = await assert_round_trip(engine, started.id)
    valid = await Certificate.filter(case_id=started.id, state="01")
    assert data["outcome"] == "completed" and {c.identifier for c in valid} == set(data["certificates"])
    assert sorted(c.type_code for c in valid) == sorted([HOUSEHOLD_REGISTER, MEDICAL_INSURANCE, SOCIAL_SECURITY_CARD])


async def test_a_return_then_a_refusal_leaves_no_valid_certificate(
        engine: CaseEngine, applications: ApplicationService) -> None:
    from engine.workbench.task_ops import return_to_step

    started = await applications.apply("newborn", FORM, applicant=MOTHER)
    await engine.complete_task(started.ready_tasks[0].id, household_approval(), actor="psb01")
    back = await return_to_step(engine, started.id, target_task_spec="register_household", actor="psb01",
                                department="psb", reason="重新核对")
    refused = await engine.complete_task(back.ready_tasks[0].id, {"household": {
        "outcome": "reject", "opinion": "随父落户须提供父亲户籍信息"}}, actor="psb01")
    assert refused.status == "completed" and refused.data["outcome"] == "rejected"
    assert await Certificate.filter(case_id=started.id, state="01").count() == 0
