"""Approval operations (engine.workbench.task_ops): 退回, 转办, 加签, 撤回已办, 会签 ratio — against a real database."""

from __future__ import annotations

import pytest

from engine.errors import Conflict, NotFound
from engine.kernel.cases import CaseEngine
from engine.store.models import Case, CaseEvent, HumanTask
from engine.workbench.task_ops import (
    NextStepStarted,
    NotYourTask,
    TransferForbidden,
    WaitingForAddedSigner,
    add_signer,
    complete_cosign,
    countersign_outcome,
    return_to_step,
    transfer,
    withdraw_completion,
)
from tests.engine.helpers import assert_round_trip, task_ops_model

STAFF = {"win01": ["window"], "win02": ["window"], "mca01": ["mca"], "mca02": ["mca"], "sup01": ["supervisor"]}


async def _start(engine: CaseEngine):  # noqa: ANN202 - CaseResult
    definition = await engine.deploy(task_ops_model("three_steps"))
    return await engine.start_case(definition, service="demo", data={"applicant_name": "李四"})


async def _open(case_id: int, kind: str = "bpmn") -> list[HumanTask]:
    return await HumanTask.filter(case_id=case_id, kind=kind, state__in=("ready", "claimed"))


async def _last_event(case_id: int, kind: str) -> CaseEvent:
    event = await CaseEvent.filter(case_id=case_id, kind=kind).order_by("-id").first()
    assert event is not None, kind
    return event


async def _to_step3(engine: CaseEngine):  # noqa: ANN202
    started = await _start(engine)
    s2 = await engine.complete_task(started.ready_tasks[0].id, {"intake_note": "齐全"}, actor="win01")
    s3 = await engine.complete_task(s2.ready_tasks[0].id, {"review_opinion": "同意"}, actor="mca01")
    return started, s3


async def test_return_from_step3_to_step1(engine: CaseEngine) -> None:
    started, s3 = await _to_step3(engine)
    assert [t.task_spec for t in s3.ready_tasks] == ["approve"]
    result = await return_to_step(engine, started.id, target_task_spec="intake", actor="sup01",
                                  department="supervisor", reason="材料不全，退回窗口")
    assert [(t.task_spec, t.department) for t in result.ready_tasks] == [("intake", "window")]
    assert result.ready_tasks[0].id == started.ready_tasks[0].id  # the Spiff task is reset in place
    assert [(r.task_spec, r.department) for r in await _open(started.id)] == [("intake", "window")]
    assert await HumanTask.filter(case_id=started.id, task_spec="approve", state="cancelled").count() == 1
    assert await HumanTask.filter(case_id=started.id, task_spec="intake", state="completed").count() == 1
    data = await assert_round_trip(engine, started.id)
    assert data["intake_note"] == "齐全" and "review_opinion" not in data and "reviewed" not in data
    event = await _last_event(started.id, "task_returned")
    assert (event.actor, event.department, event.task_name) == ("sup01", "supervisor", "窗口受理")
    assert event.detail["opinion"] == "材料不全，退回窗口"
    assert (await Case.get(id=started.id)).version == result.version == 4

    # the case runs on from step 1 again, with new task instances for steps 2 and 3
    s2 = await engine.complete_task(result.ready_tasks[0].id, {"intake_note": "已补齐"}, actor="win01")
    assert [t.task_spec for t in s2.ready_tasks] == ["review"]
    assert s2.ready_tasks[0].id != s3.ready_tasks[0].id


async def test_return_refused_for_bad_targets(engine: CaseEngine) -> None:
    started, _ = await _to_step3(engine)
    for spec in ("approve", "tally", "nope"):  # open, automatic, unknown
        with pytest.raises(Conflict) as info:
            await return_to_step(engine, started.id, target_task_spec=spec, actor="sup01",
                                 department="supervisor", reason="x")
        assert "人工环节" in info.value.message
    fresh = await _start(engine)
    with pytest.raises(Conflict):
        await return_to_step(engine, fresh.id, target_task_spec="intake", actor="win01", department="window",
                             reason="x")
    done = await engine.complete_task((await _open(started.id))[0].id, {}, actor="sup01")
    assert done.status == "completed"
    with pytest.raises(Conflict) as info:
        await return_to_step(engine, started.id, target_task_spec="intake", actor="sup01",
                             department="supervisor", reason="x")
    assert "不在办理中" in info.value.message
    with pytest.raises(NotFound):
        await return_to_step(engine, 999999, target_task_spec="intake", actor="x", department=None, reason="x")


