"""企业开办一件事 (processes/business-startup) end to end: intake, name and credit checks, registration
with a new USCC, the business licence as a signed e-certificate, then the parallel department
branches (psb, tax, hrss, hpf, bank) that the applicant asked for, joined into one finished case.
The psb branch files the seal and starts psb's own seal-engraving case (processes/seal-engraving) by a
message, then waits for that case's "seal_engraved" correlated by the company's USCC — early, late or twice.

Cases start through ``ApplicationService``; after every wait state the stored case is reloaded
and must round-trip.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from stdnum.cn import uscc

from engine.accountability.privacy import PiiKeys, decrypt
from engine.bpmn.parser import read_folder
from engine.certificates.signing import verify_certificate
from engine.certificates.store import signed_from_row
from engine.citizen.applications import Applicant, ApplicationService
from engine.config import PROJECT_ROOT
from engine.errors import ValidationFailed
from engine.kernel.cases import CaseEngine, CaseResult
from engine.kernel.jobs import JobRunner
from engine.kernel.sla import plan
from engine.store.certificate_models import Certificate
from engine.store.models import Case, CaseEvent, HumanTask, MessageSubscription
from engine.store.shared_models import DataAccessLog
from tests.processes.conftest import Clock, assert_round_trip, cst

LICENCE = "11310000204383955N001"  # 营业执照
SEAL_FILING = "113100005943768994001"  # 公章刻制备案证明
TAX_CONFIRMATION = "11310000939555711U001"  # 税务登记信息确认书
NOW = cst(2026, 11, 30, 10, 0)  # a Monday

WANG = Applicant(id_number="310104196103150273", name="王建国", openid="openid-wangjianguo", phone="13816612345")
ZHAO = Applicant(id_number="310107198107011877", name="赵强", openid="openid-zhaoqiang", phone="13788990011")
LI = {"name": "李娜", "id_number": "310110198606200486"}

FORM: dict[str, Any] = {
    "company_name": "上海云帆信息科技有限公司",
    "company_type": "llc",
    "address": {"region_code": "310115", "detail": "张江路665号3层301室"},
    "registered_capital": 100,
    "legal_representative": {"name": WANG.name, "id_number": WANG.id_number, "phone": WANG.phone},
    "shareholders": [{"name": WANG.name, "id_number": WANG.id_number, "share_percent": 60},
                     {**LI, "share_percent": 40}],
    "business_scope": "信息技术咨询服务；软件开发；技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广",
    "need_seal": True, "need_invoices": True, "employees": 5, "need_bank_account": True, "bank_name": "中国工商银行",
}
BRANCHES = {  # task spec -> (department, form data, data key the branch writes)
    "psb_seal": ("psb", {"seal_maker": "上海宏达印章有限公司", "seal_kinds": ["official", "finance", "invoice"],
                         "seal_opinion": "已备案，印章寄递中"}, "seal"),
    "tax_register": ("tax", {"tax_taxpayer_type": "small_scale", "tax_invoice_kinds": ["digital_ordinary"],
                             "tax_credit_limit": 100000, "tax_opinion": "税务信息已确认，数电发票已开通"}, "tax"),
    "hrss_social_insurance": ("hrss", {"si_registration_no": "3101152026113001", "si_opinion": "单位参保登记完成"},
                              "social_insurance"),
    "hpf_housing_fund": ("hpf", {"hpf_account_no": "20261130001", "hpf_opinion": "单位缴存登记完成"}, "housing_fund"),
    "bank_appointment": ("bank", {"bank_branch": "中国工商银行上海张江支行", "bank_appointment_date": "2026-12-01",
                                  "bank_opinion": "已预约12月1日上午办理"}, "bank_account"),
}
ACCEPT = {"intake_accepted": True, "intake_opinion": "材料齐全，符合法定形式，予以受理"}


@pytest.fixture
def clock(engine: CaseEngine) -> Clock:
    pinned = Clock(NOW)
    engine.deps.clock = pinned
    return pinned


@pytest.fixture
def pii(settings: Any) -> PiiKeys:
    return PiiKeys.from_settings(settings)


async def start(applications: ApplicationService, engine: CaseEngine, form: dict[str, Any],
                who: Applicant = WANG) -> CaseResult:
    """Apply at the window and pass intake; returns the step after the intake check."""
    started = await applications.apply("business-startup", form, applicant=who, channel="window", actor="clerk01")
    assert started.status == "running"
    [intake] = started.ready_tasks
    assert (intake.task_spec, intake.department, intake.form_key) == ("intake_check", "samr", "intake.json")
    data = await assert_round_trip(engine, started.id)
    assert data["form"]["company_name"] == form["company_name"] and "checks" not in data
    engine.deps.clock.now += timedelta(minutes=30)  # type: ignore[attr-defined] - the pinned Clock
    step = await engine.complete_task(intake.id, ACCEPT, actor="samr01", opinion="予以受理")
    await assert_round_trip(engine, started.id)
    return step


async def deploy_seal_engraving(engine: CaseEngine) -> None:
    """psb's own process, started by the bundle's "seal_engraving_requested" message."""
    await engine.deploy(read_folder(PROJECT_ROOT / "processes" / "seal-engraving"), name="公章刻制")


async def engrave(engine: CaseEngine, company: str) -> Case:
    """Complete the seal-engraving case the bundle spawned for the company (its end sends "seal_engraved")."""
    cases = [c for c in await Case.filter(service="seal-engraving", status="running")
             if (await engine.load(c.id))[1].last_task.data.get("uscc") == company]
    assert len(cases) == 1, "the bundle's filing started one seal-engraving case for the company"
    [task] = await HumanTask.filter(case_id=cases[0].id, state="ready")
    assert (task.task_spec, task.department, task.name) == ("engrave", "psb", "公章刻制")
    done = await engine.complete_task(task.id, {"seal_maker": "上海宏达印章有限公司", "engraved_on": "2026-11-30"},
                                      actor="psb01")
    assert done.status == "completed"
    return await Case.get(id=cases[0].id)


async def certificate(engine: CaseEngine, pii: PiiKeys, case_id: int, type_code: str) -> tuple[Certificate, str]:
    """The case's certificate of a type, its signature verified; with its decrypted holder code."""
    [row] = await Certificate.filter(case_id=case_id, type_code=type_code)
    assert row.state == "01" and row.holder_code_type == "001"
    code = decrypt(row.holder_code_enc, pii.encryption_key, context=b"certificate.holder_code")
    assert verify_certificate(signed_from_row(row, code), engine.deps.keyring.verifier())
    assert row.holder_code_masked == code[:3] + "*" * 11 + code[-4:]
    return row, code


