"""Designer back end at engine level (engine.designer, engine.bpmn timers/habits/paths/layout),
against a real database: deploy from the designer, case migration allowed and refused, bare ISO
8601 timers that run, Camunda habits answered with the Python to write, DI layout."""

from __future__ import annotations

from datetime import timedelta

import pytest
from lxml import etree

from engine.bpmn import habits
from engine.bpmn.layout import has_layout, with_layout
from engine.bpmn.lint import lint_bundle
from engine.bpmn.parser import build_bundle, parse_xml, read_folder
from engine.designer import deploy as deployer
from engine.designer import findings, migration, stats
from engine.designer.bundle import Upload
from engine.designer.deploy import LintFailed
from engine.kernel.cases import CaseEngine
from engine.store.designer_models import DesignerAudit
from engine.store.models import Case, CaseEvent, HumanTask, Job, ProcessDefinition
from tests.conftest import FIXTURES, PROJECT_ROOT

THREE = (FIXTURES / "models" / "task_ops" / "three_steps.bpmn").read_text(encoding="utf-8")
DEPARTMENTS = {"window": "窗口", "mca": "民政局", "supervisor": "督办"}
# v2: a new user task 'check' between review and tally (lane mca)
WITH_CHECK = THREE.replace(
    '<bpmn:flowNodeRef>tally</bpmn:flowNodeRef>',
    '<bpmn:flowNodeRef>tally</bpmn:flowNodeRef><bpmn:flowNodeRef>check</bpmn:flowNodeRef>').replace(
    '<bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="tally" />',
    '<bpmn:userTask id="check" name="复核"/>'
    '<bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="check" />'
    '<bpmn:sequenceFlow id="f3b" sourceRef="check" targetRef="tally" />')
# v3: intake removed; start goes straight to review
WITHOUT_INTAKE = THREE.replace(
    '<bpmn:userTask id="intake" name="窗口受理"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
    '</bpmn:userTask>', '').replace('<bpmn:flowNodeRef>intake</bpmn:flowNodeRef>', '').replace(
    '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="intake" />', '').replace(
    '<bpmn:sequenceFlow id="f2" sourceRef="intake" targetRef="review" />',
    '<bpmn:sequenceFlow id="f2" sourceRef="start" targetRef="review" />')


async def _deploy(engine: CaseEngine, xml: str) -> ProcessDefinition:
    result = await deployer.deploy(engine, Upload(bpmn=xml), actor="designer01", departments=DEPARTMENTS)
    return result.definition


async def _case_at_review(engine: CaseEngine, definition: ProcessDefinition) -> int:
    started = await engine.start_case(definition, service="demo")
    await engine.complete_task(started.ready_tasks[0].id, {}, actor="win01")
    return started.id


async def test_deploy_identical_is_a_noop_and_audited(engine: CaseEngine) -> None:
    first = await deployer.deploy(engine, Upload(bpmn=THREE), actor="designer01", departments=DEPARTMENTS)
    again = await deployer.deploy(engine, Upload(bpmn=THREE.encode()), actor="designer01", departments=DEPARTMENTS)
    assert first.created and not again.created and again.definition.id == first.definition.id
    assert await ProcessDefinition.filter(process_id="three_steps").count() == 1
    rows = await DesignerAudit.filter(process_id="three_steps").order_by("id")
    assert [(r.action, r.actor, r.version, r.content_hash, r.detail["created"]) for r in rows] == [
        ("deploy", "designer01", 1, first.definition.content_hash, True),
        ("deploy", "designer01", 1, first.definition.content_hash, False)]


async def test_raw_bpmn_carries_over_forms_and_dmn_of_the_latest_version(engine: CaseEngine) -> None:
    folder = PROJECT_ROOT / "processes" / "senior-card"
    v1 = await engine.deploy(read_folder(folder), deployed_by="catalog")
    bpmn_name = next(n for n in read_folder(folder) if n.endswith(".bpmn"))
    edited = read_folder(folder)[bpmn_name].replace('name="', 'name="新', 1)
    result = await deployer.deploy(engine, Upload(bpmn=edited), actor="designer01",
                                   departments=engine.deps.departments)
    assert result.created and result.definition.version == v1.version + 1
    from engine.bpmn.parser import files_from_json

    old, new = files_from_json(v1.files), files_from_json(result.definition.files)
    assert set(new) == set(old) and new[bpmn_name] == edited
    assert all(new[n] == old[n] for n in old if n != bpmn_name)


async def test_lint_errors_refuse_the_deploy_and_store_nothing(engine: CaseEngine) -> None:
    broken = THREE.replace('<bpmn:flowNodeRef>review</bpmn:flowNodeRef>', '')
    with pytest.raises(LintFailed) as refused:
        await _deploy(engine, broken)
    assert any(e["code"] == "task_without_lane" and e["element_id"] == "review" for e in refused.value.detail)
    assert await ProcessDefinition.all().count() == 0 and await DesignerAudit.all().count() == 0


