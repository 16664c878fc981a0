"""BPMN messages between cases, durably (engine.kernel.messages): a waiting case is stored with its
subscription; a message finds it by (name, correlation), early messages are kept and delivered when
the wait begins, expired ones are dropped, a repeated message id is delivered once, and a case's
message end event reaches the waiting case of another process."""

from __future__ import annotations

from datetime import timedelta

from engine.kernel.cases import CaseEngine
from engine.kernel.jobs import JobRunner
from engine.kernel.messages import correlation_key
from engine.store.audit_models import AuditRecord
from engine.store.models import BpmnMessage, Case, CaseEvent, Job, MessageSubscription
from tests.conftest import model_files


async def _waiter(engine: CaseEngine, order_no: str) -> int:
    definition = await engine.deploy(model_files("messages/waiter"))
    return (await engine.start_case(definition, service="waiter", data={"order_no": order_no})).id


async def _result(case_id: int, engine: CaseEngine) -> dict:
    return (await engine.load(case_id))[1].data["result"]


async def test_a_waiting_case_is_stored_with_its_subscription_and_catches_the_message(engine: CaseEngine) -> None:
    case_id = await _waiter(engine, "A-1")
    [sub] = await MessageSubscription.filter(case_id=case_id)
    assert (sub.name, sub.correlation) == ("order_done", {"order_no": "A-1"})
    assert sub.correlation_key == correlation_key({"order_no": "A-1"})

    other = await engine.messages.send("order_done", {"order_no": "B-2"}, {"status": "其他"}, source="system:test")
    assert (other.delivered, other.kept) == (0, True)
    assert (await Case.get(id=case_id)).status == "running"

    sent = await engine.messages.send("order_done", {"order_no": "A-1"}, {"status": "已办结"}, source="system:test",
                                      message_id="m-1")
    assert (sent.delivered, sent.kept, sent.duplicate) == (1, False, False)
    case = await Case.get(id=case_id)
    assert case.status == "completed"
    workflow = (await engine.load(case_id))[1]
    assert workflow.data["order_result"] == {"status": "已办结"}
    assert await MessageSubscription.filter(case_id=case_id).count() == 0
    [event] = await CaseEvent.filter(case_id=case_id, kind="message_received")
    assert event.task_name == "等待订单办结" and event.detail["message_id"] == "m-1"
    assert event.actor == "system:test"
    assert await AuditRecord.filter(kind="message.receive", case_no=case.case_no).count() == 1
    assert (await BpmnMessage.get(message_id="m-1")).status == "delivered"


async def test_a_repeated_message_id_is_delivered_once(engine: CaseEngine) -> None:
    first, second = await _waiter(engine, "A-1"), await _waiter(engine, "A-1")
    sent = await engine.messages.send("order_done", {"order_no": "A-1"}, {"status": "一"}, source="x", message_id="dup")
    assert sent.delivered == 2
    again = await engine.messages.send("order_done", {"order_no": "A-1"}, {"status": "二"}, source="x", message_id="dup")
    assert (again.delivered, again.duplicate) == (2, True)
    third = await _waiter(engine, "A-1")  # the repeat was not kept for a later receiver either
    await JobRunner(engine).run_due()
    assert (await Case.get(id=third)).status == "running"
    for case_id in (first, second):
        assert await CaseEvent.filter(case_id=case_id, kind="message_received").count() == 1
    assert await BpmnMessage.filter(message_id="dup").count() == 1


async def test_an_early_message_is_kept_and_delivered_when_the_wait_begins(engine: CaseEngine) -> None:
    sent = await engine.messages.send("order_done", {"order_no": "E-1"}, {"status": "先到"}, source="x")
    assert (sent.delivered, sent.kept) == (0, True)
    case_id = await _waiter(engine, "E-1")
    assert await Job.filter(kind="message", case_id=case_id, status="pending").count() == 1
    runner = JobRunner(engine)
    assert await runner.run_due() >= 1
    assert (await Case.get(id=case_id)).status == "completed"
    assert (await _result(case_id, engine))["reason"] == "已收到：先到"
    assert (await BpmnMessage.get(message_id=sent.message_id)).status == "delivered"
    later = await _waiter(engine, "E-1")  # a kept message goes to one receiver
    await runner.run_due()
    assert (await Case.get(id=later)).status == "running"


