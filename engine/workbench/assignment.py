"""Who may handle a task: distinct signers of a 会签 and recusal (回避).

A user task declares its rules as ``spiffworkflow:property`` entries (the designer shows them, the
linter checks them):

* ``distinctSigners = true`` on a multi-instance (会签) user task: every instance needs a different
  person — whoever signed (or holds) one instance of the activity may not claim or complete
  another (409 ``already_signed_this_case``). A withdrawn signature (撤回) no longer counts; after
  a 退回 the activity starts afresh, so earlier rounds do not count either.
* ``recuseFrom = step_a, step_b``: whoever completed one of the named earlier steps *on this
  case's current path* may not handle this task (409 ``recusal_required``), e.g. 复核 ≠ 经办.
* Always, on every process: an officer whose staff account is linked to their own ID number
  (``StaffUser.id_hash``, the keyed hash citizens are found by) never handles a case that names
  them — as the applicant or by ID number in the application form (法定代表人, 股东, the person the
  application is about) — 409 ``own_case_recusal``; nor is such a case's task transferred (转办)
  or a 加签 given to them, nor may they 退回, ask for 补正 or add a signer on it
  (``staff.open_task_of`` with the engine); handing it on with 转办 stays allowed.

The rules are checked on claim, on completion (``CaseEngine.complete_task`` through
``EngineDeps.task_guards``, the authority) and on 转办 (no task is handed to someone who may not do
it); the task detail shows them as reasons next to the unavailable buttons.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.util.task import TaskState

from engine.accountability.privacy import blind_index, normalise_id
from engine.bpmn.multi_instance import instance_parent, instances
from engine.errors import Conflict
from engine.kernel.cases import current_data
from engine.store.models import HumanTask, StaffUser

DISTINCT = "distinctSigners"
RECUSE = "recuseFrom"
_TRUE = ("true", "1", "yes", "是")


class AlreadySignedThisCase(Conflict):
    code = "already_signed_this_case"
    default_message = "您已签署本办件的会签，会签须由不同人员分别签署"


class RecusalRequired(Conflict):
    code = "recusal_required"
    default_message = "按回避规定，您不能办理本环节"


class OwnCaseRecusal(Conflict):
    code = "own_case_recusal"
    default_message = "您是本办件的申请人或申请所涉人员，按回避规定不能办理与本人有关的办件"


def _id_numbers(value: Any) -> list[str]:
    """Every ``id_number`` string anywhere in a form value (法定代表人, 股东, …)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "id_number" and isinstance(item, str) and item.strip():
                found.append(item)
            else:
                found += _id_numbers(item)
    elif isinstance(value, list):
        for item in value:
            found += _id_numbers(item)
    return found


def case_people(data: dict[str, Any]) -> set[str]:
    """The ID numbers a case names (normalised): its applicant's and every one in its application form."""
    numbers = _id_numbers(data.get("form") or {})
    applicant = data.get("applicant")
    if isinstance(applicant, dict) and isinstance(applicant.get("id_number"), str):
        numbers.append(applicant["id_number"])
    return {normalise_id(n) for n in numbers if normalise_id(n)}


async def own_case(workflow: Any, task: Any, username: str, pii_key: bytes | None, conn: Any = None) -> bool:
    """Whether ``username``'s staff account is linked to a person ``task``'s case names (``task``
    None: a side task — 人工复核, window 补正, 督办, 加签 — judged on the case's current data)."""
    if pii_key is None:
        return False
    id_hash = await StaffUser.filter(username=username).using_db(conn).first().values_list("id_hash", flat=True)
    if not id_hash:
        return False
    data = task.data if task is not None and task.data else current_data(workflow)
    return any(blind_index(number, pii_key) == id_hash for number in case_people(data or {}))


def task_rules(spec: Any) -> tuple[bool, list[str]]:
    """``(distinct signers, steps to recuse from)`` declared on a task spec."""
    props = (getattr(spec, "extensions", None) or {}).get("properties", {}) or {}
    distinct = str(props.get(DISTINCT, "")).strip().lower() in _TRUE
    recuse = [s.strip() for s in str(props.get(RECUSE, "") or "").replace("，", ",").split(",") if s.strip()]
    return distinct, recuse