async def test_full_bundle_runs_every_branch_in_its_own_department(
        engine: CaseEngine, applications: ApplicationService, clock: Clock, pii: PiiKeys) -> None:
    step = await start(applications, engine, FORM)
    case_id = step.id
    case = await Case.get(id=case_id)
    assert case.due_at == plan(engine.deps.calendar, NOW, 1).due_at  # 承诺件: 1 working day
    assert case.due_at.astimezone(NOW.tzinfo).date().isoformat() == "2026-12-02"  # end of Tue 1 December
    assert case.channel == "window" and case.agent == "clerk01"

    # checks passed, company registered, licence issued: the five branches wait in five lanes
    assert {t.task_spec: t.department for t in step.ready_tasks} == {
        name: dept for name, (dept, _, _) in BRANCHES.items()}
    assert {t.lane for t in step.ready_tasks} == {"psb", "tax", "hrss", "hpf", "bank"}
    data = await assert_round_trip(engine, case_id)
    assert data["checks"] == {"passed": True, "name_available": True, "name_conflict_with": None,
                              "legal_rep_listed": False, "reasons": []}
    company = data["registration"]["uscc"]
    assert uscc.is_valid(company) and company[2:8] == "310115"
    assert data["services_requested"] == {"seal": True, "tax": True, "social_insurance": True,
                                          "housing_fund": True, "bank_account": True}
    licence, holder = await certificate(engine, pii, case_id, LICENCE)
    assert holder == company and licence.holder_name == "上海云帆信息科技有限公司" and licence.name == "营业执照"
    assert licence.data["extra"]["legal_representative"] == "王建国"
    assert licence.data["extra"]["company_type"] == "有限责任公司"
    rows = await HumanTask.filter(case_id=case_id, state="ready").values_list("task_spec", "department")
    assert sorted(rows) == sorted((name, dept) for name, (dept, _, _) in BRANCHES.items())
    subcases = {s["department"]: s for s in await engine.subcases(case_id)}  # one sub-case per department
    assert {d: s["status"] for d, s in subcases.items()} == {
        "samr": "done", "psb": "running", "tax": "running", "hrss": "running", "hpf": "running", "bank": "running"}
    assert subcases["samr"]["subcase_no"] == f"{case.case_no}-01"
    assert subcases["hpf"]["department_name"] == "住房公积金管理中心"

    # a branch form is validated like any task form
    psb = next(t for t in step.ready_tasks if t.task_spec == "psb_seal")
    with pytest.raises(ValidationFailed):
        await engine.complete_task(psb.id, {"seal_maker": "上海宏达印章有限公司", "seal_kinds": []}, actor="psb01")

    await deploy_seal_engraving(engine)

    # complete the branches in an order unlike the diagram's; every step saves and restores
    order = ["bank_appointment", "hrss_social_insurance", "psb_seal", "hpf_housing_fund", "tax_register"]
    tasks = {t.task_spec: t for t in step.ready_tasks}
    for done, name in enumerate(order, start=1):
        dept, values, _ = BRANCHES[name]
        clock.now += timedelta(minutes=40)
        step = await engine.complete_task(tasks[name].id, values, actor=f"{dept}01", opinion="办结")
        data = await assert_round_trip(engine, case_id)
        waiting = {t.task_spec for t in step.ready_tasks}
        assert waiting == set(order[done:])
        assert await HumanTask.filter(case_id=case_id, state="ready").count() == len(order) - done
        if done < len(order):
            assert step.status == "running" and "result" not in data

    assert step.status == "running"  # the filing started psb's seal-engraving case; the bundle waits for it
    engraving = await engrave(engine, company)
    assert engraving.channel == "system" and (await Case.get(id=case_id)).status == "completed"
    data = await assert_round_trip(engine, case_id)
    # each branch wrote its own key and the join kept all of them
    for dept, _values, key in BRANCHES.values():
        assert data[key]["department"] == dept and data[key]["status"] in {"done", "booked"}
    assert data["seal"]["kinds"] == ["official", "finance", "invoice"]
    assert (data["seal"]["engraved_by"], data["seal"]["engraved_on"]) == ("上海宏达印章有限公司", "2026-11-30")
    assert data["tax"]["credit_limit"] == 100000 and data["bank_account"]["bank"] == "中国工商银行"
    assert data["result"] == {
        "outcome": "approved", "reason": "企业开办一件事已办结", "company_name": "上海云帆信息科技有限公司",
        "uscc": company, "licence": {"identifier": licence.identifier, "number": licence.number,
                                     "issue_date": "2026-11-30"},
        "services": ["seal", "tax", "social_insurance", "housing_fund", "bank_account"]}

    # the seal filing and the tax confirmation are e-certificates of the company too
    seal, holder = await certificate(engine, pii, case_id, SEAL_FILING)
    assert holder == company and data["seal"]["certificate"] == seal.identifier
    tax, holder = await certificate(engine, pii, case_id, TAX_CONFIRMATION)
    assert holder == company and data["tax"]["certificate"] == tax.identifier
    assert await Certificate.filter(case_id=case_id).count() == 3

    case = await Case.get(id=case_id)
    assert case.status == "completed" and case.completed_at is not None
    done_rows = await HumanTask.filter(case_id=case_id).values_list("task_spec", "department", "state", "completed_by")
    assert sorted(done_rows) == sorted([("intake_check", "samr", "completed", "samr01")] + [
        (name, dept, "completed", f"{dept}01") for name, (dept, _, _) in BRANCHES.items()])
    assert all(s["status"] == "done" for s in await engine.subcases(case_id))
    events = [(e.kind, e.task_name, e.department) for e in await CaseEvent.filter(case_id=case_id).order_by("id")]
    assert ("task_completed", "公章刻制备案", "psb") in events and ("task_completed", "银行开户预约", "bank") in events
    assert ("step_done", "核发营业执照（电子）", None) in events and events[-1][0] == "case_completed"

    # the credit check read personal data: logged with a masked subject
    [log] = await DataAccessLog.filter(case_id=case_id)
    assert (log.dataset, log.subject_masked, log.department) == ("credit_blacklist", "310***********0273", "samr")
    assert log.actor == "samr01" and log.case_no == case.case_no


