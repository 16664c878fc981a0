"""Every accountable action lands in the audit chain, in its own transaction, with actor and
department: the staff desk (claim, unclaim, comment, viewing the applicant's data, complete),
approval operations (转办, 加签, 加签意见, 撤回已办, 退回), deployment, certificate state changes."""

from __future__ import annotations

import json

import pytest

from engine.accountability import audit
from engine.certificates.signing import CertState
from engine.certificates.store import set_state
from engine.errors import Conflict
from engine.store.audit_models import AuditRecord
from engine.store.models import Case
from engine.store.shared_models import DataAccessLog
from engine.workbench import staff as desk
from engine.workbench.task_detail import task_detail
from engine.workbench.task_ops import (
    add_signer,
    complete_cosign,
    return_to_step,
    transfer,
    withdraw_completion,
)
from tests.engine.helpers import intake_task, task_ops_model
from tests.processes.conftest import ID_CARD, issue_certificate
from tests.processes.test_business_startup import ACCEPT, WANG


async def _kinds(case_no: str) -> list[tuple[str, str | None, str | None]]:
    return [(r.kind, r.actor, r.department) for r in await AuditRecord.filter(case_no=case_no).order_by("seq")]


async def test_staff_desk_actions_and_case_views_are_audited(engine, applications, people) -> None:  # noqa: ANN001
    task_id = await intake_task(applications)
    officer = people["samr01"]
    case = (await desk.visible_task(officer, task_id)).case
    await desk.claim(officer, task_id)
    await desk.unclaim(officer, task_id)
    await desk.comment(officer, task_id, "请申请人补充联系电话 13816612345")
    await task_detail(engine, officer, task_id)
    await desk.complete(engine, officer, task_id, ACCEPT, opinion="材料齐全")
    trail = await _kinds(case.case_no)
    assert trail[0][0] == "case.start"
    samr = [t for t in trail if t[2] == "samr"]
    assert samr[:5] == [("task.claim", "samr01", "samr"), ("task.unclaim", "samr01", "samr"),
                        ("task.comment", "samr01", "samr"), ("pii.read", "samr01", "samr"),
                        ("task.complete", "samr01", "samr")]
    assert {t[0] for t in samr[5:]} <= {"pii.read"}  # the next step's shared-data checks, in the same step
    comment = await AuditRecord.get(case_no=case.case_no, kind="task.comment")
    assert "13816612345" not in comment.detail and "138****2345" in comment.detail  # masked in the chain
    [viewed] = await DataAccessLog.filter(case_no=case.case_no, dataset="case")
    assert (viewed.actor, viewed.department, viewed.case_id) == ("samr01", "samr", case.id)
    assert viewed.subject_masked == "310***********0273" and "查看申请信息" in viewed.purpose

    # a refused action writes nothing
    count = await AuditRecord.all().count()
    with pytest.raises(Conflict):
        await desk.claim(officer, task_id)
    assert await AuditRecord.all().count() == count
    assert (await audit.verify(key=engine.deps.pii_keys.audit_key)).ok


async def test_deploy_and_approval_operations_are_audited(engine) -> None:  # noqa: ANN001
    files = task_ops_model("three_steps")
    definition = await engine.deploy(files, deployed_by="designer01")
    assert await engine.deploy(files, deployed_by="designer01") == definition  # same content: no new version
    [deployed] = await AuditRecord.filter(kind="deploy")
    detail = json.loads(deployed.detail)
    assert (deployed.actor, deployed.subject) == ("designer01", definition.process_id)
    assert (detail["version"], detail["content_hash"]) == (1, definition.content_hash)

    started = await engine.start_case(definition, service="demo", data={"applicant_name": "李四"})
    s2 = await engine.complete_task(started.ready_tasks[0].id, {"intake_note": "齐全"}, actor="win01")
    main_id = s2.ready_tasks[0].id
    await transfer(engine, main_id, actor="mca01", to_username="mca02", reason="请同事办理",
                   staff_lookup=lambda user: ["mca"])
    side = await add_signer(engine, main_id, actor="mca02", user="mca03", position="before", opinion="请复核")
    await complete_cosign(engine, side.id, actor="mca03", opinion="复核无误", approve=True)
    await engine.complete_task(main_id, {"review_opinion": "同意"}, actor="mca02", opinion="同意")
    await withdraw_completion(engine, main_id, actor="mca02")
    await return_to_step(engine, started.id, target_task_spec="intake", actor="sup01", department="supervisor",
                         reason="材料不全，退回窗口")
    trail = [(k, a) for k, a, _ in await _kinds(started.case_no)]
    assert trail == [("case.start", None), ("task.complete", "win01"), ("task.transfer", "mca01"),
                     ("task.add_signer", "mca02"), ("task.cosign", "mca03"), ("task.complete", "mca02"),
                     ("task.withdraw", "mca02"), ("task.return", "sup01")]
    transferred = json.loads((await AuditRecord.get(kind="task.transfer")).detail)
    assert (transferred["from"], transferred["to"]) == (None, "mca02")
    returned = await AuditRecord.get(kind="task.return")
    assert returned.department == "supervisor" and "退回窗口" in returned.detail
    assert (await Case.get(id=started.id)).status == "running"
    assert (await audit.verify()).ok


async def test_certificate_state_changes_are_audited(engine) -> None:  # noqa: ANN001
    issued = await issue_certificate(engine, ID_CARD, WANG)
    await set_state(issued["identifier"], CertState.SUSPENDED, actor="psb-admin", reason="证件挂失")
    await set_state(issued["identifier"], CertState.REVOKED, actor="psb-admin", reason="证件注销")
    changes = await AuditRecord.filter(kind="certificate.state").order_by("seq")
    assert [(r.actor, r.subject) for r in changes] == [("psb-admin", issued["identifier"])] * 2
    assert [(json.loads(r.detail)["from"], json.loads(r.detail)["to"]) for r in changes] == [("01", "02"),
                                                                                             ("02", "03")]
    assert "证件注销" in changes[1].detail
    assert (await audit.verify()).ok
