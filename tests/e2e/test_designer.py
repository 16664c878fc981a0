"""The process designer (/designer/) in a desktop-sized Chromium against a real server.

A designer logs in, opens the business-startup process (shipped without a diagram: the page lays
it out with its lanes), appends a task (a second flow out of 受理核验) and sees the validation finding marked on the diagram,
removes it, moves and renames a step, gives a lane a department from the list, deploys and sees the
new version; a case started afterwards runs on the version the page exported. With cases waiting
(one overdue) the heat-map puts their counts on the steps.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from engine.bpmn.parser import files_from_json
from engine.platform.seed import hash_password
from engine.store.models import Case, HumanTask, ProcessDefinition, StaffUser
from tests.e2e.conftest import Server, _pages
from tests.e2e.conftest import screenshot as page_screenshot
from tests.processes.test_business_startup import ACCEPT, FORM, WANG

pytestmark = pytest.mark.sqlite_only

PASSWORD = "e2e-designer-password"
DESKTOP: dict[str, Any] = {"viewport": {"width": 1440, "height": 900}, "locale": "zh-CN",
                           "timezone_id": "Asia/Shanghai"}
PROCESS = "business_startup"
RENAMED = "受理核验（窗口预审）"


@pytest.fixture
async def desktop(browser: Browser) -> AsyncIterator[Any]:
    """Open desktop pages at the designer's size (the modeler loads bpmn-js: a longer default wait)."""
    async for open_page in _pages(browser, DESKTOP, timeout_ms=15_000):
        yield open_page


async def screenshot(page: Page, name: str) -> Path:
    await page.evaluate("document.activeElement && document.activeElement.blur()")  # no focus ring in the picture
    return await page_screenshot(page, name)


async def start_case(server: Server) -> Case:
    result = await server.app.ctx.applications.apply("business-startup", FORM, applicant=WANG, channel="window",
                                                     actor="clerk01")
    return await Case.get(id=result.id)


async def designer_page(server: Server, desktop: Any) -> Page:
    await StaffUser.create(username="designer01", name="陈设计", password_hash=hash_password(PASSWORD),
                           departments=["window"], roles=["designer"])
    page: Page = await desktop(server.base_url)
    await page.goto("/designer/")
    await expect(page.get_by_role("heading", name="流程设计人员登录")).to_be_visible()
    await page.get_by_label("用户名").fill("designer01")
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录", exact=True).click()
    await expect(page.locator("#who")).to_contain_text("陈设计（designer01）")
    return page


async def open_process(page: Page, version: int) -> None:
    await page.locator(f'#process-list [data-process-id="{PROCESS}"]').click()
    await expect(page.locator("body")).to_have_attribute("data-loaded", f"{PROCESS}@{version}")


def shape(page: Page, element_id: str) -> Any:
    return page.locator(f'.djs-element.djs-shape[data-element-id="{element_id}"]')