async def test_partial_bundle_never_creates_the_skipped_branches(
        engine: CaseEngine, applications: ApplicationService, clock: Clock, pii: PiiKeys) -> None:
    form = {**FORM, "company_name": "上海旧日贸易有限公司",  # a cancelled company's name is free again
            "need_seal": True, "need_invoices": False, "employees": 0, "need_bank_account": True}
    form.pop("bank_name")
    await deploy_seal_engraving(engine)
    step = await start(applications, engine, form)
    assert {t.task_spec: t.department for t in step.ready_tasks} == {"psb_seal": "psb", "bank_appointment": "bank"}
    data = await assert_round_trip(engine, step.id)
    assert data["services_requested"] == {"seal": True, "tax": False, "social_insurance": False,
                                          "housing_fund": False, "bank_account": True}
    tasks = {t.task_spec: t for t in step.ready_tasks}
    step = await engine.complete_task(tasks["psb_seal"].id, BRANCHES["psb_seal"][1], actor="psb01")
    assert [t.task_spec for t in step.ready_tasks] == ["bank_appointment"] and step.status == "running"
    data = await assert_round_trip(engine, step.id)
    step = await engine.complete_task(tasks["bank_appointment"].id, BRANCHES["bank_appointment"][1], actor="bank01")
    assert step.status == "running"  # the seal is not engraved yet
    await engrave(engine, data["registration"]["uscc"])
    assert (await Case.get(id=step.id)).status == "completed"
    data = await assert_round_trip(engine, step.id)
    assert data["result"]["services"] == ["seal", "bank_account"] and data["result"]["outcome"] == "approved"
    assert data["bank_account"]["bank"] is None
    assert not {"tax", "social_insurance", "housing_fund"} & set(data)
    specs = set(await HumanTask.filter(case_id=step.id).values_list("task_spec", flat=True))
    assert specs == {"intake_check", "psb_seal", "bank_appointment"}
    assert sorted(await Certificate.filter(case_id=step.id).values_list("type_code", flat=True)) == sorted(
        [LICENCE, SEAL_FILING])
    await certificate(engine, pii, step.id, LICENCE)


