"""Free text that staff type into approval operations — a 转办 reason, a 加签 opinion, the added
signer's 加签意见 — reaches the immutable audit chain masked like every other audit record (ID
numbers and phone numbers), while the case's own history keeps the words the officer wrote."""

from __future__ import annotations

import json

from engine.accountability import audit
from engine.store.audit_models import AuditRecord
from engine.store.models import CaseEvent
from engine.workbench.task_ops import add_signer, complete_cosign, transfer
from tests.engine.helpers import task_ops_model

ID_NUMBER, PHONE = "110105194912310021", "13812345678"
LEAKS = (ID_NUMBER, PHONE, ID_NUMBER[6:14])


async def test_transfer_reason_and_signer_opinions_are_masked_in_the_audit_chain(engine) -> None:  # noqa: ANN001
    definition = await engine.deploy(task_ops_model("three_steps"), deployed_by="designer01")
    started = await engine.start_case(definition, service="demo", data={"applicant_name": "李四"})
    step = await engine.complete_task(started.ready_tasks[0].id, {"intake_note": "齐全"}, actor="win01")
    main_id = step.ready_tasks[0].id
    await transfer(engine, main_id, actor="mca01", to_username="mca02",
                   reason=f"申请人 {ID_NUMBER} 来电 {PHONE}，请同事办理", staff_lookup=lambda user: ["mca"])
    side = await add_signer(engine, main_id, actor="mca02", user="mca03", position="before",
                            opinion=f"请复核身份证{ID_NUMBER}")
    await complete_cosign(engine, side.id, actor="mca03", opinion=f"已电话 {PHONE} 核实", approve=True)

    records = {r.kind: r for r in await AuditRecord.filter(case_no=started.case_no)}
    for kind in ("task.transfer", "task.add_signer", "task.cosign"):
        raw = records[kind].detail
        assert not any(leak in raw for leak in LEAKS), (kind, raw)
    transferred = json.loads(records["task.transfer"].detail)
    assert transferred["opinion"] == "申请人 110***********0021 来电 138****5678，请同事办理"
    assert transferred["to"] == "mca02"
    assert json.loads(records["task.add_signer"].detail)["opinion"] == "请复核身份证110***********0021"
    assert json.loads(records["task.cosign"].detail)["opinion"] == "已电话 138****5678 核实"
    assert (await audit.verify(key=engine.deps.pii_keys.audit_key)).ok
    # the case's history (shown to the officers of the case) keeps the text as written
    events = {e.kind: e.detail for e in await CaseEvent.filter(case_id=started.id)}
    assert ID_NUMBER in events["task_transferred"]["opinion"]