async def test_transfer_within_and_across_department(engine: CaseEngine) -> None:
    started = await _start(engine)
    task_id = started.ready_tasks[0].id
    row = await transfer(engine, task_id, actor="win01", to_username="win02", staff_lookup=STAFF.get,
                         reason="休假")
    assert row.assignee == "win02" and (await HumanTask.get(id=task_id)).assignee == "win02"
    event = await _last_event(started.id, "task_transferred")
    assert (event.actor, event.department) == ("win01", "window")
    assert event.detail == {"from": None, "to": "win02", "opinion": "休假"}

    async def lookup(username: str) -> list[str]:
        return STAFF.get(username, [])

    with pytest.raises(TransferForbidden) as info:
        await transfer(engine, task_id, actor="win02", to_username="mca01", staff_lookup=lookup)
    assert info.value.kind == "forbidden" and info.value.code == "transfer_other_department"
    with pytest.raises(NotFound):
        await transfer(engine, task_id, actor="win02", to_username="ghost", staff_lookup=lookup)
    assert (await HumanTask.get(id=task_id)).assignee == "win02"


async def test_add_signer_before_blocks_main_completion(engine: CaseEngine) -> None:
    started = await _start(engine)
    s2 = await engine.complete_task(started.ready_tasks[0].id, {}, actor="win01")
    main_id = s2.ready_tasks[0].id
    side = await add_signer(engine, main_id, actor="mca01", user="mca02", position="before", opinion="请复核")
    assert (side.kind, side.department, side.assignee, side.state) == ("cosign", "mca", "mca02", "ready")
    added = await _last_event(started.id, "signer_added")
    assert (added.actor, added.department, added.detail["position"]) == ("mca01", "mca", "before")
    version = (await Case.get(id=started.id)).version
    with pytest.raises(WaitingForAddedSigner) as info:
        await engine.complete_task(main_id, {"review_opinion": "同意"}, actor="mca01")
    assert info.value.code == "waiting_for_added_signer"
    assert (await HumanTask.get(id=main_id)).state == "ready"
    assert (await Case.get(id=started.id)).version == version
    with pytest.raises(NotYourTask):
        await complete_cosign(engine, side.id, actor="mca01", opinion="同意", approve=True)
    await complete_cosign(engine, side.id, actor="mca02", opinion="复核无误", approve=True)
    signed = await _last_event(started.id, "cosign_completed")
    assert (signed.actor, signed.department) == ("mca02", "mca")
    assert signed.detail["opinion"] == "复核无误" and signed.detail["approve"] is True
    s3 = await engine.complete_task(main_id, {"review_opinion": "同意"}, actor="mca01", opinion="同意")
    assert [t.task_spec for t in s3.ready_tasks] == ["approve"]


async def test_add_signer_after_opens_when_main_completes(engine: CaseEngine) -> None:
    started = await _start(engine)
    s2 = await engine.complete_task(started.ready_tasks[0].id, {}, actor="win01")
    main_id = s2.ready_tasks[0].id
    side = await add_signer(engine, main_id, actor="mca01", user="mca02", position="after")
    assert side.state == "pending" and await _open(started.id, "cosign") == []
    await engine.complete_task(main_id, {}, actor="mca01", opinion="同意")
    assert [r.id for r in await _open(started.id, "cosign")] == [side.id]
    await complete_cosign(engine, side.id, actor="mca02", opinion="同意，注意时限", approve=True)
    opinions = {(e.kind, e.actor): (e.detail or {}).get("opinion")
                for e in await CaseEvent.filter(case_id=started.id, kind__in=("task_completed", "cosign_completed"))}
    assert opinions[("task_completed", "mca01")] == "同意"
    assert opinions[("cosign_completed", "mca02")] == "同意，注意时限"
    with pytest.raises(Conflict):
        await add_signer(engine, main_id, actor="mca01", user="mca02", position="sideways")