async def test_employees_start_social_insurance_and_housing_fund_only(
        engine: CaseEngine, applications: ApplicationService, clock: Clock) -> None:
    form = {**FORM, "need_seal": False, "need_invoices": False, "employees": 3, "need_bank_account": False}
    step = await start(applications, engine, form)
    assert {t.task_spec: t.department for t in step.ready_tasks} == {
        "hrss_social_insurance": "hrss", "hpf_housing_fund": "hpf"}
    tasks = {t.task_spec: t for t in step.ready_tasks}
    step = await engine.complete_task(tasks["hpf_housing_fund"].id, BRANCHES["hpf_housing_fund"][1], actor="hpf01")
    await assert_round_trip(engine, step.id)
    step = await engine.complete_task(tasks["hrss_social_insurance"].id, BRANCHES["hrss_social_insurance"][1],
                                      actor="hrss01")
    data = await assert_round_trip(engine, step.id)
    assert step.status == "completed" and data["result"]["services"] == ["social_insurance", "housing_fund"]
    assert data["social_insurance"]["registration_no"] == "3101152026113001"
    assert data["housing_fund"]["account_no"] == "20261130001"


async def test_no_optional_service_completes_right_after_the_licence(
        engine: CaseEngine, applications: ApplicationService, clock: Clock) -> None:
    form = {k: v for k, v in FORM.items() if k not in {"need_seal", "need_invoices", "employees",
                                                       "need_bank_account", "bank_name"}}
    step = await start(applications, engine, form)
    assert step.status == "completed" and step.ready_tasks == []
    data = await assert_round_trip(engine, step.id)
    assert data["result"]["services"] == [] and uscc.is_valid(data["result"]["uscc"])
    assert await Certificate.filter(case_id=step.id).values_list("type_code", flat=True) == [LICENCE]
    assert await HumanTask.filter(case_id=step.id).values_list("task_spec", flat=True) == ["intake_check"]


async def test_taken_company_name_is_rejected(
        engine: CaseEngine, applications: ApplicationService, clock: Clock) -> None:
    step = await start(applications, engine, {**FORM, "company_name": "上海东方明珠文化传媒有限责任公司"})
    assert step.status == "completed" and step.ready_tasks == []
    data = await assert_round_trip(engine, step.id)
    assert data["checks"]["passed"] is False and data["checks"]["name_conflict_with"] == "上海东方明珠文化传媒有限公司"
    assert data["result"] == {
        "outcome": "rejected", "stage": "checks",
        "reason": "企业名称「上海东方明珠文化传媒有限责任公司」与已登记的企业名称「上海东方明珠文化传媒有限公司」相同或近似，不予登记"}
    assert "registration" not in data and "licence" not in data
    assert await Certificate.filter(case_id=step.id).count() == 0
    assert await HumanTask.filter(case_id=step.id).values_list("task_spec", flat=True) == ["intake_check"]


