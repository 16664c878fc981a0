"""Four-eyes publishing for process folders: in production a folder's first version goes live, a
changed folder becomes a pending version (new cases stay on the live one) until approved; in
development a changed folder is live at once (engine.citizen.applications, engine.designer.review)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.accountability.privacy import PiiKeys
from engine.citizen.applications import ApplicationService
from engine.citizen.catalog import Catalog
from engine.designer import review
from engine.kernel.cases import CaseEngine
from engine.store.models import ProcessDefinition

ROOT = Path(__file__).resolve().parents[3]


def _service(engine: CaseEngine, settings, processes: Path, state: str) -> ApplicationService:  # noqa: ANN001
    return ApplicationService(engine, Catalog.load(processes), pii_key=PiiKeys.from_settings(settings).blind_index_key,
                              folder_review_state=state)


@pytest.mark.parametrize("state, second_live", [("pending", 1), ("approved", 2)])
async def test_a_changed_folder_waits_for_approval_in_production(engine: CaseEngine, settings, tmp_path: Path,  # noqa: ANN001
                                                                  state: str, second_live: int) -> None:
    processes = tmp_path / "processes"
    shutil.copytree(ROOT / "processes", processes)
    applications = _service(engine, settings, processes, state)
    item = applications.catalog.get("rectification")
    first = await applications.definition_for(item)
    assert (first.version, first.review_state) == (1, "approved")  # shipped: live when first deployed
    bpmn = next(item.folder.glob("*.bpmn"))
    bpmn.write_text(bpmn.read_text(encoding="utf-8").replace('name="差评整改"', 'name="差评整改（新）"', 1),
                    encoding="utf-8")
    live = await applications.definition_for(item)
    assert live.version == second_live
    changed = await ProcessDefinition.get(process_id="rectification", version=2)
    assert changed.review_state == state and changed.deployed_by == "catalog"
    if state == "pending":  # an admin approves it: now new cases start on it
        await review.approve(engine, "rectification", 2, review.Reviewer("admin01", ["admin"], []), note="同意")
        assert (await applications.definition_for(item)).version == 2
        assert review.version_state(first, review.live_of(await ProcessDefinition.all())) == "superseded"
