"""差评整改 (platform process): follow-up within 1 working day and rectification within 15, each
guarded by a boundary timer that escalates to the supervisor lane; the evaluator may review again.

Spiff timers run on real time, so the escalation tests give due times a fraction of a second
ahead (the ``deadlines`` start data) and wait for them: under 1.5 s in all.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from engine.citizen.applications import ApplicationService
from engine.errors import ValidationFailed
from engine.kernel.cases import CaseEngine, CaseResult
from engine.kernel.jobs import JobRunner
from engine.kernel.sla import CST
from engine.store.models import Case, CaseEvent, HumanTask, Job
from tests.processes.conftest import assert_round_trip

REVIEW = {"level": "非常不满意", "comment": "窗口告知材料不全，前后跑了三次才办成老年人优待证",
          "case_no": "SENIOR-CARD-20261120-7KQ2M9XA", "service": "senior-card", "department": "mca"}
FOLLOW_UP = {"follow_up": {"contacted": True, "method": "phone", "finding": "substantiated",
                           "note": "电话联系评价人，确认首次办理时未一次性告知所需材料"}}
RECTIFY = {"rectification": {"measures": "修订一次性告知单，组织窗口人员培训；向评价人致歉",
                             "result": "告知单已更新并上线，评价人表示认可", "completed_on": "2026-12-04"}}
SUPERVISE = {"supervision": {"opinion": "责成民政局限期整改并通报", "measures": "约谈窗口负责人",
                             "result": "已督促整改完毕，评价人接受处理结果"}}


def in_seconds(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


async def start_rectification(engine: CaseEngine, applications: ApplicationService, review: dict[str, Any],
                              deadlines: dict[str, str] | None = None) -> CaseResult:
    """What the 好差评 service does on a bad review: validate the review, start the platform item."""
    item = applications.catalog.get("rectification")
    applications.validate_form(item, review)
    definition = await applications.definition_for(item)
    data: dict[str, Any] = {"review": review}
    if deadlines is not None:
        data["deadlines"] = deadlines
    return await engine.start_case(definition, service=item.slug, data=data, channel="web",
                                   sla_working_days=item.sla_working_days, item_version=item.version)


async def fire_due_timers(engine: CaseEngine, wait: float) -> int:
    await asyncio.sleep(wait)
    return await JobRunner(engine).run_due()


def test_rectification_is_a_platform_item_not_offered_to_citizens(applications: ApplicationService) -> None:
    catalog = applications.catalog
    assert "rectification" in catalog
    assert "rectification" not in {i.slug for i in catalog.items()}
    item = catalog.get("rectification")
    assert item.platform and item.sla_working_days == 15 and item.department == "mca"
    with pytest.raises(ValidationFailed) as problems:  # only bad reviews start a rectification
        applications.validate_form(item, {**REVIEW, "level": "满意"})
    assert "level" in problems.value.fields


async def test_on_time_follow_up_and_rectification_complete_and_allow_a_new_review(
        engine: CaseEngine, applications: ApplicationService) -> None:
    calendar = engine.deps.calendar
    now = engine.deps.clock()
    deadlines = {"follow_up_due": calendar.due_after_working_days(now, 1).astimezone(CST).isoformat(),
                 "rectify_due": calendar.due_after_working_days(now, 15).astimezone(CST).isoformat()}
    started = await start_rectification(engine, applications, REVIEW, deadlines)
    [follow_up] = started.ready_tasks
    assert (follow_up.task_spec, follow_up.department, follow_up.form_key) == ("follow_up", "mca", "follow_up.json")
    data = await assert_round_trip(engine, started.id)
    assert data["deadlines"] == deadlines and data["responsible_department"] == "mca"
    assert data["re_review_allowed"] is False
    [timer] = await Job.filter(case_id=started.id, kind="timer", status="pending")
    assert timer.due_at == datetime.fromisoformat(deadlines["follow_up_due"])
    case = await Case.get(id=started.id)
    assert case.applicant is None and case.due_at == calendar.due_after_working_days(now, 15)

    rectify = await engine.complete_task(follow_up.id, FOLLOW_UP, actor="mca01")
    [task] = rectify.ready_tasks
    assert (task.task_spec, task.department) == ("rectify", "mca")
    await assert_round_trip(engine, started.id)
    [timer] = await Job.filter(case_id=started.id, kind="timer", status="pending")
    assert timer.due_at == datetime.fromisoformat(deadlines["rectify_due"])

    done = await engine.complete_task(task.id, RECTIFY, actor="mca01")
    assert done.status == "completed" and done.ready_tasks == []
    data = await assert_round_trip(engine, started.id)
    assert (data["outcome"], data["escalated"], data["re_review_allowed"]) == ("rectified", False, True)
    assert data["result_message"] == "已整改：告知单已更新并上线，评价人表示认可"
    assert await Job.filter(case_id=started.id, status="pending").count() == 0
    assert await HumanTask.filter(case_id=started.id, department="supervisor").count() == 0


async def test_without_deadlines_the_process_counts_weekdays_in_china_time(
        engine: CaseEngine, applications: ApplicationService) -> None:
    started = await start_rectification(engine, applications, REVIEW)
    data = await assert_round_trip(engine, started.id)
    follow_up_due = datetime.fromisoformat(data["follow_up_due"])
    rectify_due = datetime.fromisoformat(data["rectify_due"])
    assert follow_up_due.utcoffset() == timedelta(hours=8) and (follow_up_due.hour, follow_up_due.minute) == (0, 0)
    now = datetime.now(timezone.utc)
    assert timedelta(hours=24) < follow_up_due - now <= timedelta(days=4)  # end of the next weekday
    assert timedelta(days=19) < rectify_due - now <= timedelta(days=22)  # 15 weekdays: three weeks
    [timer] = await Job.filter(case_id=started.id, kind="timer", status="pending")
    assert timer.due_at == follow_up_due


async def test_unsubstantiated_review_is_closed_after_follow_up(
        engine: CaseEngine, applications: ApplicationService) -> None:
    started = await start_rectification(engine, applications, {**REVIEW, "level": "不满意"})
    finding = {"follow_up": {**FOLLOW_UP["follow_up"], "finding": "unsubstantiated",
                             "note": "经调取窗口录像核实，材料一次性告知到位"}}
    done = await engine.complete_task(started.ready_tasks[0].id, finding, actor="mca01")
    assert done.status == "completed"
    data = await assert_round_trip(engine, started.id)
    assert (data["outcome"], data["re_review_allowed"]) == ("unsubstantiated", True)


async def test_overdue_follow_up_escalates_to_the_supervisor_lane(
        engine: CaseEngine, applications: ApplicationService) -> None:
    started = await start_rectification(engine, applications, REVIEW,
                                        {"follow_up_due": in_seconds(0.3), "rectify_due": in_seconds(3600)})
    [follow_up] = started.ready_tasks
    await assert_round_trip(engine, started.id)
    assert await fire_due_timers(engine, 0.45) == 1

    [supervise] = await HumanTask.filter(case_id=started.id, state="ready")
    assert (supervise.task_spec, supervise.lane, supervise.department, supervise.form_key) == (
        "supervise", "supervisor", "supervisor", "supervise.json")
    assert (await HumanTask.get(id=follow_up.id)).state == "cancelled"  # the timer interrupted the follow-up
    data = await assert_round_trip(engine, started.id)
    assert (data["escalated"], data["escalation_stage"]) == (True, "follow_up")

    done = await engine.complete_task(supervise.id, SUPERVISE, actor="supervisor_sup")
    assert done.status == "completed"
    data = await assert_round_trip(engine, started.id)
    assert (data["outcome"], data["re_review_allowed"]) == ("escalated", True)
    assert data["result_message"] == "经督办处理：已督促整改完毕，评价人接受处理结果"
    steps = [e.task_name for e in await CaseEvent.filter(case_id=started.id, kind="step_done").order_by("id")]
    assert "回访超时转督办" in steps and "差评整改" not in steps
    assert await Job.filter(case_id=started.id, status="pending").count() == 0


async def test_overdue_rectification_escalates_to_the_supervisor_lane(
        engine: CaseEngine, applications: ApplicationService) -> None:
    started = await start_rectification(engine, applications, REVIEW,
                                        {"follow_up_due": in_seconds(3600), "rectify_due": in_seconds(0.4)})
    rectify = await engine.complete_task(started.ready_tasks[0].id, FOLLOW_UP, actor="mca01")
    [task] = rectify.ready_tasks
    assert task.task_spec == "rectify"
    await assert_round_trip(engine, started.id)
    assert await fire_due_timers(engine, 0.55) == 1

    [supervise] = await HumanTask.filter(case_id=started.id, state="ready")
    assert (supervise.task_spec, supervise.department) == ("supervise", "supervisor")
    assert (await HumanTask.get(id=task.id)).state == "cancelled"
    data = await assert_round_trip(engine, started.id)
    assert (data["escalated"], data["escalation_stage"]) == (True, "rectification")
    assert data["follow_up"]["finding"] == "substantiated"  # the follow-up done on time is kept

    done = await engine.complete_task(supervise.id, SUPERVISE, actor="supervisor_sup")
    assert done.status == "completed"
    assert (await assert_round_trip(engine, started.id))["re_review_allowed"] is True


async def test_whoever_did_the_follow_up_does_not_supervise_the_case(
        engine: CaseEngine, applications: ApplicationService) -> None:
    """回避 (recuseFrom="follow_up, rectify"): a supervisor who did the follow-up of this case may not
    supervise its overdue rectification; a colleague may."""
    from engine.workbench.assignment import RecusalRequired

    started = await start_rectification(engine, applications, REVIEW,
                                        {"follow_up_due": in_seconds(3600), "rectify_due": in_seconds(0.4)})
    await engine.complete_task(started.ready_tasks[0].id, FOLLOW_UP, actor="supervisor_sup")
    assert await fire_due_timers(engine, 0.55) == 1
    [supervise] = await HumanTask.filter(case_id=started.id, state="ready")
    with pytest.raises(RecusalRequired) as refused:
        await engine.complete_task(supervise.id, SUPERVISE, actor="supervisor_sup")
    assert refused.value.code == "recusal_required" and refused.value.kind == "conflict"
    assert "「差评回访核实」" in refused.value.message and "「差评整改督办」" in refused.value.message
    assert (await HumanTask.get(id=supervise.id)).state == "ready"  # nothing changed
    done = await engine.complete_task(supervise.id, SUPERVISE, actor="supervisor02")
    assert done.status == "completed"


async def test_the_follow_up_task_is_due_when_the_citizen_was_promised_contact(
        engine: CaseEngine, applications: ApplicationService) -> None:
    """好差评 promises contact "1个工作日内": the 回访核实 task is due then (its boundary timer), not at
    the case's 15-working-day limit; 整改 is due at its own deadline."""
    now = engine.deps.clock()
    calendar = engine.deps.calendar
    started = await applications.start_rectification(REVIEW)
    [follow_up] = await HumanTask.filter(case_id=started.id, state="ready")
    case = await Case.get(id=started.id)
    one_day = calendar.due_after_working_days(now, 1)
    assert follow_up.due_at == one_day < case.due_at == calendar.due_after_working_days(now, 15)
    [rectify] = (await engine.complete_task(follow_up.id, FOLLOW_UP, actor="mca01")).ready_tasks
    row = await HumanTask.get(id=rectify.id)
    assert row.due_at == min(case.due_at, calendar.due_after_working_days(now, 15))
