"""Approval operations for officers (wrapping ``engine.workbench.task_ops``), department-checked as in
``engine.workbench.staff``:

    POST /staff/tasks/{id}/return {reason, to_step}   退回 to an earlier completed step → case
    POST /staff/tasks/{id}/return {reason}            补正: the applicant supplies material (any process) → case
    POST /staff/tasks/{id}/transfer {to, reason?}     转办 to a colleague of the task's department → task
    POST /staff/tasks/{id}/add-signer {user, position, opinion?}  加签 (before | after) → side task
    POST /staff/tasks/{id}/withdraw                   撤回已办: one's own last completion → case
    POST /staff/tasks/{id}/sign {decision, opinion}   the added signer's opinion on a 加签 side task → task

补正 (``engine.kernel.supplement``) holds the task until the citizen answers through
``POST /applications/{id}/supplement`` (window cases: also a clerk, completing the 补正 side task).
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json
from sanic_ext.extensions.openapi import openapi

from engine.errors import Conflict, NotFound, ValidationFailed
from engine.kernel import CaseResult
from engine.kernel import supplement as supplements
from engine.workbench import HumanTask, rectification, task_ops
from engine.workbench import staff as desk
from mobile_api.api.staff import TASK_ROLES, TASK_SCHEMA
from mobile_api.openapi_docs import error_documenter, json_content
from mobile_api.openapi_docs import object_schema as _obj
from mobile_api.request import json_body
from mobile_api.staff_auth import staff_required

error_responses = error_documenter({
    400: "请求体不是有效的 JSON", 401: "未登录、凭证无效或已过期",
    403: "非本部门任务、非工作人员、转办给外部门或撤回他人办理的任务", 404: "任务或人员不存在",
    409: "任务状态不允许该操作（已办结、他人已认领、下一环节已开始、需等待加签等）", 413: "请求内容过大",
    415: "不是 application/json", 422: "字段校验失败（fields 标注字段）", 503: "依赖服务暂不可用"})
_STR = {"type": "string"}


class NotACosignTask(Conflict):
    code, default_message = "not_a_cosign_task", "该任务不是加签任务，请使用办理操作"

_NSTR = {"type": "string", "nullable": True}



SIDE_TASK_SCHEMA = {**TASK_SCHEMA, "properties": {**TASK_SCHEMA["properties"], "kind": _STR, "state": _STR}}
CASE_RESULT_SCHEMA = _obj("case_id", "case_no", "status", "ready_tasks", case_id={"type": "integer"},
                          case_no=_STR, status=_STR,
                          ready_tasks={"type": "array", "items": _obj("id", "name", id=_STR, name=_STR,
                                                                      task_spec=_STR, lane=_NSTR)})
RETURN_BODY = _obj("reason", reason={**_STR, "maxLength": 500, "description": "退回或补正的理由（申请人可见补正理由）"},
                   to_step={**_STR, "description": "退回到的已办环节（任务详情 return_targets 的 step，如 intake_check）；"
                                                   "省略则要求申请人补正"},
                   items={"type": "array", "maxItems": 10, "items": {**_STR, "minLength": 1, "maxLength": 100},
                          "description": "要求申请人补正的事项，逐项列出（申请人逐项上传）；仅补正时可用"})
PHONE_SCHEMA = _obj("phone", "phone_masked", "case_no", phone=_STR, phone_masked=_STR, case_no=_STR)
SIGN_BODY = _obj("decision", "opinion", decision={**_STR, "enum": ["approve", "reject"]},
                 opinion={**_STR, "maxLength": 500, "description": "加签意见"})
TRANSFER_BODY = _obj("to", to={**_STR, "description": "接收人用户名（本部门）"}, reason={**_STR, "maxLength": 500})
SIGNER_BODY = _obj("user", "position", user=_STR, position={**_STR, "enum": list(task_ops.POSITIONS)},
                   opinion={**_STR, "maxLength": 500})


def _text(body: dict[str, Any], name: str, label: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise ValidationFailed(f"{label}填写有误", fields={name: f"{label}应为 1–500 字的文本"})
    return value.strip()


def _case(result: CaseResult) -> dict[str, Any]:
    return {"case_id": result.id, "case_no": result.case_no, "status": result.status,
            "ready_tasks": [{"id": str(t.id), "name": t.name, "task_spec": t.task_spec, "lane": t.lane}
                            for t in result.ready_tasks]}


_departments_of = desk.active_departments


async def _acting(request: Request, task_id: str, *, own_case: bool = True,
                  ) -> tuple[HumanTask, dict[str, str] | None]:
    """The open task the caller may operate on, and for whom (代理: the officer they stand in for).
    ``own_case``: also refuse (409 own_case_recusal) when the case names the caller's own person —
    退回, 补正, 加签 act on the decision; handing one's own case on with 转办 stays allowed."""
    engine = request.app.ctx.engine
    now = engine.deps.clock()
    return await desk.open_task_of(request.ctx.staff, task_id, now, engine=engine if own_case else None)


