"""Heat-map figures per BPMN element of one process, from the task and timeline tables.

For each human task element (``human_tasks.task_spec`` is the BPMN element id):
``waiting`` open tasks now, ``completed`` tasks completed in the window, ``avg_seconds`` and
``p90_seconds`` of their durations (created → completed), ``overdue`` open tasks past due now
plus tasks completed in the window after their due time. Automatic steps and end events
(``case_events`` kind ``step_done``) add ``completed`` counts, mapped back to element ids.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from typing import Any

from engine.errors import NotFound
from engine.kernel.cases import OPEN_TASK_STATES, CaseEngine
from engine.store.models import CaseEvent, HumanTask, ProcessDefinition


def p90(values: list[float]) -> float | None:
    """Nearest-rank 90th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def _blank() -> dict[str, Any]:
    return {"waiting": 0, "completed": 0, "overdue": 0, "durations": []}


async def element_stats(engine: CaseEngine, process_id: str, *, version: int | None = None,
                        since: datetime | None = None, until: datetime | None = None,
                        now: datetime | None = None) -> dict[str, Any]:
    query = ProcessDefinition.filter(process_id=process_id)
    if version is not None:
        query = query.filter(version=version)
    definitions = await query.values_list("id", flat=True)
    if not definitions:
        raise NotFound(f"流程 {process_id} 没有{'版本 ' + str(version) if version else '已部署的版本'}")
    now = now or engine.deps.clock()
    per: dict[str, dict[str, Any]] = defaultdict(_blank)
    rows = await HumanTask.filter(case__definition_id__in=definitions, kind="bpmn").values_list(
        "task_spec", "state", "created_at", "completed_at", "due_at")
    for spec, state, created, completed, due in rows:
        entry = per[spec]
        if state in OPEN_TASK_STATES:
            entry["waiting"] += 1
            if due is not None and due < now:
                entry["overdue"] += 1
        elif state == "completed" and completed is not None:
            if (since and completed < since) or (until and completed >= until):
                continue
            entry["completed"] += 1
            entry["durations"].append((completed - created).total_seconds())
            if due is not None and completed > due:
                entry["overdue"] += 1
    await _automatic_steps(engine, definitions, per, since, until)
    elements = {}
    for element_id, entry in sorted(per.items()):
        durations = entry.pop("durations")
        elements[element_id] = {**entry, "avg_seconds": round(sum(durations) / len(durations), 1) if durations
                                else None, "p90_seconds": round(p90(durations), 1) if durations else None}
    return {"process_id": process_id, "version": version, "since": since, "until": until, "elements": elements}


async def _automatic_steps(engine: CaseEngine, definitions: list[int], per: dict[str, dict[str, Any]],
                           since: datetime | None, until: datetime | None) -> None:
    """Count ``step_done`` timeline entries; they carry the element's name, mapped back to its id."""
    query = CaseEvent.filter(case__definition_id__in=definitions, kind="step_done")
    if since:
        query = query.filter(created_at__gte=since)
    if until:
        query = query.filter(created_at__lt=until)
    rows = await query.values_list("case__definition_id", "task_name")
    names: dict[int, dict[str, str]] = {}
    for definition_id, task_name in rows:
        if definition_id not in names:
            bundle = await engine.bundle_for(definition_id)
            mapping: dict[str, str] = {}
            for spec in bundle.all_specs.values():
                for task_spec in spec.task_specs.values():
                    bpmn_id = getattr(task_spec, "bpmn_id", None)
                    if bpmn_id:
                        mapping.setdefault(getattr(task_spec, "bpmn_name", None) or bpmn_id, bpmn_id)
                        mapping.setdefault(bpmn_id, bpmn_id)
            names[definition_id] = mapping
        element_id = names[definition_id].get(task_name or "")
        if element_id:
            per[element_id]["completed"] += 1


__all__ = ["element_stats", "p90"]
