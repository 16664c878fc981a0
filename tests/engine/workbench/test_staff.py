"""The staff workbench in the engine: login and lockout, department inbox with filters, counts and
ordering, claim/unclaim/complete rules, side tasks and the timeline — on both database passes."""

from __future__ import annotations

import time
from datetime import timedelta
from uuid import uuid4

import pytest

from engine.errors import NotFound, ValidationFailed
from engine.kernel.sla import CST
from engine.platform.kv import MemoryKV
from engine.store.models import CaseEvent, HumanTask
from engine.workbench import staff as desk
from engine.workbench.task_detail import task_detail
from tests.engine.helpers import PASSWORD, intake_task
from tests.processes.test_business_startup import ACCEPT, NOW, WANG


async def test_login_wrong_password_unknown_user_and_lockout(people) -> None:  # noqa: ANN001
    kv, here, elsewhere = MemoryKV(), "203.0.113.7", "198.51.100.2"
    assert (await desk.authenticate(kv, "samr01", PASSWORD, client=here)).username == "samr01"
    with pytest.raises(desk.InvalidCredentials):
        await desk.authenticate(kv, "nobody", PASSWORD, client=here)
    for _ in range(desk.MAX_FAILURES - 1):
        with pytest.raises(desk.InvalidCredentials):
            await desk.authenticate(kv, "psb01", "wrong", client=here)
    with pytest.raises(desk.AccountLocked) as locked:
        await desk.authenticate(kv, "psb01", "wrong", client=here)
    assert locked.value.retry_after == desk.LOCK_S
    with pytest.raises(desk.AccountLocked) as still:
        await desk.authenticate(kv, "psb01", PASSWORD, client=here)  # even the right password, until the lock ends
    assert 0 < still.value.retry_after <= desk.LOCK_S
    assert (await desk.authenticate(kv, "samr01", PASSWORD, client=here)).username == "samr01"  # others unaffected
    # the lock is on (account, address): the owner elsewhere still gets in — nobody can lock an account
    assert (await desk.authenticate(kv, "psb01", PASSWORD, client=elsewhere)).username == "psb01"


