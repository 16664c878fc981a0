"""The applicant's view of a case and what they may do with it, through the real processes."""

from __future__ import annotations

import pytest

from engine.accountability.privacy import PiiKeys
from engine.citizen.applications import Applicant, ApplicationService
from engine.citizen.case_views import case_detail, evaluate, owned_case, request_review, supplement, withdraw
from engine.citizen.catalog import Catalog
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.store.models import Case, Evaluation, HumanTask
from tests.processes.test_business_startup import ACCEPT, FORM

OLD = Applicant(id_number="310104196103150273", name="王建国", openid="openid-wang", phone="13812345678")
YOUNG = Applicant(id_number="310110198606200486", name="李娜", openid="openid-lina", phone="13917724680")
SENIOR_FORM = {"phone": "13812345678", "address": {"region_code": "310104", "detail": "徐汇区漕溪北路1号"}}


@pytest.fixture
def applications(engine, settings) -> ApplicationService:
    return ApplicationService(engine, Catalog.load(settings.PROCESSES_DIR),
                              pii_key=PiiKeys.from_settings(settings).blind_index_key)


async def test_senior_card_detail_shows_decision_reason_and_masked_certificate(engine, applications) -> None:
    result = await applications.apply("senior-card", SENIOR_FORM, applicant=OLD)
    case = await owned_case(result.id, OLD.openid)
    detail = await case_detail(engine, case)
    assert detail["status"] == "completed" and detail["status_label"] == "已办结"
    assert detail["decision"]["outcome"] == "approve" and detail["decision"]["rule"] == "rule_local_60"
    assert detail["decision"]["inputs"] == {"found": True, "age": detail["decision"]["inputs"]["age"], "local": True}
    assert "60" in detail["decision"]["reason"] and detail["result"]["outcome"] == "approved"
    [cert] = detail["certificates"]
    assert cert["name"] == "老年人优待证" and cert["holder_code_masked"] == "310***********0273"
    assert cert["holder_name"] == "王**"
    assert OLD.id_number not in str(detail)
    assert [s["action"] for s in detail["steps"]][0] == "提交申请"
    with pytest.raises(NotFound):
        await owned_case(result.id, YOUNG.openid)  # someone else's case is simply not there


async def test_review_request_only_for_automatic_decisions_and_once(engine, applications) -> None:
    rejected = await applications.apply("senior-card", {**SENIOR_FORM, "phone": "13917724680"}, applicant=YOUNG)
    case = await owned_case(rejected.id, YOUNG.openid)
    await request_review(engine, case, actor=YOUNG.openid, reason="我的出生日期登记有误")
    [task] = await HumanTask.filter(case_id=case.id, kind="review")
    assert task.department == "mca" and task.state == "ready" and task.name == "自动决定人工复核"
    with pytest.raises(Conflict):
        await request_review(engine, case, actor=YOUNG.openid, reason="again")
    detail = await case_detail(engine, case)
    assert detail["steps"][-1]["action"] == "申请人工复核"


async def test_evaluation_once_after_the_end_and_bad_reviews_open_rectification(engine, applications) -> None:
    done = await applications.apply("senior-card", SENIOR_FORM, applicant=OLD)
    case = await owned_case(done.id, OLD.openid)
    with pytest.raises(ValidationFailed):
        await evaluate(engine, case, evaluator_hash="h", level=9, comment="")
    outcome = await evaluate(engine, case, evaluator_hash="h" * 64, level=5, comment="等待时间太长",
                             start_rectification=applications.start_rectification)
    assert outcome["label"] == "非常不满意" and outcome["rectification_case_no"].startswith("RECTIFICATION-")
    rectification = await Case.get(case_no=outcome["rectification_case_no"])
    assert rectification.due_at is not None
    [follow_up] = await HumanTask.filter(case_id=rectification.id, state="ready")
    assert follow_up.department == "mca"
    with pytest.raises(Conflict):
        await evaluate(engine, case, evaluator_hash="h" * 64, level=1, comment="")
    assert (await Evaluation.get(case_id=case.id)).rectification_case_no == rectification.case_no
    good = await applications.apply("senior-card", SENIOR_FORM, applicant=Applicant(
        id_number="310101193108081243", name="吴桂兰", openid="openid-wu"))
    good_case = await owned_case(good.id, "openid-wu")
    assert (await evaluate(engine, good_case, evaluator_hash="x" * 64, level=1, comment="很快",
                           start_rectification=applications.start_rectification))["rectification_case_no"] is None


async def test_running_cases_cannot_be_evaluated_and_withdraw_before_acceptance(engine, applications) -> None:
    started = await _business_case(applications)
    case = await owned_case(started.id, OLD.openid)
    with pytest.raises(Conflict):
        await evaluate(engine, case, evaluator_hash="h" * 64, level=2, comment="")
    await withdraw(engine, case, actor=OLD.openid, reason="信息填错")
    case = await Case.get(id=case.id)
    assert case.status == "withdrawn"
    assert await HumanTask.filter(case_id=case.id, state="ready").count() == 0
    with pytest.raises(Conflict):
        await withdraw(engine, case, actor=OLD.openid)