async def test_blacklisted_legal_representative_is_rejected(
        engine: CaseEngine, applications: ApplicationService, clock: Clock, pii: PiiKeys) -> None:
    form = {**FORM, "legal_representative": {"name": ZHAO.name, "id_number": ZHAO.id_number, "phone": ZHAO.phone},
            "shareholders": [{"name": ZHAO.name, "id_number": ZHAO.id_number, "share_percent": 100}]}
    step = await start(applications, engine, form, who=ZHAO)
    assert step.status == "completed" and step.ready_tasks == []
    data = await assert_round_trip(engine, step.id)
    assert data["checks"]["legal_rep_listed"] is True and data["checks"]["name_available"] is True
    assert data["legal_rep_credit"]["listed"] is True
    assert data["result"] == {
        "outcome": "rejected", "stage": "checks",
        "reason": "法定代表人赵*已被列入失信被执行人名单（有履行能力而拒不履行生效法律文书确定义务），"
                  "依法不得担任法定代表人，不予登记"}
    assert await Certificate.filter(case_id=step.id).count() == 0
    [log] = await DataAccessLog.filter(case_id=step.id)
    assert (log.dataset, log.subject_masked) == ("credit_blacklist", "310***********1877")
    assert ZHAO.id_number not in json.dumps([log.subject_hash, log.subject_masked, log.purpose, log.fields_read])


async def test_window_may_refuse_intake(
        engine: CaseEngine, applications: ApplicationService, clock: Clock) -> None:
    started = await applications.apply("business-startup", FORM, applicant=WANG)
    [intake] = started.ready_tasks
    done = await engine.complete_task(intake.id, {"intake_accepted": False, "intake_opinion": "住所使用证明与登记住所不一致"},
                                      actor="samr01")
    assert done.status == "completed"
    data = await assert_round_trip(engine, started.id)
    assert data["result"] == {"outcome": "rejected", "stage": "intake", "reason": "不予受理：住所使用证明与登记住所不一致"}
    assert "name_check" not in data and await DataAccessLog.filter(case_id=started.id).count() == 0
    case = await Case.get(id=started.id)
    assert case.status == "completed" and case.completed_at is not None


async def test_application_form_checks_the_shareholders_and_flags(
        engine: CaseEngine, applications: ApplicationService, clock: Clock) -> None:
    bad = {**FORM, "company_type": "ltd", "employees": -1,
           "shareholders": [{"name": "李娜", "id_number": "310110198606200487", "share_percent": 0}]}
    with pytest.raises(ValidationFailed) as info:
        await applications.apply("business-startup", bad, applicant=WANG)
    fields = set(info.value.fields)
    assert {"company_type", "employees"} <= fields
    assert any(f.startswith("shareholders") for f in fields)
    assert await Case.all().count() == 0


def test_catalogue_item_is_a_one_day_promise(catalog: Any) -> None:
    item = catalog.get("business-startup")
    assert (item.type, item.department, item.sla_working_days) == ("承诺件", "samr", 1)
    view = item.public_view()
    assert view["legal_limit"] == {"value": 3, "unit": "工作日"} and view["result_certificate"] == LICENCE
    assert view["visits"] == 0 and set(view["channels"]) == {"mobile", "window", "web"}