async def test_one_account_guessed_from_many_addresses_is_slowed_never_locked(
        people, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    assert [desk.slow_down_s(n) for n in (19, 20, 21, 1000)] == [0.0, desk.SLOW_STEP_S, 2 * desk.SLOW_STEP_S,
                                                                 desk.SLOW_MAX_S]
    monkeypatch.setattr(desk, "SLOW_AFTER", 6 * (desk.MAX_FAILURES - 1) - 1)  # sized for a test to wait
    kv = MemoryKV()
    for n in range(6):  # fewer than MAX_FAILURES from each address: no address is locked
        for _ in range(desk.MAX_FAILURES - 1):
            with pytest.raises(desk.InvalidCredentials):
                await desk.authenticate(kv, "psb01", "wrong", client=f"192.0.2.{n}")
    failures = 6 * (desk.MAX_FAILURES - 1)
    began = time.monotonic()
    with pytest.raises(desk.InvalidCredentials):  # still a plain answer, only later
        await desk.authenticate(kv, "psb01", "wrong", client="192.0.2.200")
    assert time.monotonic() - began >= desk.slow_down_s(failures) - 0.01 > 0
    began = time.monotonic()
    assert (await desk.authenticate(kv, "psb01", PASSWORD, client="198.51.100.2")).username == "psb01"
    assert time.monotonic() - began >= desk.slow_down_s(failures + 1) - 0.01
    assert (await desk.authenticate(kv, "samr01", PASSWORD, client="192.0.2.1")).username == "samr01"


async def test_department_isolation_and_claim_rules(engine, applications, people) -> None:  # noqa: ANN001
    task_id = await intake_task(applications)
    samr01, samr02, psb01 = people["samr01"], people["samr02"], people["psb01"]
    assert (await desk.inbox(psb01))["total"] == 0
    for call in (desk.claim(psb01, task_id), task_detail(engine, psb01, task_id),
                 desk.complete(engine, psb01, task_id, ACCEPT), desk.comment(psb01, task_id, "看看")):
        with pytest.raises(desk.ForbiddenDepartment):
            await call
    with pytest.raises(NotFound):
        await desk.claim(samr01, str(uuid4()))
    with pytest.raises(desk.TaskNotClaimed):
        await desk.unclaim(samr01, task_id)
    assert (await desk.claim(samr01, task_id)).assignee == "samr01"
    with pytest.raises(desk.TaskAlreadyClaimed):
        await desk.claim(samr02, task_id)
    with pytest.raises(desk.TaskAlreadyClaimed):
        await desk.unclaim(samr02, task_id)
    with pytest.raises(desk.TaskAlreadyClaimed):
        await desk.complete(engine, samr02, task_id, ACCEPT)
    assert (await desk.inbox(samr02))["total"] == 0  # claimed by someone else: not in their working set
    assert (await desk.unclaim(samr01, task_id)).state == "ready"
    kinds = [e.kind for e in await CaseEvent.filter(task_id=task_id).order_by("id")]
    assert kinds == ["task_claimed", "task_unclaimed"]


async def test_complete_validates_then_moves_the_case_on(engine, applications, people) -> None:  # noqa: ANN001
    task_id = await intake_task(applications)
    samr01, psb01 = people["samr01"], people["psb01"]
    with pytest.raises(ValidationFailed) as bad:
        await desk.complete(engine, samr01, task_id, {"intake_accepted": True})
    assert "intake_opinion" in str(bad.value.fields)
    assert (await HumanTask.get(id=task_id)).state == "ready"  # the automatic claim was undone
    done = await desk.complete(engine, samr01, task_id, ACCEPT, opinion="同意受理")
    assert done.state == "completed" and done.completed_by == "samr01"
    with pytest.raises(desk.TaskAlreadyCompleted):
        await desk.complete(engine, samr01, task_id, ACCEPT)
    assert (await desk.inbox(samr01, status="done"))["total"] == 1
    psb_inbox = await desk.inbox(psb01)
    assert [t["task_spec"] for t in psb_inbox["items"]] == ["psb_seal"]
    [event] = await CaseEvent.filter(task_id=task_id, kind="task_completed")
    assert event.actor == "samr01" and event.department == "samr" and event.detail == {"opinion": "同意受理"}
    await desk.comment(psb01, psb_inbox["items"][0]["id"], "印章样式已确认")
    detail = await task_detail(engine, psb01, psb_inbox["items"][0]["id"])
    assert detail["timeline"][-1]["opinion"] == "印章样式已确认" and detail["timeline"][-1]["department"] == "psb"
    assert detail["case"]["applicant_name"] == "王**" and WANG.id_number not in str(detail)
    assert detail["form"]["fields"] and detail["case"]["service_name"] == "企业开办一件事"


async def test_inbox_filters_counts_ordering_and_pages(engine, applications, people) -> None:  # noqa: ANN001
    ids = [await intake_task(applications) for _ in range(4)]
    samr01, sup = people["samr01"], people["samr_sup"]
    dues = [NOW - timedelta(hours=1), NOW + timedelta(hours=5), NOW + timedelta(hours=20), None]
    for task_id, due in zip(ids, dues, strict=True):
        await HumanTask.filter(id=task_id).update(due_at=due)
    await desk.claim(samr01, ids[2])
    first = await desk.inbox(samr01, now=NOW, size=3)
    assert [t["id"] for t in first["items"]] == ids[:3] and first["total"] == 4
    assert first["items"][0]["overdue"] is True
    second = await desk.inbox(samr01, now=NOW, size=3, page=2)
    assert [t["id"] for t in second["items"]] == [ids[3]]  # no due time: last
    # NOW is 10:00 CST; +5 h is today, +20 h is tomorrow but within 24 h
    assert NOW.astimezone(CST).hour == 10
    assert first["counts"] == {"ready": 3, "mine": 1, "done": 0, "waiting": 0, "overdue": 1, "today": 1, "soon": 2}
    assert [t["id"] for t in (await desk.inbox(samr01, status="mine", now=NOW))["items"]] == [ids[2]]
    assert [t["id"] for t in (await desk.inbox(samr01, due="overdue", now=NOW))["items"]] == [ids[0]]
    assert [t["id"] for t in (await desk.inbox(samr01, due="today", now=NOW))["items"]] == [ids[1]]
    assert [t["id"] for t in (await desk.inbox(samr01, due="soon", now=NOW))["items"]] == ids[1:3]
    escalation = await HumanTask.create(id=uuid4(), case_id=(await HumanTask.get(id=ids[0])).case_id,
                                        kind="escalation", task_spec="sla_escalation", name="超期督办",
                                        department="supervisor", state="ready")
    assert str(escalation.id) in [t["id"] for t in (await desk.inbox(sup, now=NOW))["items"]]
    assert str(escalation.id) not in [t["id"] for t in (await desk.inbox(samr01, now=NOW))["items"]]
    done = await desk.complete(engine, sup, str(escalation.id), opinion="已督促承办部门")
    assert done.state == "completed"
    [event] = await CaseEvent.filter(task_id=str(escalation.id), kind="task_completed")
    assert event.actor == "samr_sup" and event.department == "supervisor"


async def test_inbox_counts_stop_at_the_cap_and_pages_merge_ready_and_claimed(engine, applications, people,  # noqa: ANN001
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [await intake_task(applications) for _ in range(5)]
    samr01 = people["samr01"]
    for n, task_id in enumerate(ids):  # due in order: ids[0] first
        await HumanTask.filter(id=task_id).update(due_at=NOW + timedelta(hours=n + 1))
    await desk.claim(samr01, ids[1])
    await desk.claim(samr01, ids[3])
    monkeypatch.setattr(desk, "COUNT_CAP", 3)
    first = await desk.inbox(samr01, now=NOW, size=2)
    # ready and claimed tasks interleave by due time across pages; totals and badges stop at the cap
    assert [t["id"] for t in first["items"]] == ids[:2]
    assert first["total"] == 3 and first["counts"]["ready"] == 3 and first["counts"]["soon"] == 3
    assert first["counts"]["mine"] == 2
    second = await desk.inbox(samr01, now=NOW, size=2, page=2)
    third = await desk.inbox(samr01, now=NOW, size=2, page=3)
    assert [t["id"] for t in second["items"]] == ids[2:4] and [t["id"] for t in third["items"]] == ids[4:]


async def test_a_refused_completion_leaves_a_transferred_task_with_its_receiver(  # noqa: ANN001
        engine, applications, people) -> None:
    """Found by tests/engine/test_operations_model.py: 转办 to samr02, a 'before' 加签, samr02's
    办结 refused (waiting_for_added_signer) — the task used to fall back to nobody."""
    from engine.workbench.task_ops import WaitingForAddedSigner, add_signer, transfer

    task_id = await intake_task(applications)
    await transfer(engine, task_id, actor="samr01", to_username="samr02", staff_lookup=desk.active_departments)
    await add_signer(engine, task_id, actor="samr02", user="samr01", position="before")
    with pytest.raises(WaitingForAddedSigner):
        await desk.complete(engine, people["samr02"], task_id, ACCEPT)
    row = await HumanTask.get(id=task_id)
    assert (row.state, row.assignee) == ("ready", "samr02")


async def test_actor_names_show_people_not_ids(engine, people) -> None:  # noqa: ANN001 - db-bound fixtures
    """申请人 for the citizen and a window placeholder, the staff member's name with their department,
    系统 for the engine, timers, the CLI and an unknown account; a Chinese source name as written."""
    await people["samr01"].update_from_dict({"name": "王芳", "departments": ["samr", "window"]}).save()
    names = {"samr": "市场监督管理局", "window": "综合窗口"}
    shown = await desk.actor_names(["samr01", "citizen:7", "window:ab12", "system", "cli", "gone01", "好差评", None],
                                   names)
    assert shown == {"samr01": "王芳（市场监督管理局、综合窗口）", "citizen:7": "申请人", "window:ab12": "申请人",
                     "system": "系统", "cli": "系统", "gone01": "系统", "好差评": "好差评"}
    assert desk.actor_name(None, shown) == "系统" and desk.actor_name("samr01", shown) == "王芳（市场监督管理局、综合窗口）"
    event = CaseEvent(kind="task_completed", actor="samr01", detail={"opinion": "同意", "cc": ["samr01"]},
                      created_at=engine.deps.clock())
    [view] = desk.timeline_view([event], names, shown)
    assert (view["actor_name"], view["opinion"]) == ("王芳（市场监督管理局、综合窗口）", "同意（抄送：王芳（市场监督管理局、综合窗口））")