async def test_kept_messages_expire_and_are_dropped_by_the_worker(engine: CaseEngine) -> None:
    now = engine.deps.clock()
    sent = await engine.messages.send("order_done", {"order_no": "X-1"}, {"status": "过期"}, source="x")
    engine.deps.clock = lambda: now + engine.deps.message_keep + timedelta(seconds=1)
    assert await engine.messages.run_pending() == 1
    assert (await BpmnMessage.get(message_id=sent.message_id)).status == "expired"
    case_id = await _waiter(engine, "X-1")
    await JobRunner(engine).run_due()
    assert (await Case.get(id=case_id)).status == "running"


async def test_a_message_end_event_of_one_case_reaches_the_case_of_another_process(engine: CaseEngine) -> None:
    waiting = await _waiter(engine, "C-9")
    unrelated = await _waiter(engine, "C-10")
    definition = await engine.deploy(model_files("messages/sender"))
    started = await engine.start_case(definition, service="sender", data={"order_no": "C-9"})
    await engine.complete_task(started.ready_tasks[0].id, {"status": "刻制完成"}, actor="psb01")
    assert (await Case.get(id=started.id)).status == "completed"
    assert (await Case.get(id=waiting)).status == "completed"
    assert (await _result(waiting, engine))["reason"] == "已收到：刻制完成"
    assert (await Case.get(id=unrelated)).status == "running"
    [sent] = await CaseEvent.filter(case_id=started.id, kind="message_sent")
    row = await BpmnMessage.get(message_id=sent.detail["message_id"])
    assert (row.status, row.delivered, row.source) == ("delivered", 1, started.case_no)
    [received] = await CaseEvent.filter(case_id=waiting, kind="message_received")
    assert received.actor == started.case_no


async def test_a_pending_message_left_by_a_crash_is_dispatched_by_the_worker(engine: CaseEngine) -> None:
    waiting = await _waiter(engine, "P-1")
    definition = await engine.deploy(model_files("messages/sender"))
    started = await engine.start_case(definition, service="sender", data={"order_no": "P-1"})

    async def crashed(ids: list[int]) -> None:  # the sender committed, then its process died
        return None

    dispatch, engine.messages.dispatch_ids = engine.messages.dispatch_ids, crashed
    await engine.complete_task(started.ready_tasks[0].id, {"status": "完成"}, actor="psb01")
    engine.messages.dispatch_ids = dispatch
    assert (await Case.get(id=waiting)).status == "running"
    assert await BpmnMessage.filter(status="pending").count() == 1
    await JobRunner(engine).run_due()
    assert (await Case.get(id=waiting)).status == "completed"


async def test_processes_without_messages_write_no_subscription(engine: CaseEngine) -> None:
    definition = await engine.deploy(model_files("timer"))
    await engine.start_case(definition, service="demo", data={"timeout": "PT1H"})
    assert await MessageSubscription.all().count() == 0


async def test_a_step_of_a_process_without_messages_makes_no_message_query(engine: CaseEngine) -> None:
    """The engine bench's processes use no messages: their steps must not pay for the feature."""
    from engine.kernel.cases import Step
    from engine.kernel.messages import sync_subscriptions

    class NoDatabase:
        def __getattr__(self, name: str) -> None:
            raise AssertionError(f"message bookkeeping touched the database ({name})")

    definition = await engine.deploy(model_files("timer"))
    started = await engine.start_case(definition, service="demo", data={"timeout": "PT1H"})
    case, workflow, bundle = await engine.load(started.id)
    for new_case in (True, False):
        await sync_subscriptions(NoDatabase(), engine, [(case, workflow, bundle, Step())], engine.deps.clock(), new_case)
