"""Run a model in memory, completing user tasks with given data (``govflow run``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.util.task import TaskState

from engine.bpmn.errors import describe_run_error
from engine.bpmn.parser import ProcessBundle
from engine.errors import GovflowError, ScriptError

MAX_ROUNDS = 10_000


@dataclass
class RunResult:
    completed: bool
    data: dict[str, Any]
    steps: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)


def run_in_memory(bundle: ProcessBundle, script_engine: PythonScriptEngine, *,
                  data: dict[str, Any] | None = None,
                  task_data: dict[str, Any] | None = None,
                  on_step: Callable[[str], None] | None = None) -> RunResult:
    """Start the process with ``data`` and complete every user task it reaches.

    ``task_data`` is either one dict given to every user task, or a dict keyed by user task
    id (``{"review": {...}, "intake": {...}}``) when all its keys name user tasks.
    """
    workflow = BpmnWorkflow(bundle.spec, bundle.subprocess_specs, script_engine=script_engine)
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update(data or {})
    task_data = task_data or {}
    manual_ids = {name for spec in bundle.all_specs.values() for name, ts in spec.task_specs.items()
                  if getattr(ts, "manual", False)}
    per_task = bool(task_data) and set(task_data) <= manual_ids
    steps: list[str] = []

    def did_complete(task: Any) -> None:
        spec = task.task_spec
        if spec.bpmn_id and not spec.__class__.__name__.endswith(("Gateway", "Event")):
            steps.append(spec.bpmn_name or spec.bpmn_id)
            if on_step:
                on_step(steps[-1])

    try:
        workflow.do_engine_steps(did_complete_task=did_complete)
        for _ in range(MAX_ROUNDS):
            ready = workflow.get_tasks(state=TaskState.READY, manual=True)
            if not ready:
                break
            for task in ready:
                values = task_data.get(task.task_spec.name, {}) if per_task else task_data
                task.data.update(values if isinstance(values, dict) else {})
                task.run()
                did_complete(task)
            workflow.do_engine_steps(did_complete_task=did_complete)
    except GovflowError:
        raise
    except Exception as exc:  # Spiff raises bare Exception too (e.g. an invalid timer duration)
        raise ScriptError(describe_run_error(exc)) from None
    waiting = [t.task_spec.bpmn_name or t.task_spec.bpmn_id or t.task_spec.name
               for t in workflow.get_tasks(state=TaskState.WAITING) if t.task_spec.bpmn_id]
    if workflow.completed:
        final = dict(workflow.data)
    else:
        last = workflow.last_task
        final = dict(last.data) if last is not None else {}
    return RunResult(completed=workflow.completed, data=final, steps=steps, waiting=waiting)
