"""A model-based test of the staff operations (issue #14): hypothesis drives random sequences of
认领, 释放, 办结 (approve / refuse / 补正 in the form), 退回 to a step, 补正 (generic) and its answer, the
applicant's answer, 转办, 加签 before / after and the signer's opinion, 撤回, and timer firing — by
several officers — on real cases of the shipped processes, and compares the engine with a small
reference model of what the decision must be. Covered: 居住证申领 (补正 loop, 会签 by distinct
officers), 差评整改 (boundary timers past or future, 回避 in 督办), 企业开办一件事 (five parallel
department lanes), 老年人优待证 (秒批 准予 / 不予 that no operation can change, or 民政人工审核 for a
non-local or unregistered applicant; one card issued exactly when approved) and 出生一件事 (卫健
核验 when the shared birth record does not verify, 公安 户口登记, then 医保 and 人社 in parallel).

The reference keeps the *effective* completions (step, task, choice, opinion, officer) in order:
a completion adds one, 撤回 takes exactly that one out, 退回 to a step takes out the step's last
completion and everything after it (退回 to the 会签 takes out the whole 会签 round). The decision
is a pure function of it. After every step the stored case is reloaded and checked:

* the final decision equals the reference's; a withdrawn completion leaves no trace (the
  collected signatures and the refusal reasons are exactly the effective ones);
* nobody signs two instances of a 会签 that wants distinct signers; a refusal to claim or complete
  is justified by the rules (加签 pending, 会签 signed or held, claimed by someone else, another
  department, the officer's own case …), and where no rule applies the operation succeeds; an
  officer whose account is linked to the applicant (``OWN_CASE``) is never given the task (转办,
  加签) and never handles it;
* every open task belongs to its step's department (the applicant's lane to nobody);
* the SLA clock is paused exactly while the case waits for the applicant;
* the steps 退回 offers are exactly the steps the reference has effective completions of;
* the stored state round-trips (dump of the reloaded workflow == stored text).

Bounded in ``make test`` (``EXAMPLES`` per process and database pass); ``make fuzz`` multiplies
them by ``GOVFLOW_PROPERTY_EXAMPLES`` like tests/security/test_properties.py. With
``GOVFLOW_MODEL_PROGRESS=<file>`` every finished example appends its machine's name to the file, so
a long run that is stopped still tells exactly how many examples ran per process.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from engine import build_engine
from engine.accountability.privacy import PiiKeys
from engine.citizen.applications import ApplicationService
from engine.config import Settings
from engine.errors import GovflowError
from engine.kernel import supplement as supplements
from engine.kernel.cases import CaseEngine
from engine.kernel.jobs import JobRunner
from engine.platform.seed import hash_password
from engine.store.certificate_models import Certificate
from engine.store.db import close_db, init_db
from engine.store.models import Case, HumanTask, StaffUser
from engine.workbench import link_identity, task_ops
from engine.workbench import staff as desk
from engine.workbench.task_detail import return_targets
from tests.conftest import TEST_DB, _reset_postgres
from tests.processes.conftest import SINGLE_MOTHER, application_service
from tests.processes.test_residence_permit import FORM

SCALE = float(os.environ.get("GOVFLOW_PROPERTY_EXAMPLES", "1"))
EXAMPLES = 8  # per database pass in `make test`; `make fuzz` runs GOVFLOW_PROPERTY_EXAMPLES times more
STEPS = 20
OFFICERS = ("police01", "police02", "police03", "police04")
ACTING = OFFICERS[:3]  # who may act on the case (police04 is the applicant: 回避, never acts)
# staff accounts linked to a person's own ID number (回避 of one's own case): police04 is the residence
# permit's applicant, mca02 the non-local senior-card applicant, psb02 the newborn's mother
OWN_CASE = {"police04": "440106199802142083", "mca02": "110101195605100718", "psb02": "310112199504121645"}
OPEN = ("ready", "claimed")
CS = "countersign [child]"
REVIEW_DATA = {
    "approve": {"review_outcome": "approve", "review_opinion": "材料齐全，提交会签"},
    "reject": {"review_outcome": "reject", "review_opinion": "居住登记不满半年，不予受理"},
    "supplement": {"review_outcome": "supplement", "review_opinion": "证件照不符合要求",
                   "supplement_request": ["重新拍摄白底证件照"]},
}


def run(coro: Any) -> Any:
    return World.loop.run_until_complete(coro)


class World:
    """One database and engine for all examples of a pass (cases are independent)."""

    loop: asyncio.AbstractEventLoop
    engine: CaseEngine
    applications: ApplicationService
    staff: dict[str, StaffUser]


@dataclass
class Done:
    spec: str  # "review" | CS | "supplement_task"
    task_id: str
    choice: str
    opinion: str
    actor: str


@dataclass
class Reference:
    """The effective completions of one case, in order, and the decision they make."""

    done: list[Done] = field(default_factory=list)

    def last(self, spec: str) -> int | None:
        found = [i for i, d in enumerate(self.done) if d.spec == spec]
        return found[-1] if found else None

    def round(self) -> list[Done]:
        """The 会签 signatures since the last review."""
        start = self.last("review")
        return [d for d in self.done[(start or 0):] if d.spec == CS] if start is not None else []

    def withdraw(self, task_id: str) -> None:
        [index] = [i for i, d in enumerate(self.done) if d.task_id == task_id]
        assert index == len(self.done) - 1 or self.done[index].spec == CS, "only a last completion is withdrawn"
        del self.done[index]

    def return_to(self, step: str) -> None:
        if step == CS:  # the 会签 restarts as a whole
            start = self.last("review")
            assert start is not None
            self.done = self.done[:start + 1]
        else:
            index = self.last(step)
            assert index is not None
            self.done = self.done[:index]

    def decision(self) -> tuple[str, str] | None:
        """``(outcome, reason or signatures)`` once the case must have ended, else ``None``."""
        index = self.last("review")
        if index is None:
            return None
        review = self.done[index]
        if review.choice == "reject":
            return "rejected", REVIEW_DATA["reject"]["review_opinion"]
        if review.choice != "approve":
            return None
        signatures = self.round()
        refusals = [s.opinion for s in signatures if s.choice == "reject"]
        if refusals:
            return "rejected", "会签未通过：" + "；".join(refusals)
        if len(signatures) == 2:
            return "approved", "；".join(s.opinion for s in signatures)
        return None


class CaseOperations(RuleBasedStateMachine):
    """What every machine below shares: reading the case's task rows, opinions, refusals as values,
    and the 撤回 and timer rules (a withdrawn completion leaves the reference too)."""

    # ------------------------------------------------------------------ helpers
    def rows(self, **filters: Any) -> list[HumanTask]:
        # a deterministic order: the tasks one step opens share created_at and have random ids, and
        # hypothesis replays a failing example by its draws (else FlakyStrategyDefinition, not a finding)
        return run(HumanTask.filter(case_id=self.case_id, **filters).order_by("created_at", "task_spec", "kind", "id"))

    def case(self) -> Case:
        return run(Case.get(id=self.case_id))

    def opinion(self, what: str) -> str:
        self.serial += 1
        return f"{what}{self.serial}"

    def attempt(self, coro: Any) -> GovflowError | None:
        try:
            run(coro)
        except GovflowError as exc:  # a refusal: its reasons are checked by the rule
            return exc
        return None

    def withdrawable(self, row: HumanTask) -> bool:
        """Whether the 撤回 rule may pick this completed row (it must be an effective completion)."""
        return True

    def withdrawn(self, task_id: str) -> None:
        self.ref.withdraw(task_id)

    @rule(data=st.data())
    def withdraw(self, data: st.DataObject) -> None:
        rows = [r for r in self.rows(kind="bpmn", state="completed")
                if self.withdrawable(r) and any(d.task_id == str(r.id) for d in self.ref.done)]
        if not rows:
            return
        row = data.draw(st.sampled_from(rows))
        refused = self.attempt(task_ops.withdraw_completion(World.engine, row.id, actor=row.completed_by))
        if refused is None:
            self.withdrawn(str(row.id))
        else:
            assert refused.code in ("next_step_started", "conflict"), refused.code

    @rule()
    def fire_timers(self) -> None:
        run(JobRunner(World.engine).run_due())


class ResidencePermitOperations(CaseOperations):
    """居住证申领 under random staff operations (review, 补正, 会签 by distinct officers)."""

    @initialize()
    def start(self) -> None:
        started = run(World.applications.apply("residence-permit", FORM, applicant=SINGLE_MOTHER))
        self.applicant = SINGLE_MOTHER
        self.case_id = started.id
        self.ref = Reference()
        self.serial = 0

    # ------------------------------------------------------------------ helpers
    def signed_or_holds_sibling(self, row: HumanTask, officer: str) -> bool:
        """Whether ``officer`` has an effective signature in this 会签 round or holds another instance."""
        if row.task_spec != CS:
            return False
        if any(d.actor == officer for d in self.ref.round()):
            return True
        return any(r.assignee == officer and r.id != row.id for r in self.rows(task_spec=CS, state="claimed"))

    def before_signer_open(self, row: HumanTask) -> bool:
        return bool(self.rows(kind="cosign", task_spec=f"cosign:before:{row.id}", state__in=OPEN))

    def own(self, officer: str) -> bool:
        """Whether ``officer``'s account is linked to this case's applicant (回避 of one's own case)."""
        return OWN_CASE.get(officer) == self.applicant.id_number

    # ------------------------------------------------------------------ rules
    @rule(data=st.data(), officer=st.sampled_from(OFFICERS))
    def claim(self, data: st.DataObject, officer: str) -> None:
        rows = self.rows(kind="bpmn", state="ready", department="police_station")
        if not rows:
            return
        row = data.draw(st.sampled_from(rows))
        refused = self.attempt(desk.claim(World.staff[officer], str(row.id), engine=World.engine))
        free = row.assignee in (None, officer)
        excluded = self.signed_or_holds_sibling(row, officer)
        if refused is None:
            assert free and not excluded and not self.own(officer), (row.task_spec, officer)
        elif refused.code == "own_case_recusal":
            assert self.own(officer)
        elif refused.code == "already_signed_this_case":
            assert excluded
        else:
            assert not free, refused.code

    @rule(data=st.data())
    def unclaim(self, data: st.DataObject) -> None:
        rows = self.rows(kind="bpmn", state="claimed")
        if rows:
            row = data.draw(st.sampled_from(rows))
            assert self.attempt(desk.unclaim(World.staff[row.assignee], str(row.id))) is None

    @rule(data=st.data(), officer=st.sampled_from(OFFICERS))
    def complete(self, data: st.DataObject, officer: str) -> None:
        rows = self.rows(kind="bpmn", state__in=OPEN, department="police_station")
        if not rows:
            return
        row = data.draw(st.sampled_from(rows))
        if row.task_spec == "review":
            choice = data.draw(st.sampled_from(sorted(REVIEW_DATA)))
            form, opinion = REVIEW_DATA[choice], REVIEW_DATA[choice]["review_opinion"]
        else:
            choice = data.draw(st.sampled_from(["approve", "approve", "reject"]))
            opinion = self.opinion("同意" if choice == "approve" else "不同意")
            form = {"signature": {"decision": choice, "opinion": opinion}}
        mine_or_free = row.assignee in (None, officer)
        blocked = self.before_signer_open(row)
        excluded = self.signed_or_holds_sibling(row, officer)
        refused = self.attempt(desk.complete(World.engine, World.staff[officer], str(row.id), form))
        if refused is None:
            assert mine_or_free and not blocked and not excluded and not self.own(officer), (row.task_spec, officer)
            self.ref.done.append(Done(row.task_spec, str(row.id), choice, opinion, officer))
            return
        expected = {"already_signed_this_case": excluded, "waiting_for_added_signer": blocked,
                    "task_already_claimed": not mine_or_free, "own_case_recusal": self.own(officer)}
        assert expected.get(refused.code), (refused.code, refused.message)
        after = run(HumanTask.get(id=row.id))
        assert (after.state, after.assignee) == (row.state, row.assignee), "a refused completion changes nothing"

    @rule()
    def applicant_answers(self) -> None:
        rows = self.rows(kind="bpmn", task_spec="supplement_task", state__in=OPEN)
        if rows:
            data = {"supplement": {"note": self.opinion("已补正"), "photo_ref": "ZP20261207-0815"}}
            run(World.engine.complete_task(rows[0].id, data, actor=SINGLE_MOTHER.openid))
            self.ref.done.append(Done("supplement_task", str(rows[0].id), "ok", "", SINGLE_MOTHER.openid))

    @rule(data=st.data())
    def return_to_step(self, data: st.DataObject) -> None:
        rows = self.rows(kind="bpmn", state__in=OPEN, department="police_station")
        _, workflow, _ = run(World.engine.load(self.case_id))
        targets = [t["step"] for t in return_targets(workflow)]
        if not rows or not targets:
            return
        row, step = data.draw(st.sampled_from(rows)), data.draw(st.sampled_from(targets))
        officer = row.assignee or data.draw(st.sampled_from(ACTING))
        refused = self.attempt(task_ops.return_to_step(World.engine, self.case_id, target_task_spec=step,
                                                       actor=officer, department=row.department, reason="退回重办"))
        assert refused is None, refused
        self.ref.return_to(step)

    @rule(data=st.data())
    def request_supplement(self, data: st.DataObject) -> None:
        rows = self.rows(kind="bpmn", state__in=OPEN, department="police_station")
        if rows:
            row = data.draw(st.sampled_from(rows))
            officer = row.assignee or data.draw(st.sampled_from(ACTING))
            side = run(supplements.request_supplement(World.engine, row, actor=officer, reason="请补充租赁合同"))
            assert side.state == "ready" and run(HumanTask.get(id=row.id)).state == "waiting"

    @rule()
    def answer_supplement(self) -> None:
        sides = self.rows(kind="supplement", state__in=OPEN)
        if sides:
            main = run(supplements.supply(World.engine, sides[0], {"note": self.opinion("已补充")},
                                          actor=SINGLE_MOTHER.openid))
            assert main.state == "claimed"

    @rule(data=st.data(), to=st.sampled_from(OFFICERS))
    def transfer(self, data: st.DataObject, to: str) -> None:
        rows = self.rows(kind="bpmn", state__in=OPEN, department="police_station")
        if not rows:
            return
        row = data.draw(st.sampled_from(rows))
        officer = row.assignee or data.draw(st.sampled_from(ACTING))
        refused = self.attempt(task_ops.transfer(World.engine, row.id, actor=officer, to_username=to,
                                                 staff_lookup=desk.active_departments))
        excluded = self.signed_or_holds_sibling(row, to)
        if refused is None:
            assert not excluded and not self.own(to)
        elif refused.code == "own_case_recusal":
            assert self.own(to)
        else:
            assert refused.code == "already_signed_this_case" and excluded, refused.code

    @rule(data=st.data(), user=st.sampled_from(OFFICERS), position=st.sampled_from(["before", "after"]))
    def add_signer(self, data: st.DataObject, user: str, position: str) -> None:
        rows = self.rows(kind="bpmn", state__in=OPEN, department="police_station")
        if rows:
            row = data.draw(st.sampled_from(rows))
            officer = row.assignee or data.draw(st.sampled_from(ACTING))
            refused = self.attempt(task_ops.add_signer(World.engine, row.id, actor=officer, user=user,
                                                       position=position))
            assert (refused.code if refused else None) == ("own_case_recusal" if self.own(user) else None)

    @rule(data=st.data(), approve=st.booleans())
    def sign(self, data: st.DataObject, approve: bool) -> None:
        sides = self.rows(kind="cosign", state__in=OPEN)
        if sides:
            side = data.draw(st.sampled_from(sides))
            run(task_ops.complete_cosign(World.engine, side.id, actor=side.assignee, opinion="加签意见",
                                         approve=approve))

    def withdrawable(self, row: HumanTask) -> bool:
        return row.completed_by in OFFICERS  # not the applicant's own 补正 answers

    # ------------------------------------------------------------------ invariants
    @invariant()
    def matches_the_reference(self) -> None:
        case, workflow, _ = run(World.engine.load(self.case_id))
        assert World.engine.deps.serializer.dump(workflow) == case.state  # reload round-trips
        expected = self.ref.decision()
        if case.status == "running":
            assert expected is None, expected
            open_rows = self.rows(state__in=(*OPEN, "waiting"))
            for row in open_rows:  # every open task belongs to its step's department
                want = {"review": "police_station", CS: "police_station", "supplement_task": "applicant"}
                if row.kind == "bpmn":
                    assert row.department == want[row.task_spec], (row.task_spec, row.department)
            waits = any(r.task_spec == "supplement_task" or r.kind == "supplement" or r.state == "waiting"
                        for r in open_rows)
            assert (case.paused_at is not None) == waits  # SLA paused exactly while the applicant has it
            # 退回 offers the steps done on the current path; a 会签 only once concluded (here the case
            # ends when it concludes), not while its other instance is still open
            steps = {t["step"] for t in return_targets(workflow)}
            assert steps == {d.spec for d in self.ref.done} - {CS}
        else:
            assert expected is not None, [(d.spec, d.choice) for d in self.ref.done]
            data = workflow.data
            assert data["outcome"] == expected[0]
            if expected[0] == "approved":  # the withdrawn signatures left no trace
                assert "；".join(s["opinion"] for s in data["signatures"]) == expected[1]
            else:
                assert data["reject_reason"] == expected[1]
        # distinct signers: the effective signatures of the round come from different officers
        signers = [d.actor for d in self.ref.round()]
        assert len(signers) == len(set(signers)), signers
        current = {str(t.id) for t in workflow.get_tasks() if t.task_spec.name == CS}
        done_by = [r.completed_by for r in self.rows(task_spec=CS, state="completed") if str(r.id) in current]
        assert len(done_by) == len(set(done_by)), done_by


# ---------------------------------------------------------------------------- 差评整改 (timers, 回避)
MCA_STAFF = ("mca01", "mca02", "sup01", "sup02")
RECT_DEPARTMENTS = {"follow_up": "mca", "rectify": "mca", "supervise": "supervisor"}
FINDINGS = ("substantiated", "partly", "unsubstantiated")


class RectificationOperations(CaseOperations):
    """差评整改 under random staff operations, with its boundary timers past or future: a timer
    that fires hands the case to 督办, whose officer may not be whoever did the follow-up or the
    rectification (recuseFrom)."""

    @initialize(follow_up_past=st.booleans(), rectify_past=st.booleans())
    def start(self, follow_up_past: bool, rectify_past: bool) -> None:
        from tests.processes.test_rectification import REVIEW, start_rectification

        now = World.engine.deps.clock()
        due = {True: now - timedelta(hours=1), False: now + timedelta(days=30)}
        self.past = follow_up_past or rectify_past
        started = run(start_rectification(World.engine, World.applications, REVIEW, {
            "follow_up_due": due[follow_up_past].isoformat(), "rectify_due": due[rectify_past].isoformat()}))
        self.case_id = started.id
        self.ref = Reference()
        self.serial = 0

    def excluded(self, row: HumanTask, officer: str) -> bool:
        return row.task_spec == "supervise" and any(
            d.actor == officer and d.spec in ("follow_up", "rectify") for d in self.ref.done)

    def visible(self, row: HumanTask, officer: str) -> bool:
        return row.department in desk.departments_of(World.staff[officer])

    @rule(data=st.data(), officer=st.sampled_from(MCA_STAFF))
    def claim(self, data: st.DataObject, officer: str) -> None:
        rows = self.rows(kind="bpmn", state="ready")
        if not rows:
            return
        row = data.draw(st.sampled_from(rows))
        refused = self.attempt(desk.claim(World.staff[officer], str(row.id), engine=World.engine))
        if refused is None:
            assert self.visible(row, officer) and not self.excluded(row, officer)
        else:
            assert {"forbidden_department": not self.visible(row, officer),
                    "recusal_required": self.excluded(row, officer),
                    "task_already_claimed": row.assignee not in (None, officer)}.get(refused.code), refused.code

    @rule(data=st.data())
    def unclaim(self, data: st.DataObject) -> None:
        rows = self.rows(kind="bpmn", state="claimed")
        if rows:
            row = data.draw(st.sampled_from(rows))
            assert self.attempt(desk.unclaim(World.staff[row.assignee], str(row.id))) is None

    @rule(data=st.data(), officer=st.sampled_from(MCA_STAFF))
    def complete(self, data: st.DataObject, officer: str) -> None:
        rows = self.rows(kind="bpmn", state__in=OPEN)
        if not rows:
            return
        row = data.draw(st.sampled_from(rows))
        text = self.opinion("记录")
        if row.task_spec == "follow_up":
            choice = data.draw(st.sampled_from(FINDINGS))
            form = {"follow_up": {"contacted": True, "method": "phone", "finding": choice, "note": text}}
        elif row.task_spec == "rectify":
            choice, form = "done", {"rectification": {"measures": "修订告知单", "result": text,
                                                     "completed_on": "2026-12-04"}}
        else:
            choice, form = "done", {"supervision": {"opinion": "责成整改", "measures": "约谈", "result": text}}
        free = row.assignee in (None, officer)
        refused = self.attempt(desk.complete(World.engine, World.staff[officer], str(row.id), form))
        if refused is None:
            assert free and self.visible(row, officer) and not self.excluded(row, officer)
            self.ref.done.append(Done(row.task_spec, str(row.id), choice, text, officer))
            return
        assert {"forbidden_department": not self.visible(row, officer),
                "recusal_required": self.excluded(row, officer),
                "task_already_claimed": not free,
                "task_already_completed": False}.get(refused.code), (refused.code, refused.message)
        after = run(HumanTask.get(id=row.id))
        assert (after.state, after.assignee) == (row.state, row.assignee)

    @rule(data=st.data(), to=st.sampled_from(MCA_STAFF))
    def transfer(self, data: st.DataObject, to: str) -> None:
        rows = self.rows(kind="bpmn", state__in=OPEN)
        if not rows:
            return
        row = data.draw(st.sampled_from(rows))
        officer = row.assignee or data.draw(st.sampled_from(MCA_STAFF))
        refused = self.attempt(task_ops.transfer(World.engine, row.id, actor=officer, to_username=to,
                                                 staff_lookup=desk.active_departments))
        if refused is None:
            assert row.department in STAFF[to][0] and not self.excluded(row, to)
        else:
            assert {"transfer_other_department": row.department not in STAFF[to][0],
                    "recusal_required": self.excluded(row, to)}.get(refused.code), refused.code

    @rule(data=st.data())
    def return_to_step(self, data: st.DataObject) -> None:
        rows = self.rows(kind="bpmn", state__in=OPEN)
        _, workflow, _ = run(World.engine.load(self.case_id))
        targets = [t["step"] for t in return_targets(workflow)]
        if rows and targets:
            step = data.draw(st.sampled_from(targets))
            assert self.attempt(task_ops.return_to_step(World.engine, self.case_id, target_task_spec=step,
                                                        actor="sup01", department="supervisor",
                                                        reason="退回重办")) is None
            self.ref.return_to(step)

    @invariant()
    def matches_the_reference(self) -> None:
        case, workflow, _ = run(World.engine.load(self.case_id))
        assert World.engine.deps.serializer.dump(workflow) == case.state
        assert case.paused_at is None  # nothing here waits for the applicant
        last = self.ref.done[-1] if self.ref.done else None
        expected = None
        if last is not None and last.spec == "supervise":
            expected = ("escalated", "经督办处理：" + last.opinion)
        elif last is not None and last.spec == "rectify":
            expected = ("rectified", "已整改：" + last.opinion)
        elif last is not None and last.choice == "unsubstantiated":
            expected = ("unsubstantiated", "经回访核实，差评反映情况不属实：" + last.opinion)
        open_rows = self.rows(kind="bpmn", state__in=OPEN)
        if any(r.task_spec == "supervise" for r in open_rows) or (expected and expected[0] == "escalated"):
            assert self.past, "a timer fired before its time"
        if case.status == "running":
            assert expected is None, expected
            for row in open_rows:
                assert row.department == RECT_DEPARTMENTS[row.task_spec], (row.task_spec, row.department)
            assert {t["step"] for t in return_targets(workflow)} == {d.spec for d in self.ref.done}
        else:
            assert expected is not None, [(d.spec, d.choice) for d in self.ref.done]
            assert (workflow.data["outcome"], workflow.data["result_message"]) == expected


# ---------------------------------------------------------------------------- 企业开办一件事 (parallel lanes)
BRANCH_STAFF = {"samr": ("samr01", "samr02"), "psb": ("psb01",), "tax": ("tax01",), "hrss": ("hrss01",),
                "hpf": ("hpf01",), "bank": ("bank01",)}
INTAKE = {"accept": {"intake_accepted": True, "intake_opinion": "材料齐全，符合法定形式，予以受理"},
          "refuse": {"intake_accepted": False, "intake_opinion": "住所使用证明与登记住所不一致"}}


class BusinessStartupOperations(CaseOperations):
    """企业开办一件事: the window's intake check, then five departments in parallel lanes; 退回 to a
    branch resets that branch only, 退回 to intake every branch."""

    @initialize()
    def start(self) -> None:
        from tests.processes.test_business_startup import FORM as STARTUP
        from tests.processes.test_business_startup import WANG

        started = run(World.applications.apply("business-startup", STARTUP, applicant=WANG))
        self.case_id = started.id
        self.ref = Reference()
        self.serial = 0

    def return_to(self, step: str) -> None:
        if step == "intake_check":
            self.ref.return_to(step)
        else:  # a parallel branch: only its own completion
            index = self.ref.last(step)
            assert index is not None
            del self.ref.done[index]

    @rule(data=st.data())
    def claim_or_unclaim(self, data: st.DataObject) -> None:
        rows = self.rows(kind="bpmn", state__in=OPEN)
        if not rows:
            return
        row = data.draw(st.sampled_from(rows))
        officer = row.assignee or data.draw(st.sampled_from(BRANCH_STAFF[row.department]))
        action = desk.unclaim(World.staff[officer], str(row.id)) if row.state == "claimed" else \
            desk.claim(World.staff[officer], str(row.id), engine=World.engine)
        assert self.attempt(action) is None

    @rule(data=st.data(), refuse=st.booleans())
    def complete(self, data: st.DataObject, refuse: bool) -> None:
        from tests.processes.test_business_startup import BRANCHES

        rows = self.rows(kind="bpmn", state__in=OPEN)
        if not rows:
            return
        row = data.draw(st.sampled_from(rows))
        officer = row.assignee or data.draw(st.sampled_from(BRANCH_STAFF[row.department]))
        choice = ("refuse" if refuse else "accept") if row.task_spec == "intake_check" else "done"
        form = INTAKE[choice] if row.task_spec == "intake_check" else BRANCHES[row.task_spec][1]
        blocked = bool(self.rows(kind="cosign", task_spec=f"cosign:before:{row.id}", state__in=OPEN))
        refused = self.attempt(desk.complete(World.engine, World.staff[officer], str(row.id), form))
        if refused is None:
            assert not blocked
            self.ref.done.append(Done(row.task_spec, str(row.id), choice, "", officer))
            if row.task_spec == "psb_seal":  # the filing waits for the seal-engraving case: psb reports it
                _, workflow, _ = run(World.engine.load(self.case_id))
                company = workflow.last_task.data["registration"]["uscc"]
                run(World.engine.messages.send("seal_engraved", {"uscc": company}, {"engraved_on": "2026-11-30"},
                                               source="system:psb_seal"))
        else:
            assert refused.code == "waiting_for_added_signer" and blocked, refused.code

    @rule(data=st.data())
    def return_to_step(self, data: st.DataObject) -> None:
        rows = self.rows(kind="bpmn", state__in=OPEN)
        _, workflow, _ = run(World.engine.load(self.case_id))
        targets = [t["step"] for t in return_targets(workflow)]
        if rows and targets:
            step = data.draw(st.sampled_from(targets))
            assert self.attempt(task_ops.return_to_step(World.engine, self.case_id, target_task_spec=step,
                                                        actor="samr01", department="samr", reason="退回")) is None
            self.return_to(step)

    @rule(data=st.data())
    def transfer_or_add_signer(self, data: st.DataObject) -> None:
        rows = [r for r in self.rows(kind="bpmn", state__in=OPEN) if r.department == "samr"]
        if rows:
            row = data.draw(st.sampled_from(rows))
            officer = row.assignee or "samr01"
            other = "samr02" if officer == "samr01" else "samr01"
            if data.draw(st.booleans()):
                run(task_ops.transfer(World.engine, row.id, actor=officer, to_username=other,
                                      staff_lookup=desk.active_departments))
            else:
                run(task_ops.add_signer(World.engine, row.id, actor=officer, user=other,
                                        position=data.draw(st.sampled_from(["before", "after"]))))

    @rule(data=st.data())
    def sign(self, data: st.DataObject) -> None:
        sides = self.rows(kind="cosign", state__in=OPEN)
        if sides:
            side = data.draw(st.sampled_from(sides))
            run(task_ops.complete_cosign(World.engine, side.id, actor=side.assignee, opinion="同意", approve=True))

    def withdrawn(self, task_id: str) -> None:
        # parallel lanes: any lane's last completion may be withdrawn, not only the case's last one
        [index] = [i for i, d in enumerate(self.ref.done) if d.task_id == task_id]
        del self.ref.done[index]

    @invariant()
    def matches_the_reference(self) -> None:
        from tests.processes.test_business_startup import BRANCHES

        case, workflow, _ = run(World.engine.load(self.case_id))
        assert World.engine.deps.serializer.dump(workflow) == case.state
        index = self.ref.last("intake_check")
        intake = self.ref.done[index] if index is not None else None
        branches = {d.spec for d in self.ref.done[(index or 0) + 1:]} if intake else set()
        expected = None
        if intake is not None and intake.choice == "refuse":
            expected = {"outcome": "rejected", "stage": "intake", "reason": "不予受理：住所使用证明与登记住所不一致"}
        elif intake is not None and branches == set(BRANCHES):
            expected = "approved"
        if case.status == "running":
            assert expected is None, expected
            for row in self.rows(kind="bpmn", state__in=(*OPEN, "waiting")):
                want = "samr" if row.task_spec == "intake_check" else BRANCHES[row.task_spec][0]
                assert row.department == want, (row.task_spec, row.department)
            assert {t["step"] for t in return_targets(workflow)} == {d.spec for d in self.ref.done}
        else:
            result = workflow.data["result"]
            assert expected is not None, [(d.spec, d.choice) for d in self.ref.done]
            assert result == expected if isinstance(expected, dict) else result["outcome"] == expected
            # no valid certificate outlives a refusal; approved: one valid licence (退回 revoked the earlier)
            valid = [c.type_code for c in run(Certificate.filter(case_id=self.case_id, state="01"))]
            assert (len(valid) == len(set(valid)) and valid) if expected == "approved" else not valid, valid



# ---------------------------------------------------------------------------- lanes of officers (senior card, newborn)
class LaneOperations(CaseOperations):
    """Shared rules for processes whose steps each sit in one department's lane, with no 会签:
    认领/释放, 办结 (the step's choices), 退回, 补正 and its answer, 转办, 加签 and the signer's opinion,
    撤回 and timers, by officers of the task's department and of others (who are refused)."""

    OFFICERS: tuple[str, ...] = ()
    DEPARTMENTS: dict[str, str] = {}  # step -> department
    TIMED = True  # the item promises a time limit (承诺件): an SLA clock runs

    def forms(self, step: str) -> dict[str, dict[str, Any]]:  # choice -> form data
        raise NotImplementedError

    def returned(self, step: str) -> None:
        self.ref.return_to(step)

    def expected(self) -> tuple[str, str] | None:
        raise NotImplementedError

    def ended_as(self, data: dict[str, Any]) -> tuple[str, str]:
        raise NotImplementedError

    own = ResidencePermitOperations.own

    def visible(self, row: HumanTask, officer: str) -> bool:
        return row.department in desk.departments_of(World.staff[officer])

    def before_signer_open(self, row: HumanTask) -> bool:
        return bool(self.rows(kind="cosign", task_spec=f"cosign:before:{row.id}", state__in=OPEN))

    @rule(data=st.data())
    def claim_or_unclaim(self, data: st.DataObject) -> None:
        rows = self.rows(kind="bpmn", state__in=OPEN)
        if not rows:
            return
        row = data.draw(st.sampled_from(rows))
        if row.state == "claimed":
            assert self.attempt(desk.unclaim(World.staff[row.assignee], str(row.id))) is None
            return
        officer = data.draw(st.sampled_from(self.OFFICERS))
        refused = self.attempt(desk.claim(World.staff[officer], str(row.id), engine=World.engine))
        free = row.assignee in (None, officer)
        if refused is None:
            assert free and self.visible(row, officer) and not self.own(officer), (row.task_spec, officer)
        else:
            assert {"forbidden_department": not self.visible(row, officer), "own_case_recusal": self.own(officer),
                    "task_already_claimed": not free}.get(refused.code), refused.code

    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        rows = self.rows(kind="bpmn", state__in=OPEN)
        if not rows:
            return
        row = data.draw(st.sampled_from(rows))
        officer = data.draw(st.sampled_from(self.OFFICERS))
        forms = self.forms(row.task_spec)
        choice = data.draw(st.sampled_from(sorted(forms)))
        text = self.opinion("意见")
        form = forms[choice](text)
        free = row.assignee in (None, officer)
        blocked = self.before_signer_open(row)
        refused = self.attempt(desk.complete(World.engine, World.staff[officer], str(row.id), form))
        if refused is None:
            assert free and self.visible(row, officer) and not blocked and not self.own(officer), row.task_spec
            self.ref.done.append(Done(row.task_spec, str(row.id), choice, text, officer))
            return
        assert {"forbidden_department": not self.visible(row, officer), "own_case_recusal": self.own(officer),
                "waiting_for_added_signer": blocked,
                "task_already_claimed": not free}.get(refused.code), (refused.code, refused.message)
        after = run(HumanTask.get(id=row.id))
        assert (after.state, after.assignee) == (row.state, row.assignee), "a refused completion changes nothing"

    def actor_of(self, data: st.DataObject, row: HumanTask) -> str:
        return row.assignee or data.draw(st.sampled_from(
            [o for o in self.OFFICERS if row.department in STAFF[o][0] and not self.own(o)]))

    @rule(data=st.data())
    def return_to_step(self, data: st.DataObject) -> None:
        rows = self.rows(kind="bpmn", state__in=OPEN)
        _, workflow, _ = run(World.engine.load(self.case_id))
        targets = [t["step"] for t in return_targets(workflow)]
        if not rows or not targets:
            return
        row, step = data.draw(st.sampled_from(rows)), data.draw(st.sampled_from(targets))
        refused = self.attempt(task_ops.return_to_step(World.engine, self.case_id, target_task_spec=step,
                                                       actor=self.actor_of(data, row), department=row.department,
                                                       reason="退回重办"))
        assert refused is None, refused
        self.returned(step)

    @rule(data=st.data())
    def request_supplement(self, data: st.DataObject) -> None:
        rows = self.rows(kind="bpmn", state__in=OPEN)
        if rows:
            row = data.draw(st.sampled_from(rows))
            side = run(supplements.request_supplement(World.engine, row, actor=self.actor_of(data, row),
                                                      reason="请补充材料"))
            assert side.state == "ready" and run(HumanTask.get(id=row.id)).state == "waiting"

    @rule()
    def answer_supplement(self) -> None:
        sides = self.rows(kind="supplement", state__in=OPEN)
        if sides:
            main = run(supplements.supply(World.engine, sides[0], {"note": self.opinion("已补充")},
                                          actor=self.applicant.openid))
            assert main.state == "claimed"

    @rule(data=st.data())
    def transfer(self, data: st.DataObject) -> None:
        rows = self.rows(kind="bpmn", state__in=OPEN)
        if not rows:
            return
        row = data.draw(st.sampled_from(rows))
        officer, to = self.actor_of(data, row), data.draw(st.sampled_from(self.OFFICERS))
        refused = self.attempt(task_ops.transfer(World.engine, row.id, actor=officer, to_username=to,
                                                 staff_lookup=desk.active_departments))
        if refused is None:
            assert row.department in STAFF[to][0] and not self.own(to)
        else:
            assert {"transfer_other_department": row.department not in STAFF[to][0],
                    "own_case_recusal": self.own(to)}.get(refused.code), refused.code

    @rule(data=st.data(), position=st.sampled_from(["before", "after"]))
    def add_signer(self, data: st.DataObject, position: str) -> None:
        rows = self.rows(kind="bpmn", state__in=OPEN)
        if rows:
            row = data.draw(st.sampled_from(rows))
            officer, user = self.actor_of(data, row), data.draw(st.sampled_from(self.OFFICERS))
            refused = self.attempt(task_ops.add_signer(World.engine, row.id, actor=officer, user=user,
                                                       position=position))
            assert (refused.code if refused else None) == ("own_case_recusal" if self.own(user) else None)

    @rule(data=st.data(), approve=st.booleans())
    def sign(self, data: st.DataObject, approve: bool) -> None:
        sides = self.rows(kind="cosign", state__in=OPEN)
        if sides:
            side = data.draw(st.sampled_from(sides))
            run(task_ops.complete_cosign(World.engine, side.id, actor=side.assignee, opinion="加签意见",
                                         approve=approve))

    @invariant()
    def matches_the_reference(self) -> None:
        case, workflow, _ = run(World.engine.load(self.case_id))
        assert World.engine.deps.serializer.dump(workflow) == case.state  # reload round-trips
        expected = self.expected()
        open_rows = self.rows(state__in=(*OPEN, "waiting"))
        if case.status == "running":
            assert expected is None, expected
            for row in open_rows:
                if row.kind == "bpmn":
                    assert row.department == self.DEPARTMENTS[row.task_spec], (row.task_spec, row.department)
            waits = any(r.kind == "supplement" or r.state == "waiting" for r in open_rows)
            if self.TIMED:  # SLA paused exactly while the applicant has it
                assert case.due_at is not None and (case.paused_at is not None) == waits
            else:  # a 即办件 has no clock to pause, even while a 补正 waits
                assert case.due_at is None and case.paused_at is None
            assert {t["step"] for t in return_targets(workflow)} == {d.spec for d in self.ref.done}
        else:
            assert expected is not None, [(d.spec, d.choice) for d in self.ref.done]
            assert self.ended_as(workflow.data) == expected
            assert not [r for r in open_rows if r.kind != "review"], "a finished case keeps no open task"
        # the timeline tells the same story: one effective completion per completed-and-not-undone row
        done_rows = {str(r.id) for r in self.rows(kind="bpmn", state="completed")}
        assert {d.task_id for d in self.ref.done} <= done_rows


# ---------------------------------------------------------------------------- 老年人优待证 (秒批, one officer step)
SENIOR_OFFICERS = ("mca01", "mca02", "sup02")
SENIOR_AUTO = {"approve": ("approved", "申请人年满60周岁且为本市户籍，符合申领条件，自动准予"),
               "reject": ("rejected", "申请人未满60周岁，不符合老年人优待证申领条件")}


class SeniorCardOperations(LaneOperations):
    """老年人优待证: 秒批 for a local 60+ (准予) or an under-60 (不予) — no officer may change that
    decision, there is no task — and 民政人工审核 for a non-local or unregistered applicant."""

    OFFICERS = SENIOR_OFFICERS
    DEPARTMENTS = {"officer_review": "mca"}
    TIMED = False  # 即办件

    @initialize(who=st.sampled_from(["approve", "reject", "nonlocal", "unknown"]))
    def start(self, who: str) -> None:
        from tests.processes.test_senior_card import FORM as SENIOR_FORM
        from tests.processes.test_senior_card import LI, UNKNOWN, WANG, ZHANG

        self.applicant = {"approve": WANG, "reject": LI, "nonlocal": ZHANG, "unknown": UNKNOWN}[who]
        self.auto = SENIOR_AUTO.get(who)
        started = run(World.applications.apply("senior-card", {**SENIOR_FORM, "phone": "13800138000"},
                                               applicant=self.applicant))
        self.case_id = started.id
        self.ref = Reference()
        self.serial = 0
        assert (started.status == "completed") == (self.auto is not None)

    def forms(self, step: str) -> dict[str, Any]:
        return {"approve": lambda text: {"review_approved": True, "review_opinion": text},
                "reject": lambda text: {"review_approved": False, "review_opinion": text}}

    def expected(self) -> tuple[str, str] | None:
        if self.auto is not None:
            return self.auto
        index = self.ref.last("officer_review")
        if index is None:
            return None
        review = self.ref.done[index]
        if review.choice == "approve":
            return "approved", "经民政部门人工审核准予：" + review.opinion
        return "rejected", "经民政部门人工审核不予办理：" + review.opinion

    def ended_as(self, data: dict[str, Any]) -> tuple[str, str]:
        result = data["result"]
        assert result["decided_by"] == ("auto" if self.auto else "officer")
        issued = run(Certificate.filter(case_id=self.case_id, state="01").count())
        assert issued == (1 if result["outcome"] == "approved" else 0), issued  # one card, only when approved
        return result["outcome"], result["reason"]


# ---------------------------------------------------------------------------- 出生一件事 (four departments)
NEWBORN_OFFICERS = ("nhc01", "psb01", "psb02", "nhsa01", "hrss01")
NEWBORN_DEPARTMENTS = {"verify_birth": "nhc", "register_household": "psb", "enrol_insurance": "nhsa",
                       "apply_social_card": "hrss"}
BRANCH_STEPS = ("enrol_insurance", "apply_social_card")


class NewbornOperations(LaneOperations):
    """出生一件事: 卫健 verifies the birth when the shared record does not (or names other parents),
    公安 registers the household, then 医保 and 人社 in parallel; 退回 to a branch resets that branch."""

    OFFICERS = NEWBORN_OFFICERS
    DEPARTMENTS = NEWBORN_DEPARTMENTS

    @initialize(who=st.sampled_from(["verified", "not_found", "not_parent"]))
    def start(self, who: str) -> None:
        from tests.processes.conftest import MOTHER
        from tests.processes.test_newborn import FORM as NEWBORN_FORM

        self.applicant = SINGLE_MOTHER if who == "not_parent" else MOTHER
        form = {**NEWBORN_FORM, "birth_certificate_no": "Q312699999"} if who == "not_found" else NEWBORN_FORM
        started = run(World.applications.apply("newborn", form, applicant=self.applicant))
        self.case_id = started.id
        self.ref = Reference()
        self.serial = 0
        assert [t.task_spec for t in started.ready_tasks] == (
            ["register_household"] if who == "verified" else ["verify_birth"])

    def forms(self, step: str) -> dict[str, Any]:
        from tests.processes.test_newborn import INSURANCE, SOCIAL_CARD, household_approval

        if step == "verify_birth":
            return {"confirmed": lambda text: {"birth_verification": {
                        "outcome": "confirmed", "gender": "女", "birth_date": "2026-11-20",
                        "hospital": "上海市第一妇婴保健院", "opinion": text}},
                    "rejected": lambda text: {"birth_verification": {"outcome": "rejected", "opinion": text}}}
        if step == "register_household":
            return {"approve": lambda text: household_approval(opinion=text),
                    "reject": lambda text: {"household": {"outcome": "reject", "opinion": text}}}
        form = INSURANCE if step == "enrol_insurance" else SOCIAL_CARD
        return {"done": lambda text: form}

    def returned(self, step: str) -> None:
        if step in BRANCH_STEPS:  # a parallel branch: only its own completion
            index = self.ref.last(step)
            assert index is not None
            del self.ref.done[index]
        else:
            self.ref.return_to(step)

    def expected(self) -> tuple[str, str] | None:
        done = {d.spec: d for d in self.ref.done}
        verify, register = done.get("verify_birth"), done.get("register_household")
        if verify is not None and verify.choice == "rejected":
            return "rejected", "出生医学证明核验不通过：" + verify.opinion
        if register is not None and register.choice == "reject":
            return "rejected", "不予户口登记：" + register.opinion
        if register is not None and set(BRANCH_STEPS) <= set(done):
            return "completed", "周小雨的出生一件事已办结：户口登记、医保参保、社会保障卡均已办理，电子证照已发放"
        return None

    def ended_as(self, data: dict[str, Any]) -> tuple[str, str]:
        # the valid certificates are exactly those of the decision: 退回 revoked what its undone path issued
        valid = {c.identifier for c in run(Certificate.filter(case_id=self.case_id, state="01"))}
        assert valid == (set(data["certificates"]) if data["outcome"] == "completed" else set()), valid
        return data["outcome"], data["result_message"]


def _settings(db_url: str) -> Settings:
    return Settings(DATABASE_URL=db_url, PROCESSES_DIR=Path(__file__).resolve().parents[3] / "processes")


STAFF = {**{u: (["police_station"], ["officer"]) for u in OFFICERS},
         "mca01": (["mca"], ["officer"]), "mca02": (["mca"], ["officer"]),
         "sup01": (["mca"], ["supervisor"]), "sup02": (["supervisor"], ["supervisor"]),
         **{u: ([d], ["officer"]) for d, users in BRANCH_STAFF.items() for u in users},
         "nhc01": (["nhc"], ["officer"]), "psb02": (["psb"], ["officer"]), "nhsa01": (["nhsa"], ["officer"])}


PROGRESS = os.environ.get("GOVFLOW_MODEL_PROGRESS")


def _counted(machine: type[RuleBasedStateMachine]) -> type[RuleBasedStateMachine]:
    """``machine`` that appends its name to the ``GOVFLOW_MODEL_PROGRESS`` file after each example."""
    if not PROGRESS:
        return machine

    class Counted(machine):  # type: ignore[valid-type, misc]
        def teardown(self) -> None:
            super().teardown()
            with open(PROGRESS, "a", encoding="utf-8") as out:
                out.write(f"{machine.__name__}\n")

    Counted.__name__ = Counted.__qualname__ = machine.__name__
    return Counted


def _run_machine(db_url: str, machine: type[RuleBasedStateMachine]) -> None:
    loop = asyncio.new_event_loop()
    World.loop = loop
    try:
        if TEST_DB == "postgres":
            loop.run_until_complete(_reset_postgres(db_url))
        loop.run_until_complete(init_db(db_url, generate_schemas=True))
        settings_ = _settings(db_url)
        World.engine = build_engine(settings_)
        World.applications = application_service(World.engine, settings_)
        World.staff = {}
        for username, (departments, roles) in STAFF.items():
            World.staff[username] = loop.run_until_complete(StaffUser.create(
                username=username, name=username, password_hash=hash_password("x" * 12),
                departments=departments, roles=roles))
            if username in OWN_CASE:  # 回避: this account is the person's own
                World.staff[username] = loop.run_until_complete(link_identity(
                    username, OWN_CASE[username], pii_key=PiiKeys.from_settings(settings_).blind_index_key))
        run_state_machine_as_test(_counted(machine), settings=settings(
            max_examples=max(1, int(EXAMPLES * SCALE)), stateful_step_count=STEPS, deadline=None,
            database=None, suppress_health_check=list(HealthCheck)))
    finally:
        loop.run_until_complete(close_db())
        loop.close()


def test_residence_permit_operations_end_in_the_reference_decision(db_url: str) -> None:
    _run_machine(db_url, ResidencePermitOperations)


def test_rectification_operations_end_in_the_reference_decision(db_url: str) -> None:
    _run_machine(db_url, RectificationOperations)


def test_business_startup_operations_end_in_the_reference_decision(db_url: str) -> None:
    _run_machine(db_url, BusinessStartupOperations)


def test_senior_card_operations_end_in_the_reference_decision(db_url: str) -> None:
    _run_machine(db_url, SeniorCardOperations)


def test_newborn_operations_end_in_the_reference_decision(db_url: str) -> None:
    _run_machine(db_url, NewbornOperations)


pytestmark = pytest.mark.timeout(0 if SCALE > 1 else 300)
