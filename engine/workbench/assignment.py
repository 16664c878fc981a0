"""Who may handle a task: distinct signers of a 会签 and recusal (回避).

A user task declares its rules as ``spiffworkflow:property`` entries (the designer shows them, the
linter checks them):

* ``distinctSigners = true`` on a multi-instance (会签) user task: every instance needs a different
  person — whoever signed (or holds) one instance of the activity may not claim or complete
  another (409 ``already_signed_this_case``). A withdrawn signature (撤回) no longer counts; after
  a 退回 the activity starts afresh, so earlier rounds do not count either.
* ``recuseFrom = step_a, step_b``: whoever completed one of the named earlier steps *on this
  case's current path* may not handle this task (409 ``recusal_required``), e.g. 复核 ≠ 经办.

The rules are checked on claim, on completion (``CaseEngine.complete_task`` through
``EngineDeps.task_guards``, the authority) and on 转办 (no task is handed to someone who may not do
it); the task detail shows them as reasons next to the unavailable buttons.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.util.task import TaskState

from engine.bpmn.multi_instance import instance_parent, instances
from engine.errors import Conflict
from engine.store.models import HumanTask

DISTINCT = "distinctSigners"
RECUSE = "recuseFrom"
_TRUE = ("true", "1", "yes", "是")


class AlreadySignedThisCase(Conflict):
    code = "already_signed_this_case"
    default_message = "您已签署本办件的会签，会签须由不同人员分别签署"


class RecusalRequired(Conflict):
    code = "recusal_required"
    default_message = "按回避规定，您不能办理本环节"


def task_rules(spec: Any) -> tuple[bool, list[str]]:
    """``(distinct signers, steps to recuse from)`` declared on a task spec."""
    props = (getattr(spec, "extensions", None) or {}).get("properties", {}) or {}
    distinct = str(props.get(DISTINCT, "")).strip().lower() in _TRUE
    recuse = [s.strip() for s in str(props.get(RECUSE, "") or "").replace("，", ",").split(",") if s.strip()]
    return distinct, recuse


async def refusal(workflow: Any, task: Any, username: str | None, conn: Any = None, *,
                  subject: str = "您") -> Conflict | None:
    """Why ``username`` may not handle the workflow task ``task`` now, or ``None`` (``subject``: how
    the message names that person — 您, or the colleague a task would be transferred to)."""
    if not username or task is None:
        return None
    distinct, recuse = task_rules(task.task_spec)
    if distinct:
        parent = instance_parent(task)
        others = [t.id for t in instances(parent) if t.id != task.id] if parent is not None else []
        if others and await HumanTask.filter(id__in=others, state="completed", completed_by=username) \
                .using_db(conn).exists():
            return AlreadySignedThisCase(f"{subject}已签署本办件的会签，会签须由不同人员分别签署")
        if others and await HumanTask.filter(id__in=others, state="claimed", assignee=username) \
                .using_db(conn).exists():
            return AlreadySignedThisCase(f"{subject}已认领本办件的另一份会签，会签须由不同人员分别签署")
    for step in recuse:
        done = [t for t in workflow.get_tasks(state=TaskState.COMPLETED)
                if t.task_spec.manual and (t.task_spec.bpmn_id == step or t.task_spec.name == step)]
        if done and await HumanTask.filter(id__in=[t.id for t in done], state="completed",
                                           completed_by=username).using_db(conn).exists():
            name = done[0].task_spec.bpmn_name or step
            here = task.task_spec.bpmn_name or task.task_spec.name
            return RecusalRequired(f"{subject}办理了本办件的「{name}」环节，按回避规定不能办理「{here}」")
    return None


async def check(workflow: Any, task: Any, username: str | None, conn: Any = None, *, subject: str = "您") -> None:
    """Raise the refusal of ``refusal``, if any."""
    problem = await refusal(workflow, task, username, conn, subject=subject)
    if problem is not None:
        raise problem


async def guard_completion(workflow: Any, task: Any, row: HumanTask, actor: str | None) -> None:
    """``EngineDeps.task_guards`` hook: the rules hold at completion whoever calls the engine."""
    await check(workflow, task, actor)


async def check_row(engine: Any, row: HumanTask, username: str, *, subject: str = "您") -> None:
    """``check`` for a workflow task row (claim, 转办): loads its case's workflow."""
    if row.kind != "bpmn":
        return
    _, workflow, _ = await engine.load(row.case_id)  # type: ignore[attr-defined]
    await check(workflow, workflow.get_task_from_id(row.id), username, subject=subject)


__all__ = ["check_row", "AlreadySignedThisCase", "RecusalRequired", "DISTINCT", "RECUSE", "task_rules", "refusal", "check",
           "guard_completion"]
