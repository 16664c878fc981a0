"""Generic 补正 (engine.kernel.supplement) on the 企业开办 bundle with a pinned clock: the held task survives
other departments' steps, the SLA clock stays paused until the applicant answers and then shifts
the due time by the working time it waited; 退回 past a held task and the applicant's withdrawal
cancel the request."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from engine.citizen.applications import ApplicationService
from engine.citizen.case_views import owned_case, withdraw
from engine.errors import Conflict
from engine.kernel.cases import CaseEngine
from engine.kernel.supplement import request_supplement, supply
from engine.store.models import Case, CaseEvent, HumanTask, Job
from engine.workbench.task_ops import return_to_step
from tests.processes.conftest import Clock, application_service
from tests.processes.test_business_startup import ACCEPT, BRANCHES, FORM, NOW, WANG

REASON = "请补充印章样式确认书"


@pytest.fixture
def clock(engine: CaseEngine) -> Clock:
    pinned = Clock(NOW)
    engine.deps.clock = pinned
    return pinned


@pytest.fixture
def applications(engine: CaseEngine, settings: Any) -> ApplicationService:
    return application_service(engine, settings)


async def _branches(applications: ApplicationService, engine: CaseEngine, clock: Clock) -> tuple[int, dict]:
    started = await applications.apply("business-startup", FORM, applicant=WANG, channel="mobile",
                                       actor=WANG.openid)
    clock.now += timedelta(minutes=30)
    step = await engine.complete_task(started.ready_tasks[0].id, ACCEPT, actor="samr01")
    return step.id, {t.task_spec: t.id for t in step.ready_tasks}


async def _sla_statuses(case_id: int) -> set[str]:
    return {j.status for j in await Job.filter(case_id=case_id, kind__in=("sla_warning", "sla_escalation"))}


async def test_held_task_survives_other_steps_and_the_clock_shifts_by_the_wait(
        engine: CaseEngine, applications: ApplicationService, clock: Clock) -> None:
    case_id, tasks = await _branches(applications, engine, clock)
    due_before = (await Case.get(id=case_id)).due_at
    clock.now += timedelta(hours=1)
    paused_at = clock.now
    psb = await HumanTask.get(id=tasks["psb_seal"])
    side = await request_supplement(engine, psb, actor="psb01", reason=REASON)
    assert (side.kind, side.lane, side.department, side.state) == ("supplement", "applicant", None, "ready")
    assert (await Case.get(id=case_id)).paused_at == paused_at and await _sla_statuses(case_id) == {"paused"}
    assert {s["department"]: s["status"] for s in await engine.subcases(case_id)}["psb"] == "running"
    with pytest.raises(Conflict):  # held: not completable, not asked twice
        await request_supplement(engine, await HumanTask.get(id=psb.id), actor="psb01", reason=REASON)

    # another department completes its branch meanwhile: the held row stays, the clock stays paused
    clock.now += timedelta(hours=2)
    _, tax_data, _ = BRANCHES["tax_register"]
    await engine.complete_task(tasks["tax_register"], tax_data, actor="tax01")
    assert await HumanTask.filter(id=psb.id).count() == 1
    assert (await HumanTask.get(id=psb.id)).state == "waiting"
    assert (await Case.get(id=case_id)).paused_at == paused_at
    assert await CaseEvent.filter(case_id=case_id, kind="sla_resumed").count() == 0

    clock.now += timedelta(hours=3)
    back = await supply(engine, side, {"note": "已补充", "materials": [{"name": "印章样式确认书"}]},
                        actor="citizen:1")
    assert (back.state, back.assignee) == ("claimed", "psb01")
    case = await Case.get(id=case_id)
    waited = engine.deps.calendar.working_seconds(paused_at, clock.now)
    assert waited == 5 * 3600 and case.paused_at is None  # Monday: all working time
    assert case.due_at == engine.deps.calendar.advance(due_before, waited)
    assert (await HumanTask.get(id=psb.id)).due_at == case.due_at
    assert await _sla_statuses(case_id) == {"pending"}
    _, workflow, _ = await engine.load(case_id)
    data = workflow.get_task_from_id(psb.id).data
    assert data["supplements"][0]["reason"] == REASON and data["supplements"][0]["data"]["note"] == "已补充"
    assert {"name": "印章样式确认书", "supplemented": True} in data["materials"]
    with pytest.raises(Conflict):
        await supply(engine, side, {}, actor="citizen:1")
    _, seal_data, _ = BRANCHES["psb_seal"]
    await engine.complete_task(psb.id, seal_data, actor="psb01")
    assert (await HumanTask.get(id=psb.id)).state == "completed"


async def test_return_past_a_held_task_cancels_the_request(
        engine: CaseEngine, applications: ApplicationService, clock: Clock) -> None:
    case_id, tasks = await _branches(applications, engine, clock)
    side = await request_supplement(engine, await HumanTask.get(id=tasks["psb_seal"]), actor="psb01",
                                    reason=REASON)
    clock.now += timedelta(hours=1)
    await return_to_step(engine, case_id, target_task_spec="intake_check", actor="tax01", department="tax",
                         reason="受理信息有误")
    assert (await HumanTask.get(id=tasks["psb_seal"])).state == "cancelled"
    assert (await HumanTask.get(id=side.id)).state == "cancelled"
    assert (await Case.get(id=case_id)).paused_at is None


async def test_applicant_withdrawal_cancels_a_held_intake(
        engine: CaseEngine, applications: ApplicationService, clock: Clock) -> None:
    started = await applications.apply("business-startup", FORM, applicant=WANG, channel="mobile",
                                       actor=WANG.openid)
    intake = await HumanTask.get(id=started.ready_tasks[0].id)
    side = await request_supplement(engine, intake, actor="samr01", reason=REASON)
    await withdraw(engine, await owned_case(started.id, WANG.openid), actor=WANG.openid)
    states = {t.id: t.state for t in await HumanTask.filter(case_id=started.id)}
    assert states == {intake.id: "cancelled", side.id: "cancelled"}
    assert await _sla_statuses(started.id) == {"cancelled"}
