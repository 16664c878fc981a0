"""Absence delegation (代理): the delegate sees and handles the officer's tasks during the period
only, acts 代 X on the timeline and in the audit chain, and setting/cancelling is audited — on both
database passes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from engine.store.audit_models import AuditRecord
from engine.store.models import CaseEvent, Delegation, HumanTask
from engine.workbench import delegation
from engine.workbench import staff as desk
from engine.workbench.task_detail import task_detail
from tests.engine.helpers import intake_task
from tests.processes.test_business_startup import ACCEPT, NOW

HOUR = timedelta(hours=1)


def _ids(inbox: dict) -> dict[str, str | None]:
    return {item["id"]: item["on_behalf_of"] for item in inbox["items"]}


async def test_delegate_acts_for_the_officer_only_during_the_period(engine, applications, people) -> None:  # noqa: ANN001
    samr01, samr02 = people["samr01"], people["samr02"]
    held = await intake_task(applications)
    await desk.claim(samr01, held, now=NOW)
    with pytest.raises(desk.TaskAlreadyClaimed):  # no delegation: a colleague's claim is a colleague's
        await desk.complete(engine, samr02, held, ACCEPT)

    # scheduled for later: not yet
    later = await delegation.set_delegation(samr01, delegate="samr02", starts_at=NOW + HOUR,
                                            ends_at=NOW + 24 * HOUR, reason="出差", now=NOW)
    assert later["state"] == "scheduled"
    assert held not in _ids(await desk.inbox(samr02, now=NOW))
    for call in (desk.complete(engine, samr02, held, ACCEPT), desk.unclaim(samr02, held, now=NOW)):
        with pytest.raises(delegation.DelegationNotActive):
            await call
    with pytest.raises(delegation.DelegationOverlaps):
        await delegation.set_delegation(samr01, delegate="samr02", starts_at=NOW, ends_at=NOW + 2 * HOUR, now=NOW)
    await delegation.cancel_delegation(samr01, later["id"], now=NOW)

    # active now: the held task is in samr02's inbox, marked 代 samr01, and samr02 completes it
    active = await delegation.set_delegation(samr01, delegate="samr02", starts_at=NOW - HOUR,
                                             ends_at=NOW + 24 * HOUR, now=NOW)
    assert active["state"] == "active"
    inbox = await desk.inbox(samr02, now=NOW)
    assert _ids(inbox)[held] == "samr01"
    assert inbox["counts"]["mine"] == 1  # the officer's claimed task counts among the delegate's own
    detail = await task_detail(engine, samr02, held)
    assert "complete" in detail["actions"] and detail["task"]["on_behalf_of"] == "samr01"
    done = await desk.complete(engine, samr02, held, ACCEPT, "代为受理")
    assert (done.state, done.completed_by) == ("completed", "samr02")  # the delegate is the signer
    [event] = await CaseEvent.filter(task_id=held, kind="task_completed")
    assert event.actor == "samr02" and event.detail["on_behalf_of"] == "samr01"
    [record] = await AuditRecord.filter(kind="task.complete", subject=held)
    assert record.actor == "samr02" and json.loads(record.detail)["on_behalf_of"] == "samr01"
    timeline = (await task_detail(engine, samr01, held))["timeline"]
    assert [e["actor_label"] for e in timeline if e["kind"] == "task_completed"] == ["samr02（市场监督管理局） 代 samr01"]

    # a second case held by samr01: after the period ends (no job, the clock decides) it is refused
    second = await intake_task(applications)
    await desk.claim(samr01, second, now=NOW)
    assert _ids(await desk.inbox(samr02, now=NOW))[second] == "samr01"
    ended = NOW + 25 * HOUR
    engine.deps.clock = lambda: ended
    assert second not in _ids(await desk.inbox(samr02, now=ended))
    for call in (desk.complete(engine, samr02, second, ACCEPT), desk.unclaim(samr02, second, now=ended)):
        with pytest.raises(delegation.DelegationNotActive):
            await call
    row = await HumanTask.get(id=second)
    assert (row.state, row.assignee) == ("claimed", "samr01")  # where the officer left it

    kinds = [r.kind for r in await AuditRecord.filter(kind__startswith="delegation.").order_by("seq")]
    assert kinds == ["delegation.set", "delegation.cancel", "delegation.set"]
    assert {d["id"] for d in (await delegation.delegations_of(samr01, NOW))["given"]} == {later["id"], active["id"]}


async def test_delegate_claims_and_releases_for_the_officer_and_rules_on_who(engine, applications,
                                                                             people) -> None:  # noqa: ANN001
    samr01, samr02, psb01, sup = people["samr01"], people["samr02"], people["psb01"], people["samr_sup"]
    with pytest.raises(delegation.DelegateNotColleague):  # another department cannot stand in
        await delegation.set_delegation(samr01, delegate="psb01", starts_at=NOW, ends_at=NOW + HOUR, now=NOW)
    with pytest.raises(delegation.DelegationNotYours):  # nor set one for someone else's officer
        await delegation.set_delegation(psb01, officer="samr01", delegate="samr02", starts_at=NOW,
                                        ends_at=NOW + HOUR, now=NOW)
    # the department's supervisor may set it for an officer who fell ill
    made = await delegation.set_delegation(sup, officer="samr01", delegate="samr02", starts_at=NOW,
                                           ends_at=NOW + HOUR, now=NOW)
    assert (made["officer"], made["created_by"]) == ("samr01", "samr_sup")
    task = await intake_task(applications)
    await desk.claim(samr01, task, now=NOW)
    released = await desk.unclaim(samr02, task, now=NOW)  # 代 samr01: released for the officer
    assert (released.state, released.assignee) == ("ready", None)
    [event] = await CaseEvent.filter(task_id=task, kind="task_unclaimed")
    assert (event.actor, event.detail["on_behalf_of"]) == ("samr02", "samr01")
    await delegation.cancel_delegation(sup, made["id"], now=NOW)
    assert await Delegation.filter(id=made["id"], cancelled_by="samr_sup").exists()


@pytest.mark.parametrize("who_withdraws", ["win02", "win01"])
async def test_a_completion_made_for_the_officer_is_withdrawn_back_to_the_officer(
        engine, who_withdraws: str) -> None:  # noqa: ANN001
    """撤回 of what a delegate completed 代 win01: the completion was the officer's, so the delegate or
    the officer may withdraw it, the task goes back to the officer (not to the delegate), and a third
    colleague may not."""
    from engine.store.models import StaffUser
    from engine.workbench.task_ops import NotYourTask, withdraw_completion
    from tests.engine.helpers import task_ops_model

    staff = {name: await StaffUser.create(username=name, name=name, password_hash="-", departments=["window"],
                                          roles=["officer"]) for name in ("win01", "win02", "win03")}
    engine.deps.clock = lambda: NOW
    started = await engine.start_case(await engine.deploy(task_ops_model("three_steps")), service="demo",
                                      data={"applicant_name": "李四"})
    held = str(started.ready_tasks[0].id)  # 窗口受理, lane window; the next step is another person's
    await desk.claim(staff["win01"], held, now=NOW)
    await delegation.set_delegation(staff["win01"], delegate="win02", starts_at=NOW - HOUR,
                                    ends_at=NOW + 24 * HOUR, now=NOW)
    await desk.complete(engine, staff["win02"], held, {"intake_note": "齐全"}, "代为受理")
    view = await task_detail(engine, staff[who_withdraws], held)
    assert "withdraw" in view["actions"], view["blocked"]
    assert "withdraw" not in (await task_detail(engine, staff["win03"], held))["actions"]
    with pytest.raises(NotYourTask):
        await withdraw_completion(engine, held, actor="win03")

    await withdraw_completion(engine, held, actor=who_withdraws)
    row = await HumanTask.get(id=held)
    assert (row.state, row.assignee) == ("claimed", "win01")  # the officer's task again, whoever withdrew
    [event] = await CaseEvent.filter(kind="completion_withdrawn")
    assert event.actor == who_withdraws
    assert (event.detail or {}).get("on_behalf_of") == ("win01" if who_withdraws == "win02" else None)
    # while the delegation runs the delegate acts on it again, 代 win01
    assert _ids(await desk.inbox(staff["win02"], now=NOW))[held] == "win01"