async def test_withdraw_own_completion(engine: CaseEngine) -> None:
    started = await _start(engine)
    intake_id = started.ready_tasks[0].id
    s2 = await engine.complete_task(intake_id, {"intake_note": "齐全"}, actor="win01")
    with pytest.raises(NotYourTask):
        await withdraw_completion(engine, intake_id, actor="win02")
    result = await withdraw_completion(engine, intake_id, actor="win01")
    assert [t.task_spec for t in result.ready_tasks] == ["intake"]
    row = await HumanTask.get(id=intake_id)
    assert (row.state, row.assignee, row.department) == ("claimed", "win01", "window")
    assert (await HumanTask.get(id=s2.ready_tasks[0].id)).state == "cancelled"
    event = await _last_event(started.id, "completion_withdrawn")
    assert (event.actor, event.department, event.task_name) == ("win01", "window", "窗口受理")
    assert (await assert_round_trip(engine, started.id))["intake_note"] == "齐全"
    with pytest.raises(Conflict):  # it is open again: nothing to withdraw
        await withdraw_completion(engine, intake_id, actor="win01")


async def test_withdraw_refused_after_next_step_claimed_or_completed(engine: CaseEngine) -> None:
    started = await _start(engine)
    intake_id = started.ready_tasks[0].id
    s2 = await engine.complete_task(intake_id, {}, actor="win01")
    await HumanTask.filter(id=s2.ready_tasks[0].id).update(state="claimed", assignee="mca01")
    with pytest.raises(NextStepStarted):
        await withdraw_completion(engine, intake_id, actor="win01")
    s3 = await engine.complete_task(s2.ready_tasks[0].id, {}, actor="mca01")
    with pytest.raises(NextStepStarted) as info:
        await withdraw_completion(engine, intake_id, actor="win01")
    assert info.value.code == "next_step_started"
    # the reviewer may still withdraw: the automatic 汇总 ran in the same step, nothing claimed since
    result = await withdraw_completion(engine, s2.ready_tasks[0].id, actor="mca01")
    assert [t.task_spec for t in result.ready_tasks] == ["review"]
    assert (await HumanTask.get(id=s3.ready_tasks[0].id)).state == "cancelled"


def test_countersign_outcome_rules() -> None:
    yes, no = {"decision": "approve"}, {"decision": "reject"}
    assert countersign_outcome([yes, yes, yes], "all") is True
    assert countersign_outcome([yes, yes], "all", total=3) is False
    assert countersign_outcome([yes, no, yes], "all") is False
    assert countersign_outcome([yes, yes], "any_reject", total=3) is True
    assert countersign_outcome([yes, no], "any_reject") is False
    assert countersign_outcome([yes, yes, no], 2 / 3) is True
    assert countersign_outcome([yes, no, no], 2 / 3) is False
    with pytest.raises(ValueError):
        countersign_outcome([yes], "most")


@pytest.mark.parametrize(("rule", "decisions", "passed"), [
    ("all", ["approve", "approve", "approve"], True),
    ("all", ["approve", "reject", "approve"], False),
    ("any_reject", ["approve", "approve", "reject"], False),
    (2 / 3, ["approve", "reject", "approve"], True),
    (2 / 3, ["reject", "reject", "approve"], False),
])
async def test_countersign_model_uses_the_sandbox_helper(engine: CaseEngine, rule: object, decisions: list[str],
                                                         passed: bool) -> None:
    definition = await engine.deploy(task_ops_model("countersign"))
    started = await engine.start_case(definition, service="demo",
                                      data={"signers": ["mca01", "mca02", "mca03"], "rule": rule})
    assert len(started.ready_tasks) == 3 and {t.department for t in started.ready_tasks} == {"mca"}
    result = started
    for task, decision in zip(started.ready_tasks, decisions, strict=True):
        result = await engine.complete_task(task.id, {"signature": {"decision": decision}}, actor="mca01")
    assert result.status == "completed" and result.data["passed"] is passed


# ---------------------------------------------------------------------------- 撤回 / 退回 in a 会签 (issue #14)
SIGNERS = {"signers": ["mca01", "mca02"]}


def _signature(decision: str, opinion: str = "") -> dict:
    return {"signature": {"decision": decision, "opinion": opinion or decision}}


async def _signatures(engine: CaseEngine, case_id: int) -> list:
    _, workflow, _ = await engine.load(case_id)
    [parent] = [t for t in workflow.get_tasks() if t.task_spec.name == "sign"]
    return parent.data.get("signatures")


