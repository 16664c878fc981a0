"""Messages (engine.platform.notify): the in-app message centre, WeChat subscribe-message consents,
催办 and the 抄送 picker.

    GET  /me/messages                      the citizen's messages, newest first, and the unread count
    POST /me/messages/{id}/read            mark one read
    GET  /me/subscriptions                 subscribe-message templates and whether one may be sent now
    POST /me/subscriptions {accept, reject}  what wx.requestSubscribeMessage returned (template ids)
    POST /applications/{id}/urge {reason?}   催办 by the applicant (once a working day per case)
    GET  /staff/messages · POST /staff/messages/{id}/read   the console bell
    POST /staff/tasks/{id}/urge {reason?}   催办 by a supervisor (once a working day per case)
    GET  /staff/colleagues                  who a completed step may be copied to (抄送)
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json
from sanic_ext.extensions.openapi import openapi

from engine.citizen import case_views as views
from engine.errors import NotFound, ValidationFailed
from engine.kernel import utcnow
from engine.platform import NotificationCatalog, notify
from engine.workbench import staff as desk
from mobile_api.api.services import citizen_of
from mobile_api.auth import citizen_required
from mobile_api.openapi_docs import error_documenter, json_content
from mobile_api.openapi_docs import object_schema as _obj
from mobile_api.request import int_arg, json_body
from mobile_api.staff_auth import staff_required

error_responses = error_documenter({
    400: "请求体不是有效的 JSON", 401: "未登录、凭证无效或已过期", 403: "无权操作（非本人、非督办人员）",
    404: "消息、办件或任务不存在", 409: "办件已办结，无需催办", 413: "请求内容过大", 415: "不是 application/json",
    422: "字段校验失败（fields 标注字段）", 429: "今天已催办过该办件（见 Retry-After）", 503: "依赖服务暂不可用"})
_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_NSTR, _NINT = {"type": "string", "nullable": True}, {"type": "integer", "nullable": True}
MESSAGE_SCHEMA = _obj("id", "kind", "title", "body", "case_id", "created_at", "read", id=_INT, kind={
    **_STR, "description": "事件：application_received、supplement_requested、decision_made、certificate_issued、"
                           "case_finished、case_refused；工作人员：task_assigned、sla_warning、sla_escalated、urged、cc"},
    title=_STR, body=_STR, case_id=_NINT, case_no=_NSTR, sender=_NSTR,
    task_id={**_NSTR, "description": "工作人员消息：相关任务（控制台深链接 #/tasks/<id>）"}, created_at={**_STR, "format": "date-time"},
    read=_BOOL)
MESSAGES_SCHEMA = _obj("items", "unread", items={"type": "array", "items": MESSAGE_SCHEMA}, unread=_INT)
SUBSCRIPTIONS_SCHEMA = _obj("items", items={"type": "array", "items": _obj(
    "event", "template_id", "title", "accepted", event=_STR, template_id=_STR, title=_STR,
    accepted={**_BOOL, "description": "现在可以发送一条该模板的订阅消息（一次订阅一条）"})})
SUBSCRIBE_BODY = _obj(accept={"type": "array", "items": _STR, "maxItems": 20, "description": "用户同意的模板 ID"},
                      reject={"type": "array", "items": _STR, "maxItems": 20, "description": "用户拒绝的模板 ID"})
URGE_BODY = _obj(reason={**_STR, "maxLength": 200, "description": "催办说明（可省略）"})
URGED_SCHEMA = _obj("case_id", "urged_at", case_id=_INT, urged_at={**_STR, "format": "date-time"})
COLLEAGUES_SCHEMA = _obj("items", items={"type": "array", "items": _obj(
    "username", "name", "departments", username=_STR, name=_STR, departments={"type": "array", "items": _STR})})
SUPERVISOR_ROLES = ["supervisor", "admin"]


def _catalog(request: Request) -> NotificationCatalog:
    outbox = request.app.ctx.engine.deps.notifications
    if outbox is not None:
        return outbox.catalog
    return NotificationCatalog.load(request.app.ctx.settings.PROCESSES_DIR / "notifications.yaml")


def _reason(request: Request) -> str | None:
    body = json_body(request) if request.body else {}
    value = body.get("reason")
    if value is None:
        return None
    if not isinstance(value, str) or len(value.strip()) > 200:
        raise ValidationFailed("催办说明填写有误", fields={"reason": "应为至多 200 字的文本"})
    return value.strip() or None


def blueprint() -> Blueprint:
    bp = Blueprint("messages")
    messages_ok = openapi.response(200, json_content(MESSAGES_SCHEMA), "消息列表（新的在前）与未读数")
    message_ok = openapi.response(200, json_content(MESSAGE_SCHEMA), "已读的消息")

    @bp.get("/me/messages")
    @openapi.summary("My messages / 我的消息")
    @openapi.description("办件进度消息（受理、补正、审批结果、证照签发、办结），新的在前；unread 为未读总数。"
                         "参数 limit（1–100，默认 50）、unread=1 只看未读。")
    @messages_ok
    @error_responses(401, 403, 422, 503)
    @citizen_required
    async def my_messages(request: Request) -> HTTPResponse:
        citizen = await citizen_of(request.ctx.principal)
        return json(await notify.list_messages("citizen", citizen.openid, limit=int_arg(request, "limit", 50, 100),
                                               unread_only=request.args.get("unread") == "1"))

    @bp.post("/me/messages/<message_id:int>/read")
    @openapi.summary("Mark read / 标记已读")
    @message_ok
    @error_responses(401, 403, 404, 503)
    @citizen_required
    async def read_mine(request: Request, message_id: int) -> HTTPResponse:
        citizen = await citizen_of(request.ctx.principal)
        return json(await notify.mark_read("citizen", citizen.openid, message_id, utcnow()))

    @bp.get("/me/subscriptions")
    @openapi.summary("Subscribe messages / 订阅消息")
    @openapi.description("可订阅的微信订阅消息模板；accepted 为 true 时可以发送一条（一次性订阅：同意一次发一条）。")
    @openapi.response(200, json_content(SUBSCRIPTIONS_SCHEMA), "模板与订阅状态")
    @error_responses(401, 403, 503)
    @citizen_required
    async def my_subscriptions(request: Request) -> HTTPResponse:
        citizen = await citizen_of(request.ctx.principal)
        return json(await notify.subscriptions_of(citizen.openid, _catalog(request)))

    @bp.post("/me/subscriptions")
    @openapi.summary("Answer subscribe request / 记录订阅结果")
    @openapi.description("小程序把 wx.requestSubscribeMessage 的结果按模板 ID 传来：accept 每个同意可发一条，"
                         "reject 清除剩余次数。H5 页面提供同样的选择。")
    @openapi.body(json_content(SUBSCRIBE_BODY), required=True)
    @openapi.response(200, json_content(SUBSCRIPTIONS_SCHEMA), "记录后的订阅状态")
    @error_responses(400, 401, 403, 413, 415, 422, 503)
    @citizen_required
    async def answer(request: Request) -> HTTPResponse:
        citizen = await citizen_of(request.ctx.principal)
        return json(await notify.answer_subscriptions(citizen.openid, _catalog(request), json_body(request), utcnow()))

    @bp.post("/applications/<case_id:int>/urge")
    @openapi.summary("Urge / 催办")
    @openapi.description("申请人催办自己的办件：经办人员收到催办消息。每个办件每个工作日一次，"
                         "再次催办返回 429 urge_too_soon（Retry-After 为到下一个工作日的秒数）。请求体可省略。")
    @openapi.body(json_content(URGE_BODY))
    @openapi.response(200, json_content(URGED_SCHEMA), "已催办")
    @error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
    @citizen_required
    async def citizen_urge(request: Request, case_id: int) -> HTTPResponse:
        citizen = await citizen_of(request.ctx.principal)
        case = await views.citizen_case(citizen.id, case_id)
        if case is None:
            raise NotFound("办件不存在")
        reason = _reason(request)
        event = await notify.urge(request.app.ctx.engine, case.id, by="citizen", actor=f"citizen:{citizen.id}",
                                  sender_name="申请人", reason=reason or "申请人催办，请尽快办理")
        return json({"case_id": case.id, "urged_at": event.created_at.isoformat()})

    @bp.get("/staff/messages")
    @openapi.summary("Staff messages / 工作人员消息（铃铛）")
    @openapi.description("新待办、即将超期、超期督办、催办、抄送消息，新的在前；unread 为未读总数。")
    @messages_ok
    @error_responses(401, 403, 422, 503)
    @staff_required()
    async def staff_messages(request: Request) -> HTTPResponse:
        return json(await notify.list_messages("staff", request.ctx.staff.username,
                                               limit=int_arg(request, "limit", 50, 100),
                                               unread_only=request.args.get("unread") == "1"))

    @bp.post("/staff/messages/<message_id:int>/read")
    @openapi.summary("Mark read / 标记已读")
    @openapi.description("抄送消息标记已读时，办件时间线记一条“抄送已阅”（已读回执）。")
    @message_ok
    @error_responses(401, 403, 404, 503)
    @staff_required()
    async def staff_read(request: Request, message_id: int) -> HTTPResponse:
        return json(await notify.mark_read("staff", request.ctx.staff.username, message_id, utcnow()))

    @bp.post("/staff/tasks/<task_id:str>/urge")
    @openapi.summary("Urge / 督办催办")
    @openapi.description("督办人员催办任务所在的办件：当前经办人（未认领时为该部门人员）收到催办消息。"
                         "每个办件每个工作日一次（429 urge_too_soon）。请求体可省略。")
    @openapi.body(json_content(URGE_BODY))
    @openapi.response(200, json_content(URGED_SCHEMA), "已催办")
    @error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
    @staff_required(SUPERVISOR_ROLES)
    async def staff_urge(request: Request, task_id: str) -> HTTPResponse:
        staff = request.ctx.staff
        task = await desk.visible_task(staff, task_id)
        reason = _reason(request)
        event = await notify.urge(request.app.ctx.engine, task.case_id, by="supervisor", actor=staff.username,
                                  sender_name=staff.name, reason=reason)
        return json({"case_id": task.case_id, "urged_at": event.created_at.isoformat()})

    @bp.get("/staff/colleagues")
    @openapi.summary("Colleagues / 同部门人员")
    @openapi.description("与当前工作人员同部门的在岗人员，供“抄送”选择。")
    @openapi.response(200, json_content(COLLEAGUES_SCHEMA), "同部门人员")
    @error_responses(401, 403, 503)
    @staff_required()
    async def colleagues(request: Request) -> HTTPResponse:
        return json({"items": await desk.colleagues(request.ctx.staff)})

    return bp


__all__ = ["MESSAGES_SCHEMA", "MESSAGE_SCHEMA", "blueprint"]