async def test_withdraw_refused_after_an_officer_acted(engine, applications) -> None:
    started = await _business_case(applications)
    await engine.complete_task(started.ready_tasks[0].id, ACCEPT, actor="samr01")
    case = await owned_case(started.id, OLD.openid)
    with pytest.raises(Conflict):
        await withdraw(engine, case, actor=OLD.openid)


async def test_supplement_only_when_waiting_for_the_applicant(engine, applications) -> None:
    started = await _business_case(applications)
    with pytest.raises(Conflict):
        await supplement(engine, await owned_case(started.id, OLD.openid), {}, actor=OLD.openid)


async def _business_case(applications: ApplicationService):
    return await applications.apply("business-startup", FORM, applicant=OLD)


async def test_detail_reads_the_sealed_summary_and_rebuilds_it_for_older_rows(engine, applications,
                                                                              monkeypatch) -> None:
    """The stored summary answers the detail without rebuilding the workflow; it is sealed like the
    state when a key is set; a row written before summaries existed still shows the same detail."""
    result = await applications.apply("senior-card", SENIOR_FORM, applicant=OLD)
    case = await owned_case(result.id, OLD.openid)
    assert case.summary is not None
    if engine.deps.serializer._cipher is not None:  # noqa: SLF001 - sealed at rest like the state
        assert case.summary.startswith("enc1:") and "rule_local_60" not in case.summary
    stored = engine.deps.serializer.load_summary(case.summary)
    assert stored["decision"]["rule"] == "rule_local_60" and stored["result"]["outcome"] == "approved"
    expected = await case_detail(engine, case)

    async def no_rebuild(*_args, **_kwargs):
        raise AssertionError("case_detail rebuilt the workflow although a summary is stored")

    with monkeypatch.context() as patch:
        patch.setattr(engine, "load", no_rebuild)
        assert await case_detail(engine, case) == expected
    await Case.filter(id=case.id).update(summary=None)  # as migration 5 leaves older cases
    assert await case_detail(engine, await owned_case(result.id, OLD.openid)) == expected


# --------------------------------------------------------------------------- the cached read model
async def test_the_citizens_read_is_one_read_only_row_never_anothers(engine, applications) -> None:
    from tortoise.exceptions import IncompleteInstanceError

    from engine.citizen.case_views import citizen_case
    from engine.store.identity_models import Citizen

    done = await applications.apply("senior-card", SENIOR_FORM, applicant=OLD)
    wang = await Citizen.create(openid=OLD.openid)
    lina = await Citizen.create(openid=YOUNG.openid)
    assert await citizen_case(lina.id, done.id) is None and await citizen_case(wang.id, done.id + 1000) is None
    row = await citizen_case(wang.id, done.id)
    stored = await Case.get(id=done.id)
    assert (row.case_no, row.status, row.version, row.summary) == (stored.case_no, "completed", stored.version,
                                                                   stored.summary)
    assert row.updated_at == stored.updated_at and row.created_at == stored.created_at
    [cert] = row.certificate_rows
    assert cert["holder_code_masked"] == "310***********0273" and cert["state"] == "01"
    with pytest.raises(IncompleteInstanceError):
        await row.save()  # without the workflow state: never written back whole
    assert (await case_detail(engine, row)) == (await case_detail(engine, stored))  # same view either way


async def test_the_cached_view_follows_each_change_the_applicant_can_see(engine, applications) -> None:
    from engine.certificates import CertState
    from engine.certificates.store import set_state
    from engine.citizen.case_views import citizen_case
    from engine.store.identity_models import Citizen

    done = await applications.apply("senior-card", SENIOR_FORM, applicant=OLD)
    wang = await Citizen.create(openid=OLD.openid)
    first = await case_detail(engine, await citizen_case(wang.id, done.id))
    assert first == await case_detail(engine, await citizen_case(wang.id, done.id))  # cached: same view
    assert first["evaluation"] is None and "evaluate" in first["actions"] and "review" in first["actions"]

    await evaluate(engine, await owned_case(done.id, OLD.openid), evaluator_hash="h" * 64, level=1, comment="很好")
    evaluated = await case_detail(engine, await citizen_case(wang.id, done.id))
    assert evaluated["evaluation"]["label"] == "非常满意" and "evaluate" not in evaluated["actions"]

    await request_review(engine, await owned_case(done.id, OLD.openid), actor=OLD.openid, reason="请人工核对")
    reviewed = await case_detail(engine, await citizen_case(wang.id, done.id))
    assert reviewed["review"]["status"] == "pending" and "review" not in reviewed["actions"]

    [cert] = first["certificates"]
    await set_state(cert["identifier"], CertState.REVOKED)  # no case write, no timeline event
    revoked = await case_detail(engine, await citizen_case(wang.id, done.id))
    assert revoked["certificates"][0]["state"] == "03"