async def test_migration_moves_a_case_when_every_reached_task_exists(engine: CaseEngine) -> None:
    v1 = await _deploy(engine, THREE)
    case_id = await _case_at_review(engine, v1)
    [review] = await HumanTask.filter(case_id=case_id, state="ready")
    await HumanTask.filter(id=review.id).update(state="claimed", assignee="mca01")
    v2 = await _deploy(engine, WITH_CHECK)
    assert (await Case.get(id=case_id)).definition_id == v1.id  # deploying never moves a case

    dry = await migration.migrate(engine, "three_steps", 1, 2, dry_run=True, actor="designer01")
    assert [(c.case_id, c.movable, c.moved) for c in dry.cases] == [(case_id, True, False)]
    assert (await Case.get(id=case_id)).definition_id == v1.id and await DesignerAudit.filter(
        action="migrate").count() == 0

    done = await migration.migrate(engine, "three_steps", 1, 2, dry_run=False, actor="designer01")
    assert done.as_dict()["moved"] == 1
    assert (await Case.get(id=case_id)).definition_id == v2.id
    kept = await HumanTask.get(id=review.id)  # same task id: the inbox row and its claim survive
    assert (kept.state, kept.assignee) == ("claimed", "mca01")
    assert await CaseEvent.filter(case_id=case_id, kind="case_migrated").count() == 1
    after = await engine.complete_task(review.id, {}, actor="mca01")
    assert [t.task_spec for t in after.ready_tasks] == ["check"]  # the new version's step runs
    audit = await DesignerAudit.get(action="migrate")
    assert audit.detail["from_version"] == 1 and audit.version == 2 and audit.actor == "designer01"


async def test_migration_refuses_a_case_whose_completed_task_is_gone(engine: CaseEngine) -> None:
    v1 = await _deploy(engine, THREE)
    at_review = await _case_at_review(engine, v1)
    at_intake = (await engine.start_case(v1, service="demo")).id
    before = (await Case.get(id=at_review)).state
    await _deploy(engine, WITHOUT_INTAKE)
    report = await migration.migrate(engine, "three_steps", 1, 2, dry_run=False, actor="designer01")
    verdicts = {c.case_id: c for c in report.cases}
    assert not verdicts[at_review].movable and not verdicts[at_review].moved
    assert any("intake" in r for r in verdicts[at_review].reasons)
    assert not verdicts[at_intake].movable and any("intake" in r for r in verdicts[at_intake].reasons)
    case = await Case.get(id=at_review)
    assert case.definition_id == v1.id and case.state == before


def _with_timer(xml: str) -> str:
    return xml.replace(
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="intake" />',
        '<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition id="td">'
        '<bpmn:timeDuration>PT5M</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait" />'
        '<bpmn:sequenceFlow id="f1b" sourceRef="wait" targetRef="intake" />').replace(
        '<bpmn:flowNodeRef>start</bpmn:flowNodeRef>',
        '<bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>wait</bpmn:flowNodeRef>')


async def test_bare_iso_timer_is_accepted_and_runs(engine: CaseEngine) -> None:
    xml = _with_timer(THREE)
    assert lint_bundle({"t.bpmn": xml}, departments=DEPARTMENTS).ok
    definition = await _deploy(engine, xml)
    started = await engine.start_case(definition, service="demo")
    assert started.ready_tasks == []
    [job] = await Job.filter(case_id=started.id, kind="timer", status="pending")
    now = engine.deps.clock()
    assert now + timedelta(minutes=4) < job.due_at <= now + timedelta(minutes=6)


async def test_migration_keeps_a_waiting_timer_due_time(engine: CaseEngine) -> None:
    await _deploy(engine, _with_timer(THREE))
    started = await engine.start_case(await engine.latest_definition("three_steps"), service="demo")
    [job] = await Job.filter(case_id=started.id, kind="timer", status="pending")
    v2 = await _deploy(engine, _with_timer(WITH_CHECK))
    report = await migration.migrate(engine, "three_steps", 1, 2, dry_run=False, actor="designer01")
    assert report.as_dict()["moved"] == 1
    assert (await Case.get(id=started.id)).definition_id == v2.id
    [still] = await Job.filter(case_id=started.id, kind="timer", status="pending")
    assert (still.id, still.due_at) == (job.id, job.due_at)  # same job, same due time: the clock did not restart