async def test_designer_edits_validates_and_deploys_a_version_cases_then_run_on(server: Server, desktop: Any) -> None:
    first = await start_case(server)  # deploys the shipped folder as version 1
    page = await designer_page(server, desktop)
    await open_process(page, 1)
    await expect(page.locator("#ws-title")).to_contain_text("第 1 版")
    await expect(page.locator('#version-list [data-version="1"]')).to_contain_text("最新")
    # no DI in the shipped file: the page drew the pool, one lane per department, every step
    await expect(shape(page, "Lane_samr")).to_be_visible()
    await expect(shape(page, "intake_check")).to_contain_text("受理核验")

    # --- add a task after 受理核验 through the context pad: validation marks what is wrong with it
    await shape(page, "intake_check").click()
    await page.locator('.djs-context-pad .entry[data-action="append.append-task"]').click()
    added = await page.evaluate("window.govflowDesigner.modeler.get('selection').get()[0].id")
    await page.keyboard.type("补充核验")  # the new task's name is being edited in place
    await expect(page.locator("#dirty")).to_be_visible()
    await page.get_by_role("button", name="校验").click()
    await expect(page.locator("#validate-summary")).to_contain_text("个错误")
    # a task may not fork the flow (two outgoing flows): 受理核验 is marked and listed
    await expect(page.locator('.djs-element.gf-error[data-element-id="intake_check"]')).to_have_count(1)
    await expect(page.locator('#findings .finding-error[data-element-id="intake_check"]')).to_contain_text("受理核验")
    await expect(page.locator(".finding-badge-error").first).to_be_visible()
    await expect(shape(page, added)).to_contain_text("补充核验")  # 校验 ended the in-place editing
    await screenshot(page, "designer-modeler.png")

    # --- take it out again (context pad 删除): the model validates
    # the new task is still selected, its context pad open: 删除
    assert await page.evaluate("window.govflowDesigner.modeler.get('selection').get().map(e => e.id)") == [added]
    await page.locator('.djs-context-pad .entry[data-action="delete"]').click()
    await page.get_by_role("button", name="校验").click()
    await expect(page.locator("#validate-summary")).to_contain_text("校验通过")
    await expect(page.locator(".djs-element.gf-error")).to_have_count(0)

    # --- move 受理核验 down by dragging it, rename it in the properties panel
    box = await shape(page, "intake_check").bounding_box()
    assert box
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.down()
    await page.mouse.move(box["x"] + box["width"] / 2 + 10, box["y"] + box["height"] / 2 + 40, steps=8)
    await page.mouse.up()
    moved = await shape(page, "intake_check").bounding_box()
    assert moved and moved["y"] > box["y"] + 20
    # the dragged step is the selection: the properties panel edits it
    await expect(page.locator("#props")).to_contain_text("intake_check")
    name = page.locator("#props").get_by_label("名称")
    await name.fill(RENAMED)
    await name.press("Enter")
    await name.blur()
    await expect(shape(page, "intake_check")).to_contain_text(RENAMED)

    # --- a lane offers the known departments; choosing one names the lane after it
    lane = await shape(page, "Lane_samr").bounding_box()
    assert lane
    await page.mouse.click(lane["x"] + 15, lane["y"] + lane["height"] / 2)  # the lane's name band
    await expect(page.locator("#props")).to_contain_text("泳道（部门）")
    select = page.locator("#props").get_by_label("办理部门")
    await expect(select.locator("option", has_text="市场监督管理局（samr）")).to_have_count(1)
    await expect(select).to_have_value("samr")
    await select.select_option("tax")
    await expect(shape(page, "Lane_samr")).to_contain_text("税务局")
    await select.select_option("samr")
    await expect(shape(page, "Lane_samr")).to_contain_text("市场监督管理局")
    await expect(page.locator("#props")).to_contain_text("泳道（部门）")

    # --- deploy: the new version is listed and shown
    await page.get_by_role("button", name="发布新版本").click()
    await expect(page.locator("body")).to_have_attribute("data-loaded", f"{PROCESS}@2")
    await expect(page.locator('#version-list [data-version="2"]')).to_contain_text("最新")
    await expect(page.locator('#version-list [data-version="1"]')).to_be_visible()
    await expect(page.locator("#ws-title")).to_contain_text("第 2 版")
    await expect(page.locator("#dirty")).to_be_hidden()
    await expect(shape(page, "intake_check")).to_contain_text(RENAMED)

    # the stored version is the page's export (with its diagram); running cases stay on theirs
    v2 = await ProcessDefinition.get(process_id=PROCESS, version=2)
    assert v2.deployed_by == "designer01"
    bpmn = next(text for name, text in files_from_json(v2.files).items() if name.endswith(".bpmn"))
    assert "BPMNDiagram" in bpmn and RENAMED in bpmn and 'name="市场监督管理局"' in bpmn
    assert (await Case.get(id=first.id)).definition_id != v2.id

    # --- round trip: a new case runs on the exported version, its first task carries the new name
    second = await start_case(server)
    assert second.definition_id == v2.id
    [task] = await HumanTask.filter(case_id=second.id, state="ready")
    assert task.task_spec == "intake_check" and task.name == RENAMED
    assert task.lane == "市场监督管理局" and task.department == "samr"  # the lane named in Chinese still routes


