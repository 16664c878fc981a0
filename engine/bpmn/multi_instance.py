"""Resetting tasks of multi-instance (会签) activities without leaving stale state behind.

SpiffWorkflow's ``reset_from_task_id`` resets one task's branch. For an *instance* of a
multi-instance activity that is not enough: the instance's output item was already merged into the
parent's output collection (``signatures``) and its id recorded in the parent's ``merged`` list, the
parent may already have completed (and run on to the next step), a completion condition may have
cancelled the sibling instances, a sequential activity may have created the next instance, and the
reset wipes the instance's own ``key_or_index``. Completing the instance again then appended a
second signature — ``len(signatures) != len(countersigners)`` and a 会签 that everyone approved was
refused (issue #14). ``reset_task`` undoes all of that, so a withdrawn completion leaves no trace.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableSequence
from copy import deepcopy
from typing import Any

from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import (
    MultiInstanceTask,
    SequentialMultiInstanceTask,
)
from SpiffWorkflow.util.task import TaskState

_KEEP = ("key_or_index", "item", "iteration")


def instance_parent(task: Any) -> Any | None:
    """The multi-instance task ``task`` is an instance of, or ``None``."""
    parent = task.parent
    if parent is not None and isinstance(parent.task_spec, MultiInstanceTask) \
            and parent.task_spec.task_spec == task.task_spec.name:
        return parent
    return None


def instances(parent: Any) -> list[Any]:
    """The instance tasks of a multi-instance task, in creation order."""
    name = parent.task_spec.task_spec
    return [c for c in parent.children if c.task_spec.name == name]


def reset_task(workflow: Any, task: Any, data: dict[str, Any] | None) -> None:
    """Make ``task`` ready again with ``data`` (``reset_from_task_id``), undoing a multi-instance
    instance's merge into its parent first (see the module docstring)."""
    parent = instance_parent(task)
    if parent is None:
        workflow.reset_from_task_id(task.id, data=data)
        return
    keep = {k: task.internal_data[k] for k in _KEEP if k in task.internal_data}
    _unmerge(parent, task)
    _reopen(workflow, parent, task)
    workflow.reset_from_task_id(task.id, data=data)
    task.internal_data.update(keep)


def reset_activity(workflow: Any, task: Any) -> Any:
    """退回 to a multi-instance step restarts the whole activity (every instance afresh, the output
    collection emptied); any other task is reset with the data it was completed with. Returns
    the task reset."""
    parent = instance_parent(task)
    if parent is None:
        workflow.reset_from_task_id(task.id, data=deepcopy(task.data))
        return task
    spec = parent.task_spec
    data = deepcopy(parent.parent.data if parent.parent is not None else parent.data)
    if spec.data_output is not None and spec.data_input is not None \
            and spec.data_output.bpmn_id != spec.data_input.bpmn_id:
        data.pop(spec.data_output.bpmn_id, None)
    workflow.reset_from_task_id(parent.id, data=data)
    return parent


def _unmerge(parent: Any, task: Any) -> None:
    """Take ``task``'s output item back out of the parent's output collection."""
    merged: list[str] = parent.internal_data.get("merged", [])
    if str(task.id) not in merged:
        return
    position = merged.index(str(task.id))
    merged.remove(str(task.id))
    spec = parent.task_spec
    if spec.data_output is None or spec.output_item is None or not spec.data_output.exists(parent):
        return
    output = spec.data_output.get(parent)
    key = task.internal_data.get("key_or_index")
    if isinstance(output, Mapping):
        if key is not None and hasattr(output, "pop"):
            output.pop(key, None)
    elif isinstance(output, MutableSequence):
        same_collection = spec.data_input is not None and spec.data_input.bpmn_id == spec.data_output.bpmn_id
        if not same_collection and position < len(output):
            del output[position]  # appended in merge order


def _reopen(workflow: Any, parent: Any, task: Any) -> None:
    """Put a finished (or sequentially advanced) multi-instance task back to waiting for ``task``."""
    siblings = instances(parent)
    if isinstance(parent.task_spec, SequentialMultiInstanceTask):
        later = siblings[siblings.index(task) + 1:]
        remaining = list(parent.internal_data.get("remaining", []))
        for sibling in reversed(later):
            if not sibling.has_state(TaskState.FINISHED_MASK):
                key = sibling.internal_data.get("key_or_index", sibling.internal_data.get("item"))
                remaining.insert(0, key)
                workflow._remove_task(sibling.id)  # noqa: SLF001 - Spiff has no public removal
        if "remaining" in parent.internal_data:
            parent.internal_data["remaining"] = remaining
        elif "current" in parent.internal_data:
            parent.internal_data["current"] = siblings.index(task)
    else:
        for sibling in siblings:  # a completion condition cancelled them: they are open again
            if sibling is not task and sibling.state == TaskState.CANCELLED:
                keep = {k: sibling.internal_data[k] for k in _KEEP if k in sibling.internal_data}
                sibling.reset_branch(deepcopy(sibling.data))
                sibling.internal_data.update(keep)
    if parent.state != TaskState.STARTED:
        successors = [c for c in parent.children if c.task_spec.name != parent.task_spec.task_spec]
        for successor in successors:
            for sub in [t for t in successor if t.id in workflow.subprocesses]:
                workflow.delete_subprocess(sub)
            workflow._remove_task(successor.id)  # noqa: SLF001
        parent._set_state(TaskState.STARTED)  # noqa: SLF001
        # predict the successors again, as Spiff did when the activity started
        parent.task_spec._predict(parent, mask=TaskState.STARTED | TaskState.FUTURE | TaskState.PREDICTED_MASK)


__all__ = ["instance_parent", "instances", "reset_activity", "reset_task"]