async def _view(request: Request, task_id: Any) -> HTTPResponse:
    task = await desk.task_with_case(task_id)
    return json(desk.task_view(task, request.app.ctx.engine.deps.departments))


def _supplement_case(task: HumanTask, side: HumanTask) -> dict[str, Any]:
    case = task.case
    return {"case_id": case.id, "case_no": case.case_no, "status": case.status,  # type: ignore[attr-defined]
            "ready_tasks": [{"id": str(side.id), "name": side.name, "task_spec": side.task_spec, "lane": side.lane}]}


def blueprint() -> Blueprint:
    """A fresh blueprint per app (handlers, and so their OpenAPI entries, are per app)."""
    bp = Blueprint("staff_ops", url_prefix="/staff")
    case_ok = openapi.response(200, json_content(CASE_RESULT_SCHEMA), "办件的最新状态和待办环节")

    @bp.post("/tasks/<task_id:str>/return")
    @openapi.summary("Return or request supplement / 退回、补正")
    @openapi.description(
        "带 to_step：把本部门的在办任务退回到本办件已办理的某个人工环节，该环节重新待办，退回理由写入时间线。"
        "不带 to_step：要求申请人补正（任何事项）：本任务挂起（state=waiting，不能办结，见待办 status=waiting），"
        "办件计时暂停，申请人在办件详情看到补正理由并用 POST /applications/{id}/supplement 提交；窗口件由窗口人员代为"
        "补正（办结该补正任务）。提交后任务回到本人名下（已认领），计时恢复。返回办件及当前等待的环节"
        "（补正时为申请人泳道的补正任务）。已在等待补正返回 409 waiting_for_applicant。")
    @openapi.body(json_content(RETURN_BODY), required=True)
    @case_ok
    @error_responses(400, 401, 403, 404, 409, 413, 415, 422, 503)
    @staff_required(TASK_ROLES)
    async def return_task(request: Request, task_id: str) -> HTTPResponse:
        body = json_body(request)
        reason = str(_text(body, "reason", "退回理由", required=True))
        to_step = body.get("to_step")
        if to_step is not None and (not isinstance(to_step, str) or not to_step.strip() or len(to_step) > 128):
            raise ValidationFailed("请选择退回到的环节", fields={"to_step": "应为任务详情 return_targets 中的 step"})
        items = body.get("items")
        if items is not None and (not isinstance(items, list) or len(items) > supplements.MAX_ITEMS or not all(
                isinstance(i, str) and 1 <= len(i.strip()) <= 100 for i in items)):
            raise ValidationFailed("补正事项填写有误", fields={"items": "应为 1–10 项、每项 1–100 字的文本"})
        if items is not None and to_step is not None:
            raise ValidationFailed("退回到已办环节时不能列补正事项", fields={"items": "仅要求申请人补正时填写"})
        task, behalf = await _acting(request, task_id)
        if to_step is None:
            side = await supplements.request_supplement(request.app.ctx.engine, task,
                                                        actor=request.ctx.staff.username, reason=reason,
                                                        items=items, on_behalf_of=behalf)
            return json(_supplement_case(await desk.task_with_case(task.id), side))
        result = await task_ops.return_to_step(request.app.ctx.engine, task.case_id,  # type: ignore[attr-defined]
                                               target_task_spec=to_step.strip(), actor=request.ctx.staff.username,
                                               department=task.department, reason=reason, on_behalf_of=behalf)
        return json(_case(result))

    @bp.post("/tasks/<task_id:str>/transfer")
    @openapi.summary("Transfer / 转办")
    @openapi.description("把待认领或本人认领的任务转给本部门另一位工作人员；转给外部门返回 403 transfer_other_department。")
    @openapi.body(json_content(TRANSFER_BODY), required=True)
    @openapi.response(200, json_content(TASK_SCHEMA), "任务的最新状态")
    @error_responses(400, 401, 403, 404, 409, 413, 415, 422, 503)
    @staff_required(TASK_ROLES)
    async def transfer_task(request: Request, task_id: str) -> HTTPResponse:
        body = json_body(request)
        to = _text(body, "to", "接收人", required=True)
        reason = _text(body, "reason", "转办理由", required=False)
        task, behalf = await _acting(request, task_id, own_case=False)
        await task_ops.transfer(request.app.ctx.engine, task.id, actor=request.ctx.staff.username,
                                to_username=str(to), staff_lookup=_departments_of, reason=reason,
                                on_behalf_of=behalf)
        return await _view(request, task.id)

    @bp.post("/tasks/<task_id:str>/add-signer")
    @openapi.summary("Add signer / 加签")
    @openapi.description("before：加签人签署意见前本任务不能办结（办理返回 409 waiting_for_added_signer）；"
                         "after：本任务办结后再请加签人签署。返回加签任务。")
    @openapi.body(json_content(SIGNER_BODY), required=True)
    @openapi.response(201, json_content(SIDE_TASK_SCHEMA), "已加签")
    @error_responses(400, 401, 403, 404, 409, 413, 415, 422, 503)
    @staff_required(TASK_ROLES)
    async def add_signer(request: Request, task_id: str) -> HTTPResponse:
        body = json_body(request)
        user = str(_text(body, "user", "加签人", required=True))
        position = body.get("position")
        if position not in task_ops.POSITIONS:
            raise ValidationFailed("加签位置有误", fields={"position": "应为 before 或 after"})
        opinion = _text(body, "opinion", "加签说明", required=False)
        task, behalf = await _acting(request, task_id)
        if await _departments_of(user) is None:
            raise NotFound("加签人不存在")
        side = await task_ops.add_signer(request.app.ctx.engine, task.id, actor=request.ctx.staff.username,
                                         user=user, position=str(position), opinion=opinion, on_behalf_of=behalf)
        response = await _view(request, side.id)
        response.status = 201
        return response

    @bp.post("/tasks/<task_id:str>/withdraw")
    @openapi.summary("Withdraw completion / 撤回已办")
    @openapi.description("撤回本人刚办结的任务（下一环节尚未开始办理时），任务回到本人名下；代理人代办结的任务，"
                         "代理人或被代理人均可撤回，任务回到被代理人名下。"
                         "下一环节已开始返回 409 next_step_started，他人办理的返回 403 not_your_task。")
    @case_ok
    @error_responses(401, 403, 404, 409, 503)
    @staff_required(TASK_ROLES)
    async def withdraw(request: Request, task_id: str) -> HTTPResponse:
        task = await desk.visible_task(request.ctx.staff, task_id)
        result = await task_ops.withdraw_completion(request.app.ctx.engine, task.id,
                                                    actor=request.ctx.staff.username)
        return json(_case(result))

    @bp.post("/tasks/<task_id:str>/sign")
    @openapi.summary("Sign / 加签意见")
    @openapi.description("加签人对加签任务签署意见（approve 同意 / reject 不同意），写入办件时间线；只有加签人本人可签署"
                         "（其他人返回 403 not_your_task）。前加签签署后主任务才能办结；后加签在主任务办结后才能签署"
                         "（之前返回 409 task_not_ready）。")
    @openapi.body(json_content(SIGN_BODY), required=True)
    @openapi.response(200, json_content(SIDE_TASK_SCHEMA), "已签署的加签任务")
    @error_responses(400, 401, 403, 404, 409, 413, 415, 422, 503)
    @staff_required(TASK_ROLES)
    async def sign(request: Request, task_id: str) -> HTTPResponse:
        body = json_body(request)
        decision = body.get("decision")
        if decision not in ("approve", "reject"):
            raise ValidationFailed("请选择同意或不同意", fields={"decision": "应为 approve 或 reject"})
        opinion = str(_text(body, "opinion", "加签意见", required=True))
        staff = request.ctx.staff
        task, behalf = await desk.acting_on(staff, task_id, request.app.ctx.engine.deps.clock())
        if task.kind != "cosign":
            raise NotACosignTask()
        if task.assignee != staff.username and behalf is None:
            raise task_ops.NotYourTask("只有加签人本人（或其代理人）可以签署加签意见")
        await task_ops.complete_cosign(request.app.ctx.engine, task.id, actor=staff.username, opinion=opinion,
                                       approve=decision == "approve", on_behalf_of=behalf)
        return await _view(request, task.id)

    @bp.post("/tasks/<task_id:str>/reveal-phone")
    @openapi.summary("Reveal phone / 查看评价人电话")
    @openapi.description("差评整改任务：查看原办件申请人（评价人）的完整联系电话用于回访。每次查看记入个人信息访问记录"
                         "（申请人在“我的信息被谁查看”中可见）和审计链。非整改任务或原办件无电话返回 409。")
    @openapi.response(200, json_content(PHONE_SCHEMA), "完整电话")
    @error_responses(401, 403, 404, 409, 503)
    @staff_required(TASK_ROLES)
    async def reveal_phone(request: Request, task_id: str) -> HTTPResponse:
        task = await desk.visible_task(request.ctx.staff, task_id)
        return json(await rectification.reveal_phone(request.app.ctx.engine, request.ctx.staff, task),
                    headers={"Cache-Control": "no-store"})

    return bp


__all__ = ["CASE_RESULT_SCHEMA", "blueprint"]