IMPORTED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Defs_e2e" targetNamespace="http://e2e">
  <bpmn:collaboration id="Collab_e2e"><bpmn:participant id="Pool_e2e" name="窗口受理、民政审批" processRef="e2e_permit" />
  </bpmn:collaboration>
  <bpmn:process id="e2e_permit" name="设计器导入测试事项" isExecutable="true">
    <bpmn:laneSet id="LaneSet_e2e">
      <bpmn:lane id="Lane_window" name="window"><bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>accept</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="Lane_mca" name="民政局"><bpmn:flowNodeRef>approve</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>done</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start" name="提交" />
    <bpmn:userTask id="accept" name="窗口受理" />
    <bpmn:userTask id="approve" name="民政审批" />
    <bpmn:endEvent id="done" name="办结" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="accept" />
    <bpmn:sequenceFlow id="f2" sourceRef="accept" targetRef="approve" />
    <bpmn:sequenceFlow id="f3" sourceRef="approve" targetRef="done" />
  </bpmn:process>
</bpmn:definitions>
"""


async def test_a_file_without_diagram_is_laid_out_deployed_as_a_new_process_and_runs(
        server: Server, desktop: Any, tmp_path: Path) -> None:
    await start_case(server)  # so the list is not empty
    page = await designer_page(server, desktop)
    await open_process(page, 1)
    source = tmp_path / "e2e_permit.bpmn"
    source.write_text(IMPORTED, encoding="utf-8")
    assert "BPMNDiagram" not in IMPORTED
    await page.locator("#import-file").set_input_files(str(source))
    await expect(page.locator("body")).to_have_attribute("data-loaded", "e2e_permit@imported")
    await expect(page.locator("#ws-title")).to_contain_text("设计器导入测试事项（导入的文件，未发布）")
    # laid out in the page: a band per lane, the steps inside their lane's band
    for lane_id, step in (("Lane_window", "accept"), ("Lane_mca", "approve")):
        lane, box = await shape(page, lane_id).bounding_box(), await shape(page, step).bounding_box()
        assert lane and box and lane["y"] < box["y"] and box["y"] + box["height"] < lane["y"] + lane["height"]
    await page.get_by_role("button", name="校验").click()
    await expect(page.locator("#validate-summary")).to_contain_text("校验通过")

    await page.get_by_role("button", name="发布新版本").click()
    await expect(page.locator("body")).to_have_attribute("data-loaded", "e2e_permit@1")
    await expect(page.locator('#process-list [data-process-id="e2e_permit"]')).to_contain_text("设计器导入测试事项")
    await expect(page.locator('#version-list [data-version="1"]')).to_contain_text("designer01")

    # the page's export runs: 窗口受理 in window, then 民政审批 in mca (lane named in Chinese), then done
    definition = await ProcessDefinition.get(process_id="e2e_permit", version=1)
    assert "BPMNShape" in next(iter(files_from_json(definition.files).values()))
    started = await server.engine.start_case(definition, service="e2e-permit", data={})
    for spec, department in (("accept", "window"), ("approve", "mca")):
        [task] = await HumanTask.filter(case_id=started.id, state="ready")
        assert (task.task_spec, task.department) == (spec, department)
        await server.engine.complete_task(task.id, {}, actor="e2e")
    assert (await Case.get(id=started.id)).status == "completed"


async def test_decision_table_edited_in_the_dmn_editor_deploys_with_the_stored_bpmn(server: Server, desktop: Any) -> None:
    applications = server.app.ctx.applications
    v1 = await applications.definition_for(applications.catalog.get("senior-card"))
    page = await designer_page(server, desktop)
    await page.locator('#process-list [data-process-id="senior_card"]').click()
    await expect(page.locator("body")).to_have_attribute("data-loaded", "senior_card@1")
    tab = page.locator('#model-tabs [data-tab="senior_card_decision.dmn"]')
    await tab.click()
    await expect(tab).to_have_attribute("aria-selected", "true")
    cell = page.locator('#dmn-canvas td[data-element-id="r2_reason"]')
    await expect(cell).to_contain_text("申请人未满60周岁")
    await cell.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.type("'申请人未满60周岁，暂不符合申领条件，可在年满60周岁后申请'")
    await page.locator('#dmn-canvas td[data-element-id="r1_reason"]').click()  # leave the cell
    await expect(tab).to_contain_text("已修改")
    await expect(page.locator("#dirty")).to_be_visible()
    await page.get_by_role("button", name="校验").click()
    await expect(page.locator("#validate-summary")).to_contain_text("校验通过")
    await page.evaluate("document.querySelectorAll('#dmn-canvas, #dmn-canvas *').forEach(e => { e.scrollLeft = 0; })")
    await screenshot(page, "designer-dmn.png")

    await page.get_by_role("button", name="发布新版本").click()
    await expect(page.locator("body")).to_have_attribute("data-loaded", "senior_card@2")
    await expect(page.locator('#version-list [data-version="2"]')).to_contain_text("最新")
    v2 = await ProcessDefinition.get(process_id="senior_card", version=2)
    old, new = files_from_json(v1.files), files_from_json(v2.files)
    assert "可在年满60周岁后申请" in new["senior_card_decision.dmn"]
    assert "可在年满60周岁后申请" not in old["senior_card_decision.dmn"]
    assert new["senior_card.bpmn"] == old["senior_card.bpmn"]  # the BPMN was not edited: carried over as stored


async def test_heat_map_shows_waiting_and_overdue_cases_per_step(server: Server, desktop: Any) -> None:
    cases = [await start_case(server) for _ in range(5)]
    now = server.engine.deps.clock()
    intake = [await HumanTask.get(case_id=c.id, state="ready") for c in cases]
    # three pass intake after 2, 3 and 4 hours (to the five department branches), one of the two left is overdue
    for hours, task in zip((2, 3, 4), intake[:3], strict=True):
        await HumanTask.filter(id=task.id).update(created_at=now - timedelta(hours=hours))
        await server.engine.complete_task(task.id, ACCEPT, actor="samr01", opinion="予以受理")
    await HumanTask.filter(id=intake[3].id).update(due_at=now - timedelta(hours=5))
    page = await designer_page(server, desktop)
    await open_process(page, 1)
    await page.get_by_role("button", name="热力图").click()
    await expect(page.get_by_role("button", name="热力图")).to_have_attribute("aria-pressed", "true")
    badge = page.locator('.heat-badge[data-element-id="intake_check"]')
    await expect(badge).to_contain_text("2")
    await expect(badge).to_contain_text("超期 1")
    await expect(shape(page, "intake_check")).to_have_class(re.compile(r"gf-heat-overdue"))
    for branch in ("psb_seal", "tax_register", "hrss_social_insurance", "hpf_housing_fund", "bank_appointment"):
        await expect(page.locator(f'.heat-badge[data-element-id="{branch}"]')).to_have_text("3")
    await expect(page.locator("#heat-legend")).to_contain_text("在办 17 件 · 超期 1 件")
    row = page.locator('#stats-table tr[data-element-id="intake_check"]')
    await expect(row.locator("td").nth(1)).to_have_text("2")
    await expect(row.locator("td").nth(2)).to_have_text("1")
    await expect(row.locator("td").nth(3)).to_have_text("3")
    await expect(row.locator("td").nth(4)).to_have_text("3 小时")  # average of 2, 3 and 4 hours
    await page.set_viewport_size({"width": 1920, "height": 1080})  # the whole process at a legible size
    await page.get_by_role("button", name="全图").click()
    await screenshot(page, "designer-heatmap.png")
    # off again: markers and badges go
    await page.get_by_role("button", name="热力图").click()
    await expect(page.locator(".heat-badge")).to_have_count(0)


async def test_properties_show_the_assignment_rules_of_user_tasks(server: Server, desktop: Any) -> None:
    """会签不同人员 (distinctSigners) and 回避 (recuseFrom) read from the shipped models."""
    applications = server.app.ctx.applications
    for slug in ("residence-permit", "rectification"):
        await applications.definition_for(applications.catalog.get(slug))  # deploys the shipped folder
    page = await designer_page(server, desktop)
    await page.locator('#process-list [data-process-id="residence_permit"]').click()
    await expect(page.locator("body")).to_have_attribute("data-loaded", re.compile(r"^residence_permit@"))
    await page.get_by_role("button", name="全图").click()
    await shape(page, "countersign").click()
    await expect(page.locator("#prop-distinct-signers")).to_contain_text("每份会签须由不同人员签署")
    await shape(page, "review").click()
    await expect(page.locator("#props")).to_contain_text("review")
    await expect(page.locator("#prop-distinct-signers")).to_have_count(0)
    await page.locator('#process-list [data-process-id="rectification"]').click()
    await expect(page.locator("body")).to_have_attribute("data-loaded", re.compile(r"^rectification@"))
    await page.get_by_role("button", name="全图").click()
    await shape(page, "supervise").click()
    await expect(page.locator("#prop-recuse")).to_contain_text("不得由办理过 follow_up, rectify 的人员办理")
