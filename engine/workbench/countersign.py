"""会签 means several people: one officer may not sign two instances of the same countersign.

The instances of a parallel multi-instance user task (e.g. the residence permit's 会签 of two
officers) are projected together: same case, same ``task_spec``, same ``created_at``. The
completion hook refuses a completion when the same actor already completed a sibling instance.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.errors import Conflict
from engine.kernel.cases import CaseEngine
from engine.store.models import HumanTask


class SameSigner(Conflict):
    code = "countersign_same_signer"
    default_message = "会签需由不同工作人员分别签署，您已签署过本次会签"


async def one_signature_each(conn: Any, row: HumanTask, actor: str | None, now: datetime) -> None:
    """Completion hook (``EngineDeps.completion_hooks``)."""
    if row.kind != "bpmn" or not actor or actor.startswith("citizen:"):
        return
    signed = HumanTask.filter(case_id=row.case_id, kind="bpmn", task_spec=row.task_spec,  # type: ignore[attr-defined]
                              created_at=row.created_at, state="completed", completed_by=actor) \
        .exclude(id=row.id).using_db(conn)
    if await signed.exists():
        raise SameSigner()


def install(engine: CaseEngine) -> CaseEngine:
    if one_signature_each not in engine.deps.completion_hooks:
        engine.deps.completion_hooks.append(one_signature_each)
    return engine


__all__ = ["SameSigner", "install", "one_signature_each"]
