"""Absence delegation (代理) for staff (``engine.workbench.delegation``):

    GET  /staff/delegations                   → {given: [...], received: [...]}: mine, as officer and as delegate
    POST /staff/delegations {delegate, from, to, officer?, reason?}  → 201 the delegation
    POST /staff/delegations/{id}/cancel       → the delegation, cancelled

During ``[from, to)`` the delegate's inbox lists the officer's tasks (代 张三) and every task operation
works on them; the timeline and the audit record name both. Rules live in the engine module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json
from sanic_ext.extensions.openapi import openapi

from engine.errors import ValidationFailed
from engine.kernel import CST
from engine.workbench import delegation
from mobile_api.api.staff import TASK_ROLES
from mobile_api.openapi_docs import error_documenter, json_content
from mobile_api.openapi_docs import object_schema as _obj
from mobile_api.request import json_body
from mobile_api.staff_auth import staff_required

error_responses = error_documenter({
    400: "请求体不是有效的 JSON", 401: "未登录、凭证无效或已过期",
    403: "代理人不在被代理人的部门（delegate_other_department），或为他人设置代理而非其部门负责人（delegation_not_yours）",
    404: "工作人员或代理安排不存在", 409: "期间与已有代理重叠（delegation_overlaps），或代理已结束", 413: "请求内容过大",
    415: "不是 application/json", 422: "字段校验失败（fields 标注字段）", 503: "依赖服务暂不可用"})
_STR, _NSTR = {"type": "string"}, {"type": "string", "nullable": True}
_TIME = {"type": "string", "format": "date-time"}
DELEGATION_SCHEMA = _obj(
    "id", "officer", "delegate", "from", "to", "state", id={"type": "integer"}, officer=_STR, officer_name=_STR,
    delegate=_STR, delegate_name=_STR, **{"from": _TIME, "to": _TIME}, reason=_NSTR,
    state={**_STR, "enum": ["scheduled", "active", "ended", "cancelled"]}, state_label=_STR, created_by=_STR,
    cancelled_at={**_TIME, "nullable": True})
LIST_SCHEMA = _obj("given", "received", given={"type": "array", "items": DELEGATION_SCHEMA,
                                               "description": "本人（被代理人）设置的代理"},
                   received={"type": "array", "items": DELEGATION_SCHEMA, "description": "本人担任代理人的代理"})
SET_BODY = _obj("delegate", "from", "to", delegate={**_STR, "description": "代理人用户名（须与被代理人同部门）"},
                **{"from": {**_TIME, "description": "开始时间（含）；不带时区按北京时间"},
                   "to": {**_TIME, "description": "结束时间（不含），到时自动结束；最长 90 天"}},
                officer={**_STR, "description": "被代理人用户名，缺省为本人；科室负责人、管理员可为本部门人员设置"},
                reason={**_STR, "maxLength": 200, "description": "事由，如 休假、出差"})


def _when(body: dict[str, Any], name: str, label: str) -> datetime:
    value = body.get(name)
    try:
        when = datetime.fromisoformat(str(value)) if isinstance(value, str) and len(value) <= 40 else None
    except ValueError:
        when = None
    if when is None:
        raise ValidationFailed(f"{label}填写有误", fields={name: "应为日期时间，如 2026-12-07T09:00"})
    return when if when.tzinfo else when.replace(tzinfo=CST)


def blueprint() -> Blueprint:
    bp = Blueprint("staff_delegation", url_prefix="/staff/delegations")

    @bp.get("")
    @openapi.summary("My delegations / 我的代理")
    @openapi.description("本人设置的代理（given）和本人担任代理人的代理（received），新的在前；结束超过 30 天的不列出。")
    @openapi.response(200, json_content(LIST_SCHEMA), "代理列表")
    @error_responses(401, 403, 503)
    @staff_required(TASK_ROLES)
    async def mine(request: Request) -> HTTPResponse:
        return json(await delegation.delegations_of(request.ctx.staff, request.app.ctx.engine.deps.clock()))

    @bp.post("")
    @openapi.summary("Set a delegation / 设置代理")
    @openapi.description("外出、休假期间指定同部门的代理人：[from, to) 期间代理人的待办中出现被代理人名下的任务（标“代 张三”），"
                         "可认领、办理、退回、转办、加签、签署，时间线和审计记录同时记载代理人和被代理人（代 X）；"
                         "到期自动结束。会签不同签署人、回避按代理人本人核对。设置和取消均记入审计链。")
    @openapi.body(json_content(SET_BODY), required=True)
    @openapi.response(201, json_content(DELEGATION_SCHEMA), "已设置")
    @error_responses(400, 401, 403, 404, 409, 413, 415, 422, 503)
    @staff_required(TASK_ROLES)
    async def set_one(request: Request) -> HTTPResponse:
        body = json_body(request)
        delegate, officer, reason = body.get("delegate"), body.get("officer"), body.get("reason")
        if not isinstance(delegate, str) or not delegate.strip() or len(delegate) > 64:
            raise ValidationFailed("请选择代理人", fields={"delegate": "应为工作人员用户名"})
        if officer is not None and (not isinstance(officer, str) or len(officer) > 64):
            raise ValidationFailed("被代理人填写有误", fields={"officer": "应为工作人员用户名"})
        if reason is not None and (not isinstance(reason, str) or len(reason) > 200):
            raise ValidationFailed("事由填写有误", fields={"reason": "应为至多 200 字的文本"})
        starts_at, ends_at = _when(body, "from", "开始时间"), _when(body, "to", "结束时间")
        result = await delegation.set_delegation(
            request.ctx.staff, delegate=delegate.strip(), starts_at=starts_at, ends_at=ends_at,
            officer=officer or None, reason=(reason or "").strip() or None, now=request.app.ctx.engine.deps.clock())
        return json(result, status=201)

    @bp.post("/<delegation_id:int>/cancel")
    @openapi.summary("Cancel a delegation / 取消代理")
    @openapi.description("立即结束（或撤销尚未开始的）代理；被代理人本人或其部门负责人、管理员可取消。已结束返回 409。")
    @openapi.response(200, json_content(DELEGATION_SCHEMA), "已取消")
    @error_responses(401, 403, 404, 409, 503)
    @staff_required(TASK_ROLES)
    async def cancel(request: Request, delegation_id: int) -> HTTPResponse:
        return json(await delegation.cancel_delegation(request.ctx.staff, delegation_id,
                                                       now=request.app.ctx.engine.deps.clock()))

    return bp


__all__ = ["DELEGATION_SCHEMA", "blueprint"]