async def test_the_bundle_waits_for_the_seal_engraving_case_early_late_and_twice(
        engine: CaseEngine, applications: ApplicationService, clock: Clock) -> None:
    seal_only = {**FORM, "need_seal": True, "need_invoices": False, "employees": 0, "need_bank_account": False}
    seal_only.pop("bank_name")
    late = await start(applications, engine, seal_only)
    early = await start(applications, engine, {**seal_only, "company_name": "上海旧日贸易有限公司"}, who=ZHAO)
    late_uscc = (await assert_round_trip(engine, late.id))["registration"]["uscc"]
    early_uscc = (await assert_round_trip(engine, early.id))["registration"]["uscc"]
    assert late_uscc != early_uscc

    await deploy_seal_engraving(engine)

    # early: psb's seal system reports the seal before the bundle files it — kept, then delivered
    # once the wait begins
    posted = await engine.messages.send("seal_engraved", {"uscc": early_uscc},
                                        {"seal_maker": "上海宏达印章有限公司", "engraved_on": "2026-11-29"},
                                        source="system:psb_seal", message_id="psb-seal-0001")
    assert (posted.delivered, posted.kept) == (0, True)
    [filing] = early.ready_tasks
    step = await engine.complete_task(filing.id, BRANCHES["psb_seal"][1], actor="psb01")
    assert step.status == "running" and step.ready_tasks == []
    await JobRunner(engine).run_due()
    assert (await Case.get(id=early.id)).status == "completed"
    assert (await assert_round_trip(engine, early.id))["seal"]["engraved_on"] == "2026-11-29"

    # late: the filing starts psb's seal-engraving case; the bundle waits (its subscription names the
    # company's USCC) until that case ends
    [filing] = late.ready_tasks
    await engine.complete_task(filing.id, BRANCHES["psb_seal"][1], actor="psb01")
    [sub] = await MessageSubscription.filter(case_id=late.id)
    assert (sub.name, sub.correlation) == ("seal_engraved", {"uscc": late_uscc})
    assert (await Case.get(id=late.id)).status == "running"
    engraving = await engrave(engine, late_uscc)
    case = await Case.get(id=late.id)
    assert case.status == "completed"
    [received] = await CaseEvent.filter(case_id=late.id, kind="message_received")
    assert received.task_name == "等待刻章办结" and received.actor == engraving.case_no
    [started] = await CaseEvent.filter(case_id=engraving.id, kind="message_received")
    assert started.task_name == "收到刻章申请" and started.actor == case.case_no
    data = await assert_round_trip(engine, late.id)
    assert data["result"]["outcome"] == "approved" and data["seal"]["engraved_by"] == "上海宏达印章有限公司"

    # twice: the same message id again is a no-op; another report for the finished bundle is only kept
    again = await engine.messages.send("seal_engraved", {"uscc": late_uscc}, {"engraved_on": "2026-12-01"},
                                       source="system:psb_seal", message_id=received.detail["message_id"])
    assert again.duplicate and again.delivered == 1
    second = await engine.messages.send("seal_engraved", {"uscc": late_uscc}, {"engraved_on": "2026-12-01"},
                                        source="system:psb_seal")
    assert (second.delivered, second.kept) == (0, True)
    await JobRunner(engine).run_due()
    assert await CaseEvent.filter(case_id=late.id, kind="message_received").count() == 1
    assert (await Case.get(id=late.id)).version == case.version


async def test_a_return_to_intake_revokes_the_issued_licence(
        engine: CaseEngine, applications: ApplicationService, clock: Clock) -> None:
    """Found while extending the operations model to this process (issue #14): 退回 to 受理核验 after the business licence was
    issued, then 不予受理, ended the case refused with a valid 营业执照. The 退回 revokes what the
    undone path issued; a parallel branch's certificate beside the returned branch stays."""
    from engine.workbench.task_ops import return_to_step

    step = await start(applications, engine, FORM)
    case_id = step.id
    [licence] = await Certificate.filter(case_id=case_id, state="01")
    seal = next(t for t in step.ready_tasks if t.task_spec == "psb_seal")
    await engine.complete_task(seal.id, BRANCHES["psb_seal"][1], actor="psb01")
    hrss = next(t for t in step.ready_tasks if t.task_spec == "hrss_social_insurance")
    await engine.complete_task(hrss.id, BRANCHES["hrss_social_insurance"][1], actor="hrss01")
    before = {c.identifier for c in await Certificate.filter(case_id=case_id, state="01")}
    await return_to_step(engine, case_id, target_task_spec="hrss_social_insurance", actor="hrss01",
                         department="hrss", reason="补录参保人员")
    assert {c.identifier for c in await Certificate.filter(case_id=case_id, state="01")} == before  # beside it

    back = await return_to_step(engine, case_id, target_task_spec="intake_check", actor="samr02",
                                department="samr", reason="住所使用证明存疑，重新核验")
    assert await Certificate.filter(case_id=case_id, state="01").count() == 0
    assert (await Certificate.get(identifier=licence.identifier)).state == "03"
    [intake] = back.ready_tasks
    done = await engine.complete_task(intake.id, {"intake_accepted": False, "intake_opinion": "住所使用证明与登记住所不一致"},
                                      actor="samr01")
    assert done.status == "completed" and done.data["result"]["outcome"] == "rejected"
    assert await Certificate.filter(case_id=case_id, state="01").count() == 0
