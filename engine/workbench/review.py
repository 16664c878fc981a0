"""Human review that decides (人工复核, 个人信息保护法 第二十四条).

A citizen's review request (``engine.citizen.case_views.request_review``) opens a side task of
kind ``review`` in the department of the service. The officer completes it with
``{"verdict": "uphold" | "overturn", "reason": "…"}``:

- ``uphold``: the decision stands; the citizen sees the verdict and its reason.
- ``overturn`` of a refusal: the case's result becomes 准予; the service's result certificate is
  issued (through the engine's ``certificate.issue`` connector and record writer, as a process
  step would) to the applicant.
- ``overturn`` of an approval: the result becomes 不予 and the case's valid certificates are
  revoked (state 03).

All in one transaction: the result in the case's sealed summary, a ``review_decided`` timeline
event with verdict, outcome and reason, the audit record (``review.decide``), the task closed.
Live listeners are told afterwards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from tortoise.transactions import in_transaction

from engine.accountability import audit
from engine.certificates.state_cache import state_changed
from engine.certificates.store import set_state
from engine.errors import Conflict, ValidationFailed
from engine.kernel.cases import OPEN_TASK_STATES, CaseEngine, Step, StepWrite, current_data
from engine.kernel.connectors import ConnectorContext
from engine.store.certificate_models import Certificate
from engine.store.models import Case, CaseEvent, HumanTask, StaffUser

REVIEW = "review"
VERDICTS = {"uphold": "维持原决定", "overturn": "撤销原决定"}
APPROVED, REJECTED = "approved", "rejected"
CertificateTypeOf = Callable[[str], "str | None"]


def outcome_now(summary: dict[str, Any]) -> str | None:
    """``approved`` | ``rejected`` | None: the case's result, else its automatic decision."""
    result = summary.get("result") or {}
    decision = summary.get("decision") or {}
    value = result.get("outcome") or decision.get("outcome")
    if value in ("approve", APPROVED):
        return APPROVED
    if value in ("reject", REJECTED):
        return REJECTED
    return None


def parse(data: dict[str, Any] | None) -> tuple[str, str]:
    """The verdict and its reason from the review form; 422 with fields otherwise."""
    data = data or {}
    verdict, reason = data.get("verdict"), data.get("reason")
    fields = {}
    if verdict not in VERDICTS:
        fields["verdict"] = "请选择维持或撤销原决定"
    if not isinstance(reason, str) or not 2 <= len(reason.strip()) <= 500:
        fields["reason"] = "请填写复核理由（2–500 字），申请人可见"
    if fields:
        raise ValidationFailed("复核结论填写有误", fields=fields)
    return str(verdict), str(reason).strip()


async def review_context(engine: CaseEngine, task: HumanTask) -> dict[str, Any]:
    """What the review officer needs beside the case: the decision under review, the result now,
    why the citizen asked, and the verdicts the form offers."""
    from engine.citizen.case_views import case_summary

    case: Case = await Case.get(id=task.case_id)  # type: ignore[attr-defined]
    summary = await case_summary(engine, case)
    asked = await CaseEvent.filter(case_id=case.id, kind="review_requested").order_by("-id").first()
    decided = await CaseEvent.filter(case_id=case.id, kind="review_decided").order_by("-id").first()
    return {"decision": summary.get("decision"), "result": summary.get("result") or {},
            "outcome": outcome_now(summary),
            "citizen_reason": (asked.detail or {}).get("opinion") if asked and isinstance(asked.detail, dict) else None,
            "requested_at": asked.created_at.isoformat() if asked else None,
            "verdicts": [{"value": k, "label": v} for k, v in VERDICTS.items()],
            "decided": decided.detail if decided else None}