def test_camunda_habits_are_answered_with_python() -> None:
    assert habits.foreign_expression("${amount > 100 && approved}") == "amount > 100 and approved"
    assert habits.foreign_expression("${!rejected || empty note}") == "not rejected or not note"
    assert habits.foreign_expression("amount > 100") is None
    assert habits.python_script('execution.setVariable("approved", true);\nvar x = 1;') == "approved = True; x = 1"
    xml = THREE.replace(
        '<bpmn:script>reviewed = True</bpmn:script>',
        '<bpmn:script>execution.setVariable("reviewed", true);</bpmn:script>').replace(
        '<bpmn:scriptTask id="tally" name="汇总">', '<bpmn:scriptTask id="tally" name="汇总" scriptFormat="groovy">')
    xml = xml.replace('<bpmn:sequenceFlow id="f5" sourceRef="approve" targetRef="end" />',
                      '<bpmn:sequenceFlow id="f5" sourceRef="approve" targetRef="end">'
                      '<bpmn:conditionExpression>${ok eq true}</bpmn:conditionExpression></bpmn:sequenceFlow>')
    report = lint_bundle({"t.bpmn": xml}, departments=DEPARTMENTS)
    shown = {findings.to_dict(f)["code"]: findings.to_dict(f) for f in report.errors}
    assert shown["foreign_script_language"]["element_id"] == "tally"
    assert "reviewed = True" in shown["foreign_script_language"]["message"]
    assert shown["foreign_expression"]["element_id"] == "f5" and "ok == True" in shown["foreign_expression"]["message"]


def test_paths_that_cannot_reach_an_end_are_errors() -> None:
    looping = THREE.replace('<bpmn:sequenceFlow id="f5" sourceRef="approve" targetRef="end" />',
                            '<bpmn:sequenceFlow id="f5" sourceRef="approve" targetRef="review" />').replace(
        '<bpmn:endEvent id="end" name="办结"><bpmn:incoming>f5</bpmn:incoming></bpmn:endEvent>',
        '<bpmn:endEvent id="end" name="办结"/>')
    report = lint_bundle({"t.bpmn": looping}, departments=DEPARTMENTS)
    stuck = {f.element_id for f in report.errors if f.code == "no_path_to_end"}
    assert {"start", "intake", "review", "tally", "approve"} <= stuck
    assert any(f.code == "unreachable_element" and f.element_id == "end" for f in report.warnings)
    assert lint_bundle({"t.bpmn": THREE}, departments=DEPARTMENTS).ok


@pytest.mark.parametrize("folder", sorted(p.name for p in (PROJECT_ROOT / "processes").iterdir()
                                          if list(p.glob("*.bpmn"))))
def test_generated_layout_covers_every_element_and_keeps_the_model(folder: str) -> None:
    files = read_folder(PROJECT_ROOT / "processes" / folder)
    name = next(n for n in files if n.endswith(".bpmn"))
    laid_out = with_layout(files[name])
    root = parse_xml(laid_out.encode())
    assert has_layout(root) and with_layout(laid_out) == laid_out  # a layout is kept as it is
    drawn = {el.get("bpmnElement") for el in root.iter("{*}BPMNShape", "{*}BPMNEdge")}
    model_ns = "http://www.omg.org/spec/BPMN/20100524/MODEL"
    process = root.find(f"{{{model_ns}}}process")
    wanted = {el.get("id") for el in process if isinstance(el.tag, str) and el.get("id")
              and etree.QName(el).localname not in ("laneSet", "dataObject", "textAnnotation", "association")}
    assert wanted <= drawn
    bundle = build_bundle({**files, name: laid_out})  # still the same executable model
    assert bundle.process_id == build_bundle(files).process_id


def test_p90_is_nearest_rank() -> None:
    assert stats.p90([]) is None
    assert stats.p90([5.0]) == 5.0
    assert stats.p90([float(i) for i in range(1, 11)]) == 9.0
    assert stats.p90([float(i) for i in range(1, 101)]) == 90.0


async def test_raw_bpmn_replaces_only_its_own_file_and_keeps_called_processes(engine: CaseEngine) -> None:
    text = (FIXTURES / "models" / "call" / "call_activity.bpmn").read_text(encoding="utf-8")

    def without(process_id: str) -> str:
        root = parse_xml(text.encode())
        for proc in root.findall("{http://www.omg.org/spec/BPMN/20100524/MODEL}process"):
            if proc.get("id") == process_id:
                root.remove(proc)
        return etree.tostring(root, encoding="unicode")

    main, sub = without("seal_sub"), without("bundle_main")
    first = await deployer.deploy(engine, Upload(bpmn=main, files={"seal_sub.bpmn": sub}), actor="designer01",
                                  departments=engine.deps.departments)
    assert first.definition.process_id == "bundle_main"
    edited = main.replace('name="刻章子流程"', 'name="刻制公章"')
    second = await deployer.deploy(engine, Upload(bpmn=edited), actor="designer01",
                                   departments=engine.deps.departments)
    from engine.bpmn.parser import files_from_json

    files = files_from_json(second.definition.files)
    assert second.created and sorted(files) == ["bundle_main.bpmn", "seal_sub.bpmn"]
    assert files["seal_sub.bpmn"] == sub and files["bundle_main.bpmn"] == edited
