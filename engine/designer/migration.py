"""Move running cases from one version of a process to another (``migrate``; dry-run first).

A case may move when every task it has reached (completed, running, waiting or ready) still
exists, by BPMN element id, in the target version; otherwise it stays and the answer says which
elements are missing. Moving uses SpiffWorkflow's spec diff: tasks are re-pointed at the new
specs, ready and waiting tasks are re-predicted (keeping their ids, so the staff inbox rows and
claims survive; waiting timers keep their original due time). Each move is one optimistic,
versioned case write with a ``case_migrated`` timeline entry; the whole run is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from SpiffWorkflow.util.task import TaskState

from engine.bpmn.parser import ProcessBundle
from engine.designer import audit
from engine.errors import Conflict, GovflowError, NotFound, ValidationFailed
from engine.kernel.cases import CaseEngine, Step
from engine.store.models import Case, ProcessDefinition

REACHED = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.COMPLETED | TaskState.ERROR


@dataclass
class CaseVerdict:
    case_id: int
    case_no: str
    movable: bool
    reasons: list[str] = field(default_factory=list)
    moved: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "case_no": self.case_no, "movable": self.movable,
                "moved": self.moved, "reasons": self.reasons}


@dataclass
class MigrationReport:
    process_id: str
    from_version: int
    to_version: int
    dry_run: bool
    cases: list[CaseVerdict]

    def as_dict(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "from_version": self.from_version, "to_version": self.to_version,
                "dry_run": self.dry_run, "moved": sum(c.moved for c in self.cases),
                "movable": sum(c.movable for c in self.cases),
                "refused": sum(not c.movable for c in self.cases), "cases": [c.as_dict() for c in self.cases]}


def _missing(workflow: BpmnWorkflow, bundle: ProcessBundle) -> list[str]:
    """Why the workflow cannot move to ``bundle`` (empty when it can)."""
    reasons: list[str] = []
    parts = [(workflow, bundle.spec)] + [
        (sub, bundle.subprocess_specs.get(sub.spec.name)) for sub in workflow.subprocesses.values()]
    for part, spec in parts:
        if spec is None:
            reasons.append(f"子流程 {part.spec.name} 在目标版本中不存在")
            continue
        for task in part.get_tasks(state=REACHED, skip_subprocesses=True):
            name = task.task_spec.name
            if name not in spec.task_specs:
                label = getattr(task.task_spec, "bpmn_name", None) or name
                reason = f"已到达的环节「{label}」（{name}）在目标版本中不存在"
                if reason not in reasons:
                    reasons.append(reason)
    return reasons


def _move(workflow: BpmnWorkflow, bundle: ProcessBundle, registry: Any) -> None:
    """Re-point ``workflow`` at ``bundle``'s specs (in place)."""
    timers = {t.id: dict(t.internal_data) for t in workflow.get_tasks(state=TaskState.WAITING) if t.internal_data}
    top_diff, sub_diffs = diff_workflow(registry, workflow, bundle.spec, bundle.subprocess_specs)
    migrate_workflow(top_diff, workflow, bundle.spec)
    for sub_id, sub in workflow.subprocesses.items():
        diff = sub_diffs.get(sub_id)
        if diff is None:
            raise Conflict(f"子流程 {sub.spec.name} 无法迁移")
        migrate_workflow(diff, sub, bundle.subprocess_specs[sub.spec.name])
    workflow.subprocess_specs = bundle.subprocess_specs
    for task in workflow.get_tasks(state=TaskState.WAITING):
        if task.id in timers:
            task.internal_data.update(timers[task.id])
    leftovers = [t.task_spec.name for t in workflow.get_tasks() if t.task_spec is not None
                 and t.task_spec.name not in (bundle.all_specs.get(t.workflow.spec.name) or bundle.spec).task_specs]
    if leftovers:
        raise Conflict(f"迁移后仍有任务指向旧版本的元素：{', '.join(sorted(set(leftovers))[:5])}")


MAX_VERSION = 2**31 - 1  # versions are a 32-bit integer column; a larger one would overflow the query


async def _version(process_id: str, version: Any, label: str) -> ProcessDefinition:
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= MAX_VERSION:
        raise ValidationFailed("版本号应为正整数", fields={label: "应为正整数"})
    definition = await ProcessDefinition.get_or_none(process_id=process_id, version=version)
    if definition is None:
        raise NotFound(f"流程 {process_id} 没有版本 {version}")
    return definition


async def migrate(engine: CaseEngine, process_id: str, from_version: Any, to_version: Any, *,
                  dry_run: bool = True, actor: str) -> MigrationReport:
    source = await _version(process_id, from_version, "from_version")
    target = await _version(process_id, to_version, "to_version")
    if source.id == target.id:
        raise ValidationFailed("源版本与目标版本相同", fields={"to_version": "应与 from_version 不同"})
    bundle = await engine.bundle_for(target.id)
    serializer = engine.deps.serializer
    verdicts = []
    for case_id in await Case.filter(definition_id=source.id, status="running").order_by("id").values_list(
            "id", flat=True):
        case, workflow, _ = await engine.load(case_id)
        verdict = CaseVerdict(case.id, case.case_no, movable=True, reasons=_missing(workflow, bundle))
        verdict.movable = not verdict.reasons
        if verdict.movable:
            try:
                _move(workflow, bundle, serializer.registry)
                serializer.load(serializer.dump(workflow), bundle, workflow.script_engine)  # must reload
            except GovflowError as exc:
                verdict.movable, verdict.reasons = False, [exc.message]
            except Exception as exc:  # noqa: BLE001 - Spiff's diff may fail on exotic models: refuse, not crash
                verdict.movable, verdict.reasons = False, [f"无法迁移（{exc.__class__.__name__}: {exc}）"]
        if verdict.movable and not dry_run:
            await _store(engine, case, workflow, bundle, target, source, actor)
            verdict.moved = True
        verdicts.append(verdict)
    report = MigrationReport(process_id, source.version, target.version, bool(dry_run), verdicts)
    if not dry_run:
        await audit.record("migrate", actor=actor, process_id=process_id, version=target.version,
                           content_hash=target.content_hash, detail={
                               "from_version": source.version, "moved": [v.case_no for v in verdicts if v.moved],
                               "refused": {v.case_no: v.reasons for v in verdicts if not v.movable}})
    return report


async def _store(engine: CaseEngine, case: Case, workflow: BpmnWorkflow, bundle: ProcessBundle,
                 target: ProcessDefinition, source: ProcessDefinition, actor: str) -> None:
    step = Step(events=[{"kind": "case_migrated", "actor": actor,
                         "detail": {"from_version": source.version, "to_version": target.version}}])
    # optimistic: a concurrent step wins; the migration itself is audited once for all cases
    async with engine.commit(case, workflow, bundle, step, audit_step=False, publish=False) as tx:
        await Case.filter(id=case.id, version=tx.version).using_db(tx.conn).update(definition_id=target.id)

__all__ = ["CaseVerdict", "MigrationReport", "migrate"]
