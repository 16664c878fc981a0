"""Helpers shared by the engine's package tests (fixtures live in ``conftest.py``)."""

from __future__ import annotations

from engine.bpmn.parser import files_for_model
from engine.citizen.applications import Applicant, ApplicationService
from engine.kernel.cases import CaseEngine, current_data
from tests.conftest import FIXTURES
from tests.processes.test_business_startup import FORM, WANG

PASSWORD = "correct horse battery staple"
STAFF_ROWS = {"samr01": (["samr"], ["officer"]), "samr02": (["samr"], ["officer"]), "psb01": (["psb"], ["officer"]),
              "samr_sup": (["samr"], ["supervisor"])}


async def intake_task(applications: ApplicationService, applicant: Applicant = WANG) -> str:
    """A business-startup application; the id of its first task (intake_check, lane samr)."""
    started = await applications.apply("business-startup", FORM, applicant=applicant)
    [task] = started.ready_tasks
    assert task.department == "samr" and task.task_spec == "intake_check"
    return task.id


def task_ops_model(name: str) -> dict[str, str]:
    """The files of a test model under ``tests/fixtures/models/task_ops``."""
    return files_for_model(FIXTURES / "models" / "task_ops" / f"{name}.bpmn")


async def assert_round_trip(engine: CaseEngine, case_id: int) -> dict:
    """Reload the stored case and check that dumping it again reproduces the stored state."""
    case, workflow, _ = await engine.load(case_id)
    assert engine.deps.serializer.dump(workflow) == case.state
    return current_data(workflow)
