"""The notification outbox (engine.platform.notify): rows written in the step's own transaction — a
rolled-back step notifies nobody — one citizen message per step, staff messages for new tasks,
补正, SLA warnings, 催办 and 抄送, and the message centre's read receipts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from engine.accountability.privacy import PiiKeys
from engine.citizen.applications import ApplicationService
from engine.kernel.cases import CaseEngine
from engine.kernel.jobs import JobRunner
from engine.kernel.supplement import request_supplement
from engine.platform.notify import UrgeTooSoon, list_messages, mark_read, urge
from engine.platform.notify.outbox import PHONE_CONTEXT
from engine.store.models import Case, CaseEvent, HumanTask, Job, StaffUser
from engine.store.notify_models import Notification, NotificationDelivery
from tests.processes.conftest import Clock, application_service
from tests.processes.test_business_startup import FORM as STARTUP_FORM
from tests.processes.test_senior_card import FORM, NOW, UNKNOWN, WANG, ZHANG


@pytest.fixture
def clock(engine: CaseEngine) -> Clock:
    pinned = Clock(NOW)
    engine.deps.clock = pinned
    return pinned


@pytest.fixture
def applications(engine: CaseEngine, settings: Any) -> ApplicationService:
    return application_service(engine, settings)


@pytest.fixture
async def officers(engine: CaseEngine) -> None:
    for username, departments in (("mca01", ["mca"]), ("mca02", ["mca"]), ("samr01", ["samr"]),
                                  ("psb01", ["psb"]), ("boss", ["supervisor", "mca"])):
        await StaffUser.create(username=username, name=username.upper(), password_hash="-",
                               departments=departments, roles=["officer"])


async def _citizen(openid: str) -> list[Notification]:
    return list(await Notification.filter(recipient_kind="citizen", recipient=openid).order_by("id"))


async def _staff(username: str, event: str | None = None) -> list[Notification]:
    query = Notification.filter(recipient_kind="staff", recipient=username)
    return list(await (query.filter(event=event) if event else query).order_by("id"))


async def test_auto_approval_gives_decision_certificate_and_finished_messages(
        engine: CaseEngine, applications: ApplicationService, clock: Clock) -> None:
    started = await applications.apply("senior-card", FORM, applicant=WANG)
    assert started.status == "completed"
    received, decision, certificate, message = await _citizen(WANG.openid)
    assert (received.event, received.title) == ("application_received", "申请已提交")
    assert started.case_no in received.body
    assert (decision.event, decision.title) == ("decision_made", "审批结果：审批通过")
    assert "申请人年满60周岁且为本市户籍" in decision.body
    assert (certificate.event, certificate.title) == ("certificate_issued", "电子证照已签发")
    assert "「老年人优待证」已签发" in certificate.body
    assert (message.event, message.case_id, message.case_no) == ("case_finished", started.id, started.case_no)
    assert message.title == "办件已办结"
    assert "审批通过" in message.body and "自动准予" in message.body and "老年人优待证" in message.body
    assert message.page == f"pages/case/index?id={started.id}" and message.read_at is None
    assert await NotificationDelivery.all().count() == 0  # no outside channel configured here


async def test_a_rolled_back_step_notifies_nobody(
        engine: CaseEngine, applications: ApplicationService, clock: Clock, officers: None) -> None:
    started = await applications.apply("senior-card", {**FORM, "phone": "13512345678"}, applicant=UNKNOWN)
    [task] = started.ready_tasks
    before = await Notification.all().count()
    assert [m.event for m in await _citizen(UNKNOWN.openid)] == ["application_received"]
    assert {m.recipient for m in await Notification.filter(event="task_assigned")} == {"mca01", "mca02", "boss"}

    async def fail_after_the_outbox(conn: Any, writes: list, now: Any) -> None:
        assert await Notification.filter(event="case_finished").using_db(conn).count() == 1  # written...
        raise RuntimeError("the step fails after its notifications were written")

    engine.deps.step_hooks.append(fail_after_the_outbox)
    with pytest.raises(RuntimeError):
        await engine.complete_task(task.id, {"review_approved": True, "review_opinion": "符合条件"}, actor="mca01")
    assert await Notification.all().count() == before  # ...and rolled back with the step
    assert (await Case.get(id=started.id)).status == "running"

    engine.deps.step_hooks.remove(fail_after_the_outbox)
    await engine.complete_task(task.id, {"review_approved": True, "review_opinion": "符合条件"}, actor="mca01")
    messages = await _citizen(UNKNOWN.openid)
    assert [m.event for m in messages] == ["application_received", "certificate_issued", "case_finished"]
    assert "经民政部门人工审核准予" in messages[-1].body


async def test_refusal_carries_the_reason(engine: CaseEngine, applications: ApplicationService, clock: Clock) -> None:
    started = await applications.apply("senior-card", {**FORM, "phone": "13601015566"}, applicant=ZHANG)
    await engine.complete_task(started.ready_tasks[0].id, {"review_approved": False,
                                                           "review_opinion": "未能提供本市居住证明"}, actor="mca02")
    last = (await _citizen(ZHANG.openid))[-1]
    assert last.event == "case_refused" and last.title == "申请未通过"
    assert "未能提供本市居住证明" in last.body


async def test_supplement_request_sms_keeps_the_phone_encrypted(
        db: str, settings: Any, clock: Clock) -> None:
    """With SMS configured, the 补正 message gets an SMS delivery whose phone is ciphertext only."""
    import dataclasses

    from engine import build_engine

    on = dataclasses.replace(settings, SMS_SECRET_ID="id", SMS_SECRET_KEY="key", SMS_SDK_APP_ID="1400000000")
    engine = build_engine(on)
    engine.deps.clock = clock
    applications = application_service(engine, on)
    started = await applications.apply("senior-card", {**FORM, "phone": "13512345678"}, applicant=UNKNOWN)
    row = await HumanTask.get(id=started.ready_tasks[0].id)
    await request_supplement(engine, row, actor="mca01", reason="请上传户口簿首页和本人页，或致电 13912345678")
    messages = await _citizen(UNKNOWN.openid)
    assert [m.event for m in messages] == ["application_received", "supplement_requested"]
    assert "请上传户口簿首页和本人页" in messages[-1].body and messages[-1].title == "请补正材料"
    assert "139****5678" in messages[-1].body and "13912345678" not in str(messages[-1].data)
    deliveries = await NotificationDelivery.filter(channel="sms").order_by("id")
    assert [d.delivery_key for d in deliveries] == [f"{m.id}:sms" for m in messages]
    for d in deliveries:
        assert "13512345678" not in (d.address_enc or "")
        assert PiiKeys.from_settings(on).decrypt(d.address_enc, context=PHONE_CONTEXT) == "13512345678"
    assert "13512345678" not in str([m.body for m in messages] + [m.data for m in messages])


async def test_sla_warning_and_urge_reach_the_officer_holding_the_task(
        engine: CaseEngine, applications: ApplicationService, clock: Clock, officers: None) -> None:
    from tests.processes.test_business_startup import WANG as FOUNDER

    started = await applications.apply("business-startup", STARTUP_FORM, applicant=FOUNDER, actor=FOUNDER.openid)
    [intake] = started.ready_tasks
    await HumanTask.filter(id=intake.id).update(state="claimed", assignee="samr01")
    warning = await Job.get(case_id=started.id, kind="sla_warning")
    clock.now = warning.due_at + timedelta(seconds=1)
    assert await JobRunner(engine).run_due() >= 1
    [message] = await _staff("samr01", "sla_warning")
    assert message.case_id == started.id and "80%" in message.body

    await urge(engine, started.id, by="supervisor", actor="boss", sender_name="督办中心 BOSS", reason="群众反映较急")
    [urged] = await _staff("samr01", "urged")
    assert "群众反映较急" in urged.body and urged.sender == "boss"
    with pytest.raises(UrgeTooSoon) as again:
        await urge(engine, started.id, by="supervisor", actor="boss", sender_name="BOSS")
    assert again.value.retry_after > 0
    await urge(engine, started.id, by="citizen", actor=FOUNDER.openid, sender_name="申请人")  # its own daily quota
    clock.now += timedelta(days=1)  # Tuesday: a new working day
    await urge(engine, started.id, by="supervisor", actor="boss", sender_name="BOSS")
    assert len(await _staff("samr01", "urged")) == 3
    assert await CaseEvent.filter(case_id=started.id, kind="urged").count() == 3


async def test_cc_reaches_the_colleague_and_reading_it_leaves_a_receipt(
        engine: CaseEngine, applications: ApplicationService, clock: Clock, officers: None) -> None:
    started = await applications.apply("senior-card", {**FORM, "phone": "13512345678"}, applicant=UNKNOWN)
    await engine.complete_task(started.ready_tasks[0].id, {"review_approved": True, "review_opinion": "符合条件"},
                               actor="mca01", opinion="准予", cc=["mca02", "mca01"], actor_name="MCA01")
    assert await _staff("mca01", "cc") == []  # never to oneself
    [cc] = await _staff("mca02", "cc")
    assert cc.title == "抄送：民政人工审核" and "MCA01" in cc.body and cc.sender == "mca01"
    listed = await list_messages("staff", "mca02")
    assert listed["unread"] == len(listed["items"]) >= 1
    view = await mark_read("staff", "mca02", cc.id, clock())
    assert view["read"] is True
    await mark_read("staff", "mca02", cc.id, clock())  # twice: one receipt
    [receipt] = await CaseEvent.filter(case_id=started.id, kind="cc_read")
    assert receipt.actor == "mca02" and receipt.detail == {"notification_id": cc.id, "sender": "mca01"}
    assert (await list_messages("staff", "mca02"))["unread"] == listed["unread"] - 1


async def test_urge_quota_holds_in_the_small_hours_china_time(
        engine: CaseEngine, applications: ApplicationService, clock: Clock, officers: None) -> None:
    """01:00 on a Monday in China is still Sunday in UTC: the working day starts at 00:00 China time."""
    from tests.processes.conftest import cst
    from tests.processes.test_business_startup import WANG as FOUNDER

    clock.now = cst(2026, 11, 30, 1, 0)
    started = await applications.apply("business-startup", STARTUP_FORM, applicant=FOUNDER, actor=FOUNDER.openid)
    await urge(engine, started.id, by="citizen", actor=FOUNDER.openid, sender_name="申请人")
    clock.now = cst(2026, 11, 30, 23, 59)
    with pytest.raises(UrgeTooSoon):
        await urge(engine, started.id, by="citizen", actor=FOUNDER.openid, sender_name="申请人")
    clock.now = cst(2026, 12, 1, 0, 1)
    await urge(engine, started.id, by="citizen", actor=FOUNDER.openid, sender_name="申请人")


async def test_an_ended_rectification_answers_the_rating_to_its_evaluator(
        engine: CaseEngine, applications: ApplicationService, clock: Clock) -> None:
    from tortoise.transactions import in_transaction

    from engine.kernel.cases import Step, StepWrite
    from engine.store.models import Evaluation

    rated = await applications.apply("senior-card", FORM, applicant=WANG)
    rectification = await applications.start_rectification(
        {"level": "非常不满意", "comment": "太慢", "case_no": rated.case_no, "service": "senior-card",
         "department": "mca"})
    await Evaluation.create(case_id=rated.id, level=5, comment="太慢", evaluator_hash="h",
                            rectification_case_no=rectification.case_no)
    case = await Case.get(id=rectification.id)
    before = len(await _citizen(WANG.openid))
    async with in_transaction() as conn:  # the step that ends the rectification case
        await engine.run_step_hooks(conn, [StepWrite(case=case, status="completed", data=None,
                                                     step=Step(events=[{"kind": "case_completed"}]))], NOW)
    told = (await _citizen(WANG.openid))[before:]
    assert [m.event for m in told] == ["rating_answered"]
    assert told[0].case_id == rated.id and rectification.case_no in told[0].body and "老年人优待证" in told[0].body
    async with in_transaction() as conn:  # any other step of the rectification case tells nobody
        await engine.run_step_hooks(conn, [StepWrite(case=case, status="running", data=None,
                                                     step=Step(events=[{"kind": "task_completed"}]))], NOW)
    assert len(await _citizen(WANG.openid)) == before + 1
