"""回避 of one's own case (engine.workbench.assignment, issue #14): a staff account linked to its
officer's ID number (``StaffUser.id_hash``, the citizens' blind index) never claims, completes, is
handed (转办) or added as signer (加签) to a task of a case that names that person — as applicant or by
ID number in the application form — 409 ``own_case_recusal``; the task detail says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.accountability.privacy import PiiKeys, blind_index
from engine.citizen.applications import ApplicationService
from engine.errors import NotFound, ValidationFailed
from engine.kernel.cases import CaseEngine
from engine.platform.seed import read_staff
from engine.store.models import HumanTask, StaffUser
from engine.workbench import link_identity
from engine.workbench import staff as desk
from engine.workbench.assignment import OwnCaseRecusal, case_people
from engine.workbench.task_detail import task_detail
from engine.workbench.task_ops import add_signer, transfer
from tests.engine.helpers import intake_task
from tests.processes.test_business_startup import FORM, LI, WANG

pytestmark = pytest.mark.usefixtures("people")


def key(settings) -> bytes:  # noqa: ANN001 - engine.config.Settings
    return PiiKeys.from_settings(settings).blind_index_key


async def test_the_applicants_own_account_cannot_claim_complete_or_be_given_the_task(
        engine: CaseEngine, applications: ApplicationService, people: dict[str, StaffUser], settings) -> None:
    linked = await link_identity("samr01", WANG.id_number, pii_key=key(settings))
    assert linked.id_hash == blind_index(WANG.id_number, key(settings))  # the citizens' hash, not the number
    assert WANG.id_number not in str(await StaffUser.filter(username="samr01").values())
    me = await StaffUser.get(username="samr01")
    task_id = await intake_task(applications)  # WANG applies; he is also the legal representative

    with pytest.raises(OwnCaseRecusal) as claimed:
        await desk.claim(me, task_id, engine=engine)
    assert claimed.value.code == "own_case_recusal" and "回避" in claimed.value.message
    with pytest.raises(OwnCaseRecusal):
        await desk.complete(engine, me, task_id, {"intake_accepted": True, "intake_opinion": "予以受理"})
    with pytest.raises(OwnCaseRecusal):  # the engine itself refuses, whoever calls it
        await engine.complete_task(task_id, {"intake_accepted": True, "intake_opinion": "予以受理"}, actor="samr01")
    row = await HumanTask.get(id=task_id)
    assert (row.state, row.assignee) == ("ready", None)  # the refusals left no claim behind
    with pytest.raises(OwnCaseRecusal) as handed:
        await transfer(engine, task_id, actor="samr02", to_username="samr01", staff_lookup=desk.active_departments)
    assert handed.value.message.startswith("samr01是本办件的申请人")
    with pytest.raises(OwnCaseRecusal):
        await add_signer(engine, task_id, actor="samr02", user="samr01", position="before")
    assert (await HumanTask.get(id=task_id)).assignee is None

    # the workbench shows why: no silently missing button
    detail = await task_detail(engine, me, task_id)
    assert "claim" not in detail["actions"] and "complete" not in detail["actions"]
    assert "回避" in detail["blocked"]["claim"] and detail["blocked"]["complete"] == detail["blocked"]["claim"]
    other = await task_detail(engine, people["samr02"], task_id)
    assert {"claim", "complete"} <= set(other["actions"]) and "complete" not in other["blocked"]

    # a colleague handles it; unlinked, the account is an ordinary officer again
    assert (await desk.claim(people["samr02"], task_id, engine=engine)).assignee == "samr02"
    await desk.unclaim(people["samr02"], task_id)
    await link_identity("samr01", None, pii_key=key(settings))
    assert (await desk.claim(await StaffUser.get(username="samr01"), task_id, engine=engine)).assignee == "samr01"


async def test_a_person_named_in_the_form_is_recused_too(
        engine: CaseEngine, applications: ApplicationService, settings) -> None:
    await link_identity("samr02", LI["id_number"], pii_key=key(settings))  # a shareholder, not the applicant
    task_id = await intake_task(applications)
    with pytest.raises(OwnCaseRecusal):
        await desk.claim(await StaffUser.get(username="samr02"), task_id, engine=engine)
    # an officer linked to somebody else is not affected
    await link_identity("samr01", "310107198107011877", pii_key=key(settings))
    assert (await desk.claim(await StaffUser.get(username="samr01"), task_id, engine=engine)).assignee == "samr01"


def test_the_people_a_case_names() -> None:
    data = {"applicant": {"id_number": WANG.id_number}, "form": FORM}
    assert case_people(data) == {WANG.id_number, LI["id_number"]}
    assert case_people({"applicant": {"id_number": "11010119900307 001x"}, "form": {}}) == {"11010119900307001X"}
    assert case_people({}) == set()


async def test_linking_checks_the_number_and_the_account(engine: CaseEngine, settings) -> None:
    with pytest.raises(ValidationFailed) as bad:
        await link_identity("samr01", "310104196103150274", pii_key=key(settings))  # wrong check digit
    assert bad.value.fields == {"id_number": "身份证号不正确，请检查后重新输入"}
    assert (await StaffUser.get(username="samr01")).id_hash is None
    with pytest.raises(NotFound):
        await link_identity("nobody", WANG.id_number, pii_key=key(settings))


def test_staff_csv_may_name_the_officers_own_id_number(tmp_path: Path) -> None:
    csv = tmp_path / "staff.csv"
    csv.write_text("username,name,departments,roles,id_number\nmca01,张敏,mca,officer,310104196103150273\n"
                   "mca02,李静,mca,officer,\n", encoding="utf-8")
    rows = read_staff(csv)
    assert [r["id_number"] for r in rows] == ["310104196103150273", None]
    legacy = tmp_path / "legacy.csv"
    legacy.write_text("username,name,departments,roles\nmca01,张敏,mca,officer\n", encoding="utf-8")
    assert read_staff(legacy)[0]["id_number"] is None


# ------------------------------------------------------------------ side tasks: 人工复核 and 加签
async def test_the_applicants_own_account_cannot_review_the_automatic_refusal_of_their_application(
        engine: CaseEngine, applications: ApplicationService, settings) -> None:
    """A citizen asks for a human review (人工复核) of an automatic refusal: the 民政 officer who is
    that citizen may neither claim nor decide it, and the workbench says why; a colleague may."""
    from engine.citizen.case_views import owned_case, request_review
    from tests.engine.citizen.test_case_views import SENIOR_FORM, YOUNG

    for name in ("mca01", "mca02"):
        await StaffUser.create(username=name, name=name, password_hash="-", departments=["mca"], roles=["officer"])
    refused = await applications.apply("senior-card", {**SENIOR_FORM, "phone": "13917724680"}, applicant=YOUNG)
    await request_review(engine, await owned_case(refused.id, YOUNG.openid), actor=YOUNG.openid, reason="请人工核对")
    [review] = await HumanTask.filter(case_id=refused.id, kind="review")
    await link_identity("mca01", YOUNG.id_number, pii_key=key(settings))
    me = await StaffUser.get(username="mca01")

    with pytest.raises(OwnCaseRecusal):
        await desk.claim(me, str(review.id), engine=engine)
    with pytest.raises(OwnCaseRecusal):
        await desk.complete(engine, me, str(review.id), {"verdict": "overturn", "reason": "本人认为应予批准"})
    row = await HumanTask.get(id=review.id)
    assert (row.state, row.assignee, row.completed_by) == ("ready", None, None)  # nothing decided, nothing held
    detail = await task_detail(engine, me, str(review.id))
    assert "claim" not in detail["actions"] and "complete" not in detail["actions"]
    assert "回避" in detail["blocked"]["complete"] and detail["blocked"]["claim"] == detail["blocked"]["complete"]

    colleague = await StaffUser.get(username="mca02")
    assert {"claim", "complete"} <= set((await task_detail(engine, colleague, str(review.id)))["actions"])
    assert (await desk.claim(colleague, str(review.id), engine=engine)).assignee == "mca02"


async def test_an_added_signer_later_linked_to_a_person_the_case_names_cannot_sign(
        engine: CaseEngine, applications: ApplicationService, people: dict[str, StaffUser], settings) -> None:
    """加签 given before the signer's staff account was linked to their ID number: the check at the
    time of signing still recuses them; the 加签 stays open for the case to go on otherwise."""
    from engine.workbench.task_ops import complete_cosign

    task_id = await intake_task(applications)  # LI is a shareholder in the form
    side = await add_signer(engine, task_id, actor="samr01", user="samr02", position="before")
    await link_identity("samr02", LI["id_number"], pii_key=key(settings))
    with pytest.raises(OwnCaseRecusal):
        await complete_cosign(engine, side.id, actor="samr02", opinion="同意", approve=True)
    assert (await HumanTask.get(id=side.id)).state == "ready"
    detail = await task_detail(engine, await StaffUser.get(username="samr02"), str(side.id))
    assert "sign" not in detail["actions"] and "回避" in detail["blocked"]["sign"]
