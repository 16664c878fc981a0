"""BPMN messages from external systems to waiting cases (``engine.kernel.messages``):

    POST /messages {name, correlation, payload, id?}   deliver to the cases waiting for it, or keep it

The caller is a system, not a person: it sends its key (``GOVFLOW_SYSTEM_KEYS``) in ``X-System-Key``.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json
from sanic_ext.extensions.openapi import openapi

from engine.kernel import check_message
from mobile_api.auth import RATE_LIMITS, RateRule, rate_limit
from mobile_api.openapi_docs import error_documenter, json_content
from mobile_api.openapi_docs import object_schema as _obj
from mobile_api.request import json_body

SYSTEM_HEADER = "X-System-Key"
SEND_RULE = "message_send_per_system"
RATE_LIMITS.setdefault(SEND_RULE, RateRule(600, 60, "a runaway external system flooding cases with messages"))
error_responses = error_documenter({
    400: "请求体不是有效的 JSON", 401: "外部系统凭证无效（system_key_invalid）", 413: "请求内容过大",
    415: "不是 application/json", 422: "字段校验失败（fields 标注字段）", 429: "发送过于频繁", 503: "依赖服务暂不可用"})
_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
SEND_BODY = _obj("name", name={**_STR, "maxLength": 200, "example": "seal_engraved"},
                 correlation={"type": "object", "additionalProperties": True, "example": {"uscc": "91310115MA1K4XXXXX"},
                              "description": "关联属性 → 值：与等待方流程设置的关联值完全一致时才投递"},
                 payload={"type": "object", "additionalProperties": True, "description": "消息内容，写入接收方流程数据"},
                 id={**_STR, "maxLength": 128, "description": "消息 ID（幂等键）：同一 ID 重复发送只投递一次"})
DELIVERY = _obj("message_id", "delivered", "kept", "duplicate", message_id=_STR,
                delivered={**_INT, "description": "已投递的等待中办件数"},
                kept={**_BOOL, "description": "暂无办件等待：消息保留，等待方开始等待时投递（过期则丢弃）"},
                duplicate={**_BOOL, "description": "同一消息 ID 已发送过：本次未再投递，返回首次的结果"})


def blueprint() -> Blueprint:
    bp = Blueprint("bpmn_messages")

    @bp.post("/messages")
    @openapi.summary("Send a BPMN message to waiting cases / 向等待中的办件发送消息")
    @openapi.description(
        "外部系统（如公安印章系统）向流程发送 BPMN 消息：按消息名称和关联值（correlation）找到正在等待的办件，"
        "在各办件自己的事务中接收并继续办理（记入审计和办件时间线）。暂无办件等待时消息被保留"
        "（GOVFLOW_MESSAGE_KEEP_DAYS，默认 7 天），办件开始等待时由后台任务投递，过期丢弃。同一消息 ID 只投递一次。"
        "调用方在请求头 X-System-Key 中携带系统密钥（GOVFLOW_SYSTEM_KEYS 配置）。")
    @openapi.body(json_content(SEND_BODY), required=True)
    @openapi.parameter(SYSTEM_HEADER, str, "header", required=True, description="外部系统密钥")
    @openapi.response(202, json_content(DELIVERY), "已受理：投递结果")
    @error_responses(400, 401, 413, 415, 422, 429)
    async def send_message(request: Request) -> HTTPResponse:
        actor = request.app.ctx.system_keys.authenticate(request.headers.get(SYSTEM_HEADER))
        await rate_limit(request, SEND_RULE, actor)
        body = json_body(request)
        name, correlation, payload, message_id = check_message(
            body.get("name"), body.get("correlation"), body.get("payload"), body.get("id"))
        delivery = await request.app.ctx.engine.messages.send(name, correlation, payload, source=actor,
                                                              message_id=message_id)
        return json(delivery.as_dict(), status=202)

    return bp


__all__ = ["blueprint"]