async def test_withdraw_after_the_countersign_concluded_reopens_it(engine: CaseEngine) -> None:
    definition = await engine.deploy(task_ops_model("cosign_parallel"))
    started = await engine.start_case(definition, service="demo", data=SIGNERS)
    first, second = started.ready_tasks
    await engine.complete_task(first.id, _signature("approve"), actor="mca01")
    done = await engine.complete_task(second.id, _signature("approve"), actor="mca02")
    assert [t.task_spec for t in done.ready_tasks] == ["approve"] and done.data["passed"] is True
    # the second signer takes the signature back before the supervisor started: the 会签 is open again
    back = await withdraw_completion(engine, second.id, actor="mca02")
    assert [t.id for t in back.ready_tasks] == [second.id]
    assert await _signatures(engine, started.id) == [_signature("approve")["signature"]]
    assert (await HumanTask.filter(case_id=started.id, task_spec="approve").first()).state == "cancelled"
    assert (await HumanTask.get(id=second.id)).assignee == "mca02"
    await assert_round_trip(engine, started.id)
    again = await engine.complete_task(second.id, _signature("reject", "不同意"), actor="mca02")
    assert again.data["passed"] is False
    assert [s["decision"] for s in again.data["signatures"]] == ["approve", "reject"]


async def test_withdrawn_rejection_revives_the_cancelled_signers(engine: CaseEngine) -> None:
    definition = await engine.deploy(task_ops_model("cosign_parallel"))
    started = await engine.start_case(definition, service="demo", data=SIGNERS)
    first, second = started.ready_tasks
    rejected = await engine.complete_task(first.id, _signature("reject"), actor="mca01")
    assert rejected.data["passed"] is False  # the completion condition cancelled the second signer
    assert (await HumanTask.get(id=second.id)).state == "cancelled"
    back = await withdraw_completion(engine, first.id, actor="mca01")
    assert sorted(t.id for t in back.ready_tasks) == sorted([first.id, second.id])
    assert await _signatures(engine, started.id) == []
    await assert_round_trip(engine, started.id)
    await engine.complete_task(first.id, _signature("approve"), actor="mca01")
    done = await engine.complete_task(second.id, _signature("approve"), actor="mca02")
    assert done.data["passed"] is True and len(done.data["signatures"]) == 2
    # the history keeps the withdrawn and the cancelled rows under new ids
    assert await HumanTask.filter(case_id=started.id, task_spec="sign [child]").count() == 4


async def test_withdraw_in_a_sequential_countersign_takes_back_the_next_signer(engine: CaseEngine) -> None:
    definition = await engine.deploy(task_ops_model("cosign_sequential"))
    started = await engine.start_case(definition, service="demo", data=SIGNERS)
    [first] = started.ready_tasks
    after_first = await engine.complete_task(first.id, _signature("approve"), actor="mca01")
    [second] = after_first.ready_tasks
    back = await withdraw_completion(engine, first.id, actor="mca01")
    assert [t.id for t in back.ready_tasks] == [first.id]
    assert (await HumanTask.get(id=second.id)).state == "cancelled"
    await assert_round_trip(engine, started.id)
    [second] = (await engine.complete_task(first.id, _signature("approve", "同意"), actor="mca01")).ready_tasks
    done = await engine.complete_task(second.id, _signature("approve"), actor="mca02")
    assert done.data["passed"] is True
    assert [s["opinion"] for s in done.data["signatures"]] == ["同意", "approve"]


async def test_return_to_a_countersign_restarts_every_signer(engine: CaseEngine) -> None:
    definition = await engine.deploy(task_ops_model("cosign_parallel"))
    started = await engine.start_case(definition, service="demo", data=SIGNERS)
    for task, user in zip(started.ready_tasks, ("mca01", "mca02"), strict=True):
        await engine.complete_task(task.id, _signature("approve"), actor=user)
    back = await return_to_step(engine, started.id, target_task_spec="sign [child]", actor="sup01",
                                department="supervisor", reason="重新会签")
    assert len(back.ready_tasks) == 2 and not {t.id for t in back.ready_tasks} & {t.id for t in started.ready_tasks}
    assert await _signatures(engine, started.id) == []
    await assert_round_trip(engine, started.id)
    for task, user in zip(back.ready_tasks, ("mca01", "mca02"), strict=True):
        result = await engine.complete_task(task.id, _signature("approve"), actor=user)
    assert result.data["passed"] is True and len(result.data["signatures"]) == 2
