"""居住证申领 end to end: police-station review, 补正 with the SLA clock paused, 会签 by two officers
(both approve → 居住证 valid one year; any rejection refuses), SLA warning and escalation."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from engine import build_engine
from engine.citizen.applications import ApplicationService
from engine.kernel.cases import CaseEngine
from engine.kernel.jobs import JobRunner
from engine.kernel.sla import CST, WorkingCalendar
from engine.store.certificate_models import Certificate
from engine.store.models import Case, CaseEvent, HumanTask, Job
from tests.processes.conftest import (
    ID_CARD,
    LOCAL_40,
    RESIDENCE_PERMIT,
    SINGLE_MOTHER,
    Clock,
    application_service,
    assert_round_trip,
    cst,
    issue_certificate,
)

FORM = {"address": {"region_code": "310115", "detail": "浦东新区张杨路1500号3号楼1202室"},
        "residence_type": "rented", "residence_start_date": "2025-03-01", "employer": "上海云帆信息科技有限公司",
        "phone": "15013579246", "photo_ref": "ZP20261128-0042"}
APPROVE = {"review_outcome": "approve", "review_opinion": "居住登记满半年，材料齐全，提交会签"}
SUPPLEMENT = {"review_outcome": "supplement", "review_opinion": "证件照不符合要求，租赁合同未登记备案",
              "supplement_request": ["重新拍摄白底证件照", "提供房屋租赁合同登记备案证明"]}


def sign(decision: str, opinion: str) -> dict:
    return {"signature": {"decision": decision, "opinion": opinion}}


async def apply_and_review(engine: CaseEngine, applications: ApplicationService):
    started = await applications.apply("residence-permit", FORM, applicant=SINGLE_MOTHER)
    [review] = started.ready_tasks
    assert (review.task_spec, review.department) == ("review", "police_station")
    countersign = await engine.complete_task(review.id, APPROVE, actor="police_station01")
    assert [(t.name, t.department, t.form_key) for t in countersign.ready_tasks] == [
        ("会签", "police_station", "countersign.json")] * 2
    await assert_round_trip(engine, started.id)
    return started, countersign.ready_tasks


async def test_supplement_pauses_the_clock_then_countersign_issues_a_one_year_permit(db: str, settings) -> None:
    clock = Clock(cst(2026, 12, 3, 9, 0))  # Thursday
    engine = build_engine(settings, deps_overrides={"clock": clock})
    applications = application_service(engine, settings)
    calendar = WorkingCalendar()

    started = await applications.apply("residence-permit", FORM, applicant=SINGLE_MOTHER)
    case = await Case.get(id=started.id)
    # promised 7 working days from Thursday 12-03: 12-04, 07 … 11, 14 → due at the end of Monday 12-14
    assert case.due_at == cst(2026, 12, 15, 0, 0) == calendar.due_after_working_days(clock.now, 7)
    original_due = case.due_at
    data = await assert_round_trip(engine, started.id)
    assert data["household_local"] is False and data["person"]["household_region"] == "440106"
    assert data["meets_residence_period"] is True

    # Friday 15:00: the officer asks for more material; the case waits in the applicant's lane
    clock.now = cst(2026, 12, 4, 15, 0)
    returned = await engine.complete_task(started.ready_tasks[0].id, SUPPLEMENT, actor="police_station01")
    [supplement] = returned.ready_tasks
    assert (supplement.task_spec, supplement.lane, supplement.form_key) == (
        "supplement_task", "applicant", "supplement.json")
    case = await Case.get(id=started.id)
    assert case.paused_at == clock.now and case.due_at == original_due
    assert await Job.filter(case_id=case.id, kind__in=["sla_warning", "sla_escalation"], status="paused").count() == 2
    data = await assert_round_trip(engine, started.id)
    assert data["supplement_rounds"] == 1
    assert data["supplement_notice"] == "请补正：重新拍摄白底证件照；提供房屋租赁合同登记备案证明"

    # the applicant resubmits on Tuesday 15:00: four calendar days, but only two working days (Fri
    # evening + Mon + Tue morning = 9 h + 24 h + 15 h) went by, and the due time moves by exactly that
    clock.now = cst(2026, 12, 8, 15, 0)
    resumed = await engine.complete_task(supplement.id, {"supplement": {
        "note": "已重新拍摄证件照并上传租赁备案证明", "photo_ref": "ZP20261207-0815",
        "attachments": ["zlba-20261207.pdf"]}}, actor="openid-huangli")
    [review_again] = resumed.ready_tasks
    assert review_again.task_spec == "review" and review_again.department == "police_station"
    case = await Case.get(id=started.id)
    waited = calendar.working_seconds(cst(2026, 12, 4, 15, 0), clock.now)
    assert waited == 2 * 86400
    assert case.paused_at is None
    assert case.due_at == original_due + timedelta(days=2) == cst(2026, 12, 17, 0, 0)
    assert (await HumanTask.get(id=review_again.id)).due_at == case.due_at
    jobs = {j.kind: j for j in await Job.filter(case_id=case.id, status="pending", kind__startswith="sla_")}
    assert jobs["sla_escalation"].due_at == case.due_at
    events = [e for e in await CaseEvent.filter(case_id=case.id).order_by("id") if e.kind.startswith("sla_")]
    assert [e.kind for e in events] == ["sla_paused", "sla_resumed"]
    assert events[1].detail["paused_seconds"] == waited
    data = await assert_round_trip(engine, started.id)
    assert data["form"]["photo_ref"] == "ZP20261207-0815"  # the correction updates the application

    # Wednesday: approve, then 会签 by two officers
    clock.now = cst(2026, 12, 9, 10, 0)
    countersign = await engine.complete_task(review_again.id, APPROVE, actor="police_station01")
    first, second = countersign.ready_tasks
    assert {t.department for t in countersign.ready_tasks} == {"police_station"}
    await assert_round_trip(engine, started.id)
    half = await engine.complete_task(first.id, sign("approve", "同意签发"), actor="police_station01")
    assert half.status == "running" and [t.id for t in half.ready_tasks] == [second.id]
    await assert_round_trip(engine, started.id)
    done = await engine.complete_task(second.id, sign("approve", "同意，准予签发居住证"), actor="police_station_sup")
    assert done.status == "completed"
    data = await assert_round_trip(engine, started.id)
    assert data["outcome"] == "approved"
    assert [s["decision"] for s in data["signatures"]] == ["approve", "approve"]

    permit = data["permit"]
    assert permit["name"] == "居住证" and permit["valid_from"] == "2026-12-09" and permit["valid_to"] == "2027-12-08"
    [row] = await Certificate.filter(case_id=started.id)
    assert row.type_code == RESIDENCE_PERMIT and row.holder_name == "黄丽" and row.identifier == permit["identifier"]
    assert (row.valid_from, row.valid_to) == (date(2026, 12, 9), date(2027, 12, 8))  # one year
    assert row.data["extra"]["居住地址"] == FORM["address"]["detail"] and row.jurisdiction_code == "310115"
    assert data["result_message"] == f"居住证已签发，证照编号 {permit['number']}，有效期至 2027-12-08"
    assert await Job.filter(case_id=started.id, status__in=["pending", "paused"]).count() == 0
    case = await Case.get(id=started.id)
    assert case.status == "completed" and case.completed_at == clock.now.astimezone(case.completed_at.tzinfo)


@pytest.mark.parametrize("decisions", [["approve", "reject"], ["reject"]],
                         ids=["second-officer-rejects", "first-rejection-ends-the-countersign"])
async def test_any_countersign_rejection_refuses_the_permit(
        engine: CaseEngine, applications: ApplicationService, decisions: list[str]) -> None:
    started, tasks = await apply_and_review(engine, applications)
    opinions = {"approve": "同意", "reject": "租赁备案地址与实际居住地址不一致，不同意签发"}
    officers = ("police_station01", "police_station_sup")
    for task, decision, officer in zip(tasks, decisions, officers, strict=False):
        result = await engine.complete_task(task.id, sign(decision, opinions[decision]), actor=officer)
        await assert_round_trip(engine, started.id)
    assert result.status == "completed" and result.ready_tasks == []
    data = await assert_round_trip(engine, started.id)
    assert data["outcome"] == "rejected"
    assert data["reject_reason"] == "会签未通过：租赁备案地址与实际居住地址不一致，不同意签发"
    assert [s["decision"] for s in data["signatures"]] == decisions
    assert await Certificate.filter(case_id=started.id).count() == 0
    states = sorted(t.state for t in await HumanTask.filter(case_id=started.id, task_spec="countersign [child]"))
    # a rejection ends the countersign: a signer who has not signed yet has nothing left to do
    assert states == (["completed", "completed"] if len(decisions) == 2 else ["cancelled", "completed"])


async def test_review_can_refuse_outright(engine: CaseEngine, applications: ApplicationService) -> None:
    started = await applications.apply("residence-permit", FORM, applicant=SINGLE_MOTHER)
    refused = await engine.complete_task(started.ready_tasks[0].id, {
        "review_outcome": "reject", "review_opinion": "居住登记不满半年，不符合申领条件"}, actor="police_station01")
    assert refused.status == "completed"
    data = await assert_round_trip(engine, started.id)
    assert (data["outcome"], data["reject_reason"]) == ("rejected", "居住登记不满半年，不符合申领条件")


async def test_a_supplement_request_must_say_what_to_supplement(
        engine: CaseEngine, applications: ApplicationService) -> None:
    from engine.errors import ValidationFailed

    started = await applications.apply("residence-permit", FORM, applicant=SINGLE_MOTHER)
    with pytest.raises(ValidationFailed) as problems:
        await engine.complete_task(started.ready_tasks[0].id, {"review_outcome": "supplement",
                                                               "review_opinion": "材料不全"})
    assert "supplement_request" in problems.value.fields


async def test_local_residents_are_refused_without_a_review(
        engine: CaseEngine, applications: ApplicationService) -> None:
    started = await applications.apply("residence-permit", {**FORM, "phone": "13917724680"}, applicant=LOCAL_40)
    assert started.status == "completed" and started.ready_tasks == []
    data = await assert_round_trip(engine, started.id)
    assert data["person"]["local"] is True
    assert (data["outcome"], data["reject_reason"]) == ("rejected", "申请人为本市户籍人员，无需申领居住证")
    assert (await Case.get(id=started.id)).due_at is None  # nothing left to promise


async def test_id_card_certificate_is_used_instead_of_an_upload(
        engine: CaseEngine, applications: ApplicationService) -> None:
    card = await issue_certificate(engine, ID_CARD, SINGLE_MOTHER)
    started = await applications.apply("residence-permit", FORM, applicant=SINGLE_MOTHER)
    materials = {m["name"]: m for m in (await assert_round_trip(engine, started.id))["materials"]}
    assert materials["居民身份证"]["satisfied"] and materials["居民身份证"]["by_certificate"] == card["identifier"]
    assert materials["近期免冠证件照"]["status"] == "needs_upload"


async def test_sla_warns_at_80_percent_and_escalates_to_the_supervisor_at_the_deadline(db: str, settings) -> None:
    clock = Clock(cst(2026, 11, 30, 9, 0))  # Monday
    engine = build_engine(settings, deps_overrides={"clock": clock})
    applications = application_service(engine, settings)
    started = await applications.apply("residence-permit", FORM, applicant=SINGLE_MOTHER)
    case = await Case.get(id=started.id)
    assert case.due_at == cst(2026, 12, 10, 0, 0)  # end of the 7th working day after Monday 11-30
    warning = await Job.get(case_id=case.id, kind="sla_warning")
    calendar = WorkingCalendar()
    total = calendar.working_seconds(clock.now, case.due_at)
    assert calendar.working_seconds(clock.now, warning.due_at) == pytest.approx(total * 0.8)

    runner = JobRunner(engine)
    clock.now = warning.due_at - timedelta(minutes=1)
    assert await runner.run_due() == 0
    clock.now = warning.due_at + timedelta(seconds=1)
    assert await runner.run_due() == 1
    [event] = await CaseEvent.filter(case_id=case.id, kind="sla_warning")
    assert event.detail["message"] == "办件即将超期（已用时限 80%）"
    assert await HumanTask.filter(case_id=case.id, kind="escalation").count() == 0

    clock.now = case.due_at + timedelta(seconds=1)
    assert await runner.run_due() == 1 and await runner.run_due() == 0
    [escalation] = await HumanTask.filter(case_id=case.id, kind="escalation")
    assert (escalation.name, escalation.department, escalation.state) == ("超期督办", "supervisor", "ready")
    assert await CaseEvent.filter(case_id=case.id, kind="sla_escalated", department="supervisor").count() == 1
    # the overdue review is still with the police station, and the case still runs and round-trips
    [review] = await HumanTask.filter(case_id=case.id, kind="bpmn", state="ready")
    assert review.department == "police_station"
    assert (await Case.get(id=case.id)).status == "running"
    await assert_round_trip(engine, started.id)
    assert clock.now.astimezone(CST).date() == date(2026, 12, 10)


async def test_countersign_withdrawn_and_signed_again_still_issues_the_permit(
        engine: CaseEngine, applications: ApplicationService) -> None:
    """Issue #14: officer A signs, withdraws (撤回) and signs again, officer B signs — both approved,
    so the permit is issued; the withdrawn signature leaves no trace in ``signatures``."""
    from engine.workbench.task_ops import withdraw_completion

    started, (first, second) = await apply_and_review(engine, applications)
    await engine.complete_task(first.id, sign("approve", "同意"), actor="police_station01")
    withdrawn = await withdraw_completion(engine, first.id, actor="police_station01")
    assert sorted(t.id for t in withdrawn.ready_tasks) == sorted([first.id, second.id])
    data = await assert_round_trip(engine, started.id)
    _, workflow, _ = await engine.load(started.id)
    [parent] = [t for t in workflow.get_tasks() if t.task_spec.name == "countersign"]
    assert parent.data["signatures"] == []  # the withdrawn signature is gone from the collection
    await engine.complete_task(first.id, sign("approve", "同意签发"), actor="police_station01")
    await assert_round_trip(engine, started.id)
    done = await engine.complete_task(second.id, sign("approve", "同意，准予签发居住证"), actor="police_station_sup")
    assert done.status == "completed"
    data = await assert_round_trip(engine, started.id)
    assert data["outcome"] == "approved", data.get("result_message")
    assert [s["opinion"] for s in data["signatures"]] == ["同意签发", "同意，准予签发居住证"]
    assert await Certificate.filter(case_id=started.id).count() == 1