async def refusal(workflow: Any, task: Any, username: str | None, conn: Any = None, *,
                  subject: str = "您", pii_key: bytes | None = None) -> Conflict | None:
    """Why ``username`` may not handle the workflow task ``task`` now, or ``None`` (``subject``: how
    the message names that person — 您, or the colleague a task would be transferred to;
    ``pii_key``: the blind-index key, for the own-case rule)."""
    if not username or task is None:
        return None
    if await own_case(workflow, task, username, pii_key, conn):
        return OwnCaseRecusal(f"{subject}是本办件的申请人或申请所涉人员，按回避规定不能办理与本人有关的办件")
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
        # every task, not get_tasks(state=COMPLETED): that does not look below a running parent
        # (the instances of a 会签 still open)
        done = [t for t in workflow.get_tasks() if t.state == TaskState.COMPLETED and t.task_spec.manual
                and (t.task_spec.bpmn_id == step or t.task_spec.name == step)]
        if done and await HumanTask.filter(id__in=[t.id for t in done], state="completed",
                                           completed_by=username).using_db(conn).exists():
            name = done[0].task_spec.bpmn_name or step
            here = task.task_spec.bpmn_name or task.task_spec.name
            return RecusalRequired(f"{subject}办理了本办件的「{name}」环节，按回避规定不能办理「{here}」")
    return None


async def check(workflow: Any, task: Any, username: str | None, conn: Any = None, *, subject: str = "您",
                pii_key: bytes | None = None) -> None:
    """Raise the refusal of ``refusal``, if any."""
    problem = await refusal(workflow, task, username, conn, subject=subject, pii_key=pii_key)
    if problem is not None:
        raise problem


def index_key(engine: Any) -> bytes | None:
    """The engine's blind-index key (``None`` without personal-data keys)."""
    keys = getattr(engine.deps, "pii_keys", None)
    return keys.blind_index_key if keys is not None else None


def completion_guard(pii_key: bytes | None) -> Any:
    """The ``EngineDeps.task_guards`` hook: the rules hold at completion whoever calls the engine."""

    async def guard_completion(workflow: Any, task: Any, row: HumanTask, actor: str | None) -> None:
        await check(workflow, task, actor, pii_key=pii_key)

    guard_completion.assignment_rules = True  # type: ignore[attr-defined]  # installed once (task_ops.install)
    return guard_completion


async def check_row(engine: Any, row: HumanTask, username: str, *, subject: str = "您") -> None:
    """``check`` for a workflow task row (claim, 转办): loads its case's workflow."""
    if row.kind != "bpmn":
        return
    _, workflow, _ = await engine.load(row.case_id)  # type: ignore[attr-defined]
    await check(workflow, workflow.get_task_from_id(row.id), username, subject=subject, pii_key=index_key(engine))


async def own_case_refusal(engine: Any, row: HumanTask, username: str, *, subject: str = "您",
                           workflow: Any = None) -> OwnCaseRecusal | None:
    """The own-case rule alone, for any task row: a process task (its own data) or a side task on
    the case (人工复核, window 补正, 督办, 加签: the case's data). ``workflow``: already loaded."""
    if index_key(engine) is None:
        return None
    if workflow is None:
        _, workflow, _ = await engine.load(row.case_id)  # type: ignore[attr-defined]
    spiff = workflow.get_task_from_id(row.id) if row.kind == "bpmn" else None
    if await own_case(workflow, spiff, username, index_key(engine)):
        return OwnCaseRecusal(f"{subject}是本办件的申请人或申请所涉人员，按回避规定不能办理与本人有关的办件")
    return None


async def check_own_case(engine: Any, row: HumanTask, username: str, *, subject: str) -> None:
    """Only the own-case rule: a side task given to ``username`` on ``row``'s case (加签), an
    operation of theirs on it (退回, 补正, 加签), or a side task they would claim, complete or sign."""
    problem = await own_case_refusal(engine, row, username, subject=subject)
    if problem is not None:
        raise problem


__all__ = ["check_row", "check_own_case", "own_case_refusal", "AlreadySignedThisCase", "OwnCaseRecusal", "RecusalRequired", "DISTINCT",
           "RECUSE", "task_rules", "refusal", "check", "completion_guard", "case_people", "own_case", "index_key"]
