"""The case engine against a real database: every wait state is saved, reloaded and compared."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from engine.errors import Conflict, NotFound, ScriptError, TaskNotReady, ValidationFailed
from engine.kernel.cases import CaseEngine
from engine.kernel.jobs import JobRunner
from engine.store.models import Case, CaseEvent, HumanTask, Job, ProcessDefinition
from tests.conftest import model_files
from tests.engine.helpers import assert_round_trip

SENIOR = {"birth_date": "1950-03-01", "apply_date": "2026-11-29", "region_code": "310104", "name": "张三"}


async def test_deploy_is_content_hashed_and_idempotent(engine: CaseEngine) -> None:
    files = model_files("approval")
    first = await engine.deploy(files)
    again = await engine.deploy(dict(reversed(list(files.items()))))
    assert again.id == first.id and first.version == 1
    changed = dict(files)
    changed["approval.bpmn"] = files["approval.bpmn"].replace("score = age * 2", "score = age * 3")
    second = await engine.deploy(changed)
    assert second.version == 2 and second.content_hash != first.content_hash
    assert await ProcessDefinition.filter(process_id="approval").count() == 2


async def test_approval_path_saves_and_restores_at_each_wait_state(engine: CaseEngine) -> None:
    definition = await engine.deploy(model_files("approval"))
    started = await engine.start_case(definition, service="demo", data={"applicant_name": "李四"},
                                      applicant="openid-1")
    assert started.status == "running" and [t.task_spec for t in started.ready_tasks] == ["intake"]
    assert started.ready_tasks[0].department == "window" and started.ready_tasks[0].form_key == "intake.json"
    assert (await assert_round_trip(engine, started.id))["applicant_name"] == "李四"
    row = await HumanTask.get(id=started.ready_tasks[0].id)
    assert row.state == "ready" and row.department == "window"

    # the stored state carries no spec: it lives once in the definition
    case = await Case.get(id=started.id)
    assert '"spec"' not in case.state and "task_specs" not in case.state

    step2 = await engine.complete_task(started.ready_tasks[0].id, {"accepted": True, "age": 70},
                                       actor="clerk01", opinion="材料齐全")
    assert step2.version == 2 and [t.task_spec for t in step2.ready_tasks] == ["review"]
    assert step2.ready_tasks[0].department == "mca"
    data = await assert_round_trip(engine, started.id)
    assert data["score"] == 140 and data["approved_hint"] is True and data["applicant_name"] == "李四"

    done = await engine.complete_task(step2.ready_tasks[0].id, {"review_opinion": "同意"}, actor="mca01")
    assert done.status == "completed" and done.ready_tasks == []
    assert (await assert_round_trip(engine, started.id))["review_opinion"] == "同意"

    kinds = [(e.kind, e.task_name, e.actor) for e in await engine.timeline(started.id)]
    assert kinds[0] == ("case_started", None, None)
    assert ("task_completed", "窗口受理", "clerk01") in kinds and ("task_completed", "民政审核", "mca01") in kinds
    assert kinds[-1][0] == "case_completed"
    opinion = await CaseEvent.get(case_id=started.id, task_name="窗口受理")
    assert opinion.detail == {"opinion": "材料齐全"} and opinion.department == "window"
    states = await HumanTask.filter(case_id=started.id).values_list("task_spec", "state")
    assert sorted(states) == [("intake", "completed"), ("review", "completed")]


async def test_exclusive_gateway_default_branch_ends_case(engine: CaseEngine) -> None:
    definition = await engine.deploy(model_files("approval"))
    started = await engine.start_case(definition, service="demo")
    result = await engine.complete_task(started.ready_tasks[0].id, {"accepted": False, "age": 30})
    assert result.status == "completed" and result.data["accepted"] is False
    assert result.ready_tasks == []


async def test_form_validation_rejects_bad_data_and_keeps_state(engine: CaseEngine) -> None:
    definition = await engine.deploy(model_files("approval"))
    started = await engine.start_case(definition, service="demo")
    before = (await Case.get(id=started.id)).state
    with pytest.raises(ValidationFailed) as info:
        await engine.complete_task(started.ready_tasks[0].id, {"accepted": "yes", "age": -1})
    assert set(info.value.fields) == {"accepted", "age"}
    assert "不能小于" in info.value.fields["age"]
    case = await Case.get(id=started.id)
    assert case.state == before and case.version == 1


async def test_completing_twice_or_unknown_task_is_refused(engine: CaseEngine) -> None:
    definition = await engine.deploy(model_files("approval"))
    started = await engine.start_case(definition, service="demo")
    task_id = started.ready_tasks[0].id
    await engine.complete_task(task_id, {"accepted": True, "age": 61})
    with pytest.raises(TaskNotReady):
        await engine.complete_task(task_id, {"accepted": True, "age": 61})
    with pytest.raises(NotFound):
        await engine.complete_task("00000000-0000-0000-0000-000000000000", {})
    with pytest.raises(NotFound):
        await engine.complete_task("not-a-uuid", {})
    assert (await Case.get(id=started.id)).version == 2


async def test_stale_writer_gets_conflict(engine: CaseEngine) -> None:
    definition = await engine.deploy(model_files("approval"))
    started = await engine.start_case(definition, service="demo")
    stale_case, workflow, _ = await engine.load(started.id)
    await engine.complete_task(started.ready_tasks[0].id, {"accepted": True, "age": 61})
    from tortoise.transactions import in_transaction

    with pytest.raises(Conflict):
        async with in_transaction() as conn:
            await engine._store(conn, stale_case, workflow, engine.deps.clock())
    assert (await Case.get(id=started.id)).version == 2


@pytest.mark.postgres
async def test_concurrent_completions_exactly_one_wins(engine: CaseEngine) -> None:
    definition = await engine.deploy(model_files("approval"))
    for _ in range(5):
        started = await engine.start_case(definition, service="demo")
        task_id = started.ready_tasks[0].id
        results = await asyncio.gather(
            *[engine.complete_task(task_id, {"accepted": True, "age": 60 + i}, actor=f"officer{i}")
              for i in range(4)],
            return_exceptions=True)
        wins = [r for r in results if not isinstance(r, BaseException)]
        losses = [r for r in results if isinstance(r, BaseException)]
        assert len(wins) == 1, results
        assert all(isinstance(r, Conflict) for r in losses), losses
        case = await Case.get(id=started.id)
        assert case.version == 2
        completions = await CaseEvent.filter(case_id=started.id, kind="task_completed")
        winner = wins[0].data["age"] - 60
        assert len(completions) == 1 and completions[0].actor == f"officer{winner}"
        open_review = await HumanTask.filter(case_id=started.id, task_spec="review", state="ready").count()
        assert open_review == 1
        data = await assert_round_trip(engine, started.id)
        assert data["age"] == wins[0].data["age"]


async def test_parallel_gateway_and_dmn_decide_automatically(engine: CaseEngine) -> None:
    definition = await engine.deploy(model_files("auto_check"))
    old = await engine.start_case(definition, service="senior-card", data=SENIOR)
    assert old.status == "completed"
    assert old.data["decision"] == "approve" and old.data["outcome"] == "approved"
    assert old.data["total_score"] == 30 and old.data["age"] == 76
    young = await engine.start_case(definition, service="senior-card", data={**SENIOR, "birth_date": "1990-05-05"})
    assert young.data["decision"] == "reject" and young.data["reason"] == "未满60周岁"
    outside = await engine.start_case(definition, service="senior-card", data={**SENIOR, "region_code": "110101"})
    assert outside.data["decision"] == "manual"
    steps = [e.task_name for e in await engine.timeline(old.id) if e.kind == "step_done"]
    assert {"人口库核验", "信用核验", "户籍核验", "秒批决策", "准予"} <= set(steps)
    # one write per case: the automatic process completed within its first save
    assert (await Case.get(id=old.id)).version == 1


async def test_call_activity_and_embedded_subprocess(engine: CaseEngine) -> None:
    definition = await engine.deploy(model_files("call"))
    started = await engine.start_case(definition, service="bundle")
    intake = await engine.complete_task(started.ready_tasks[0].id, {"company": "上海某某科技有限公司"})
    [carve] = intake.ready_tasks
    assert carve.task_spec == "carve" and carve.department == "psb" and carve.lane == "公安局"
    await assert_round_trip(engine, started.id)
    done = await engine.complete_task(carve.id, {"seal_no": "S-0001"}, actor="psb01")
    assert done.status == "completed" and done.data["summary"] == "seal S-0001"


async def test_timer_boundary_fires_once_through_the_job_runner(engine: CaseEngine) -> None:
    definition = await engine.deploy(model_files("timer"))
    started = await engine.start_case(definition, service="demo", data={"timeout": "PT1S"})
    [job] = await Job.filter(case_id=started.id, status="pending")
    assert job.kind == "timer" and job.task_id
    runner = JobRunner(engine)
    assert await runner.run_due() == 0  # not yet due
    due_in = await runner.next_due_in()
    assert due_in is not None and 0 < due_in <= 1.0
    await asyncio.sleep(due_in + 0.05)
    assert await runner.run_due() == 1
    assert await runner.run_due() == 0  # never twice
    job = await Job.get(id=job.id)
    assert job.status == "done" and job.fired_at is not None
    assert (job.fired_at - job.due_at) < timedelta(seconds=1)
    tasks = await HumanTask.filter(case_id=started.id).order_by("created_at").values_list("task_spec", "state")
    assert ("review", "cancelled") in tasks and ("supervise", "ready") in tasks
    data = await assert_round_trip(engine, started.id)
    assert data["escalated"] is True


async def test_timer_job_cancelled_when_task_completed_first(engine: CaseEngine) -> None:
    definition = await engine.deploy(model_files("timer"))
    started = await engine.start_case(definition, service="demo", data={"timeout": "PT1H"})
    await engine.complete_task(started.ready_tasks[0].id, {})
    assert await Job.filter(case_id=started.id, status="pending").count() == 0
    assert await Job.filter(case_id=started.id, status="cancelled").count() == 1


async def test_timer_survives_restart_of_the_engine(engine: CaseEngine, settings) -> None:
    from engine import build_engine

    definition = await engine.deploy(model_files("timer"))
    started = await engine.start_case(definition, service="demo", data={"timeout": "PT0.5S"})
    fresh = build_engine(settings)  # a new process: empty caches, state only in the database
    await asyncio.sleep(0.6)
    assert await JobRunner(fresh).run_due() == 1
    case = await Case.get(id=started.id)
    assert case.version == 2


async def test_script_failure_names_task_and_stores_nothing(engine: CaseEngine) -> None:
    definition = await engine.deploy(model_files("auto_check"))
    with pytest.raises(ScriptError) as info:
        await engine.start_case(definition, service="x", data={"birth_date": "bad", "apply_date": "2026-11-29",
                                                                "region_code": "310104", "name": "张三"})
    assert "prepare" in info.value.message
    assert await Case.all().count() == 0


async def test_service_task_calls_connector_and_its_records_commit_with_the_case(engine: CaseEngine) -> None:
    from engine.kernel.connectors import ConnectorContext
    from engine.store.shared_models import DataAccessLog

    calls: list[tuple[dict, str]] = []

    def population(params: dict, context: ConnectorContext) -> dict:
        calls.append((params, context.case_no))
        context.record("access_log", {"dataset": "population", "subject": params["id_number"]})
        if params["id_number"] == "boom":
            raise ValueError("registry unavailable")
        return {"name": "张三"}

    async def write_access(conn, case_id: int, payload: dict) -> None:
        await DataAccessLog.create(subject_hash=payload["subject"], dataset=payload["dataset"], case_id=case_id,
                                   purpose="test", using_db=conn)

    engine.deps.connectors.register("test.population", population, personal_data=True)
    engine.deps.record_writers["access_log"] = write_access
    definition = await engine.deploy(model_files("service"))
    result = await engine.start_case(definition, service="lookup", data={"id_number": "110101"})
    assert result.status == "completed" and result.data["greeting"] == "您好，张三"
    assert calls == [({"id_number": "110101"}, result.case_no)]
    [log] = await DataAccessLog.all()
    assert log.case_id == result.id and log.dataset == "population"
    with pytest.raises(ScriptError) as info:
        await engine.start_case(definition, service="lookup", data={"id_number": "boom"})
    assert "lookup" in info.value.message
    assert await DataAccessLog.all().count() == 1  # the failed step stored nothing


async def test_case_state_is_encrypted_at_rest(engine: CaseEngine) -> None:
    definition = await engine.deploy(model_files("approval"))
    started = await engine.start_case(definition, service="demo",
                                      data={"applicant": {"id_number": "310104196103150273", "phone": "13812345678"}})
    stored = (await Case.get(id=started.id)).state
    assert stored.startswith("enc1:")
    assert "310104196103150273" not in stored and "13812345678" not in stored
    data = await assert_round_trip(engine, started.id)
    assert data["applicant"]["id_number"] == "310104196103150273"


async def test_bundle_case_has_a_subcase_per_department(engine: CaseEngine) -> None:
    definition = await engine.deploy(model_files("call"))
    started = await engine.start_case(definition, service="bundle")
    intake = await engine.complete_task(started.ready_tasks[0].id, {"company": "上海某某科技有限公司"})
    subcases = await engine.subcases(started.id)
    assert [(s["subcase_no"], s["department"], s["status"]) for s in subcases] == [
        (f"{started.case_no}-01", "window", "done"), (f"{started.case_no}-02", "psb", "running")]
    assert subcases[1]["department_name"] == "公安局"
    await engine.complete_task(intake.ready_tasks[0].id, {"seal_no": "S-1"})
    assert [s["status"] for s in await engine.subcases(started.id)] == ["done", "done"]


async def test_case_numbers_are_unique_and_readable(engine: CaseEngine) -> None:
    import re

    definition = await engine.deploy(model_files("approval"))
    numbers = {(await engine.start_case(definition, service="senior-card")).case_no for _ in range(20)}
    assert len(numbers) == 20
    assert all(re.fullmatch(r"SENIOR-CARD-\d{8}-[2-9A-HJ-NP-Z]{8}", n) for n in numbers)


async def test_steps_can_run_off_the_event_loop(db: str, settings) -> None:
    import threading

    from engine import build_engine

    engine = build_engine(settings, deps_overrides={"offload_steps": True})
    threads: set[str] = set()
    engine.deps.connectors.register("test.where", lambda params, context: threads.add(
        threading.current_thread().name) or {"name": "张三"})
    definition = await engine.deploy({**model_files("service"), "service_lookup.bpmn": model_files("service")[
        "service_lookup.bpmn"].replace("test.population", "test.where")})
    result = await engine.start_case(definition, service="lookup", data={"id_number": "110101"})
    assert result.status == "completed" and result.data["greeting"] == "您好，张三"
    assert threads and threading.main_thread().name not in threads
    approval = await engine.deploy(model_files("approval"))
    started = await engine.start_case(approval, service="demo")
    done = await engine.complete_task(started.ready_tasks[0].id, {"accepted": False, "age": 30})
    assert done.status == "completed"


async def test_a_taken_case_number_is_drawn_again(engine: CaseEngine) -> None:
    """start_case no longer asks whether its random case number is free before every case: the
    unique index refuses a taken one, and the case is written again under a new number — with its
    whole step (timeline, audit), and nothing of the refused attempt left behind."""
    from engine.accountability import audit
    from engine.store.audit_models import AuditRecord

    numbers = iter(["DEMO-20261129-TAKEN", "DEMO-20261129-TAKEN", "DEMO-20261129-FRESH"])
    engine.deps.case_no = lambda service, now: next(numbers)
    definition = await engine.deploy(model_files("approval"))
    first = await engine.start_case(definition, service="demo", data={"applicant_name": "李四"})
    second = await engine.start_case(definition, service="demo", data={"applicant_name": "王五"})
    assert (first.case_no, second.case_no) == ("DEMO-20261129-TAKEN", "DEMO-20261129-FRESH")
    assert await Case.filter(case_no="DEMO-20261129-FRESH").count() == 1
    assert [e.kind for e in await engine.timeline(second.id)] == ["case_started"]
    assert await AuditRecord.filter(kind="case.start").count() == 2
    assert await AuditRecord.filter(case_no="DEMO-20261129-FRESH", kind="case.start").count() == 1
    assert (await audit.verify()).ok
