"""Retention's rewrite of one finished case without personal data (``CaseEngine.anonymise``).

The state keeps only what the records of a finished case need (``anonymised_data``), opinions and
rating comments are masked, the applicant link is dropped, and the purge is audited — all in one
transaction with an optimistic version check, like every other change of a case.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from tortoise.transactions import in_transaction

from engine.accountability import audit
from engine.accountability.privacy import mask_text
from engine.accountability.retention import anonymised_data
from engine.store.models import Case, CaseEvent, Evaluation

if TYPE_CHECKING:
    from engine.kernel.cases import CaseEngine


async def anonymise_case(engine: CaseEngine, case: Case, now: datetime, actor: str) -> bool:
    """False when the case changed meanwhile (the next purge run takes it)."""
    _, workflow, _ = await engine.load(case.id)
    for task in workflow.get_tasks():
        task.data = anonymised_data(task.data if isinstance(task.data, dict) else {})
    workflow.data = anonymised_data(workflow.data if isinstance(workflow.data, dict) else {})
    async with in_transaction() as conn:
        updated = await Case.filter(id=case.id, version=case.version, purged_at__isnull=True).using_db(conn).update(
            state=engine.deps.serializer.dump(workflow), summary=engine.summary(workflow),
            version=case.version + 1, applicant=None,
            purged_at=now, updated_at=now)
        if not updated:
            return False
        for event in await CaseEvent.filter(case_id=case.id, detail__isnull=False).using_db(conn):
            opinion = event.detail.get("opinion") if isinstance(event.detail, dict) else None
            await CaseEvent.filter(id=event.id).using_db(conn).update(
                detail={"opinion": mask_text(opinion)} if isinstance(opinion, str) else None)
        evaluation = await Evaluation.filter(case_id=case.id).using_db(conn).first()
        if evaluation is not None and evaluation.comment:
            await Evaluation.filter(id=evaluation.id).using_db(conn).update(comment=mask_text(evaluation.comment))
        await audit.record(conn, "retention.purge", actor=actor, case_no=case.case_no, subject=case.case_no, now=now,
                           detail={"what": "case_personal_data", "completed_at": audit.format_at(case.completed_at)})
    return True


__all__ = ["anonymise_case"]