async def decide(engine: CaseEngine, staff: StaffUser, task: HumanTask, data: dict[str, Any] | None, *,
                 certificate_type_of: CertificateTypeOf) -> dict[str, Any]:
    """Close the review task with a verdict; an overturn changes the result (see module doc)."""
    from engine.citizen.case_views import case_summary

    verdict, reason = parse(data)
    case: Case = await Case.get(id=task.case_id)  # type: ignore[attr-defined]
    summary = await case_summary(engine, case)
    before = outcome_now(summary)
    after = before
    if verdict == "overturn":
        if case.status == "running":
            raise Conflict("办件尚在办理中，待办结后才能撤销原决定；如需改变结果请在流程中办理")
        if before is None:
            raise Conflict("该办件没有可撤销的决定")
        after = REJECTED if before == APPROVED else APPROVED
    now: datetime = engine.deps.clock()
    issued: list[str] = []
    revoked: list[str] = []
    context = ConnectorContext(case_no=case.case_no, service=case.service, actor=staff.username,
                               purpose="人工复核撤销原决定：签发证照")
    if verdict == "overturn" and after == APPROVED:
        issued_params = await _issue_params(engine, case, certificate_type_of)
        if issued_params is not None and not await Certificate.filter(case_id=case.id, state="01").exists():
            result = engine.deps.connectors.call("certificate.issue", issued_params, context)
            issued.append(str(result.get("identifier")))
    async with in_transaction() as conn:
        closed = await HumanTask.filter(id=task.id, state__in=OPEN_TASK_STATES).using_db(conn).update(
            state="completed", completed_at=now, completed_by=staff.username)
        if not closed:
            raise Conflict("该复核任务已办结")
        if not await Case.filter(id=case.id, version=case.version).using_db(conn).update(version=case.version + 1):
            raise Conflict("办件已被他人更新，请刷新后重试")
        for kind, payload in context.records:
            await engine.deps.record_writers[kind](conn, case.id, payload)
        if verdict == "overturn":
            if after == REJECTED:
                for cert in await Certificate.filter(case_id=case.id, state="01").using_db(conn):
                    await set_state(cert.identifier, "03", conn, actor=staff.username,
                                    reason=f"人工复核撤销原决定：{reason}")
                    revoked.append(cert.identifier)
            result_view = {"outcome": after, "reason": reason, "decided_by": "review"}
            new_summary = {**summary, "result": result_view}
            await Case.filter(id=case.id).using_db(conn).update(
                summary=engine.deps.serializer.dump_summary(new_summary))
        detail = {"verdict": verdict, "verdict_label": VERDICTS[verdict], "opinion": reason, "before": before,
                  "outcome": after, "issued": issued, "revoked": revoked}
        await CaseEvent.create(case_id=case.id, kind="review_decided", task_id=str(task.id), task_name=task.name,
                               actor=staff.username, department=task.department, detail=detail, created_at=now,
                               using_db=conn)
        await audit.record(conn, "review.decide", actor=staff.username, department=task.department,
                           case_no=case.case_no, subject=str(task.id), now=now,
                           detail={**detail, "opinion": audit.mask_text(reason)})
        step = Step(events=[{"kind": "review_decided", "actor": staff.username, "detail": detail}])
        await engine.run_step_hooks(conn, [StepWrite(case=case, status=case.status, data=None, step=step)],
                                    now)  # the applicant's message, in this transaction
    if revoked:
        await state_changed()  # committed: verification caches everywhere re-read the register
    await engine.publish_status(case.id, case.status, ["review_decided"])
    return detail


async def _issue_params(engine: CaseEngine, case: Case, certificate_type_of: CertificateTypeOf) -> dict[str, Any] | None:
    """``certificate.issue`` parameters for the service's result certificate, from the case data."""
    type_code = certificate_type_of(case.service)
    if not type_code:
        return None
    _, workflow, _ = await engine.load(case.id)
    data = current_data(workflow)
    applicant = data.get("applicant") if isinstance(data.get("applicant"), dict) else {}
    person = data.get("person") if isinstance(data.get("person"), dict) else {}
    form = data.get("form") if isinstance(data.get("form"), dict) else {}
    if not applicant.get("id_number") or not applicant.get("name"):
        return None
    extra = {k: person[k] for k in ("gender", "birth_date", "household_region") if k in person}
    if form.get("delivery"):
        extra["delivery"] = form["delivery"]
    return {"type_code": type_code, "holder_name": applicant["name"], "holder_code": applicant["id_number"],
            "holder_code_type": "111", "data": extra}


__all__ = ["REVIEW", "VERDICTS", "decide", "outcome_now", "parse", "review_context"]
