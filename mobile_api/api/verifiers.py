"""Registered verifiers (用证方) for admins, wrapping ``engine.certificates.verifiers``:

    GET  /admin/verifiers                                  the registered institutions (no keys)
    POST /admin/verifiers {name, purpose, quota_per_hour?}  register one → its API key, shown once
    POST /admin/verifiers/{id}/disable                     stop its key working

A verifier sends its key in ``X-Verifier-Key`` to ``POST /certificates/verify``.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json
from sanic_ext.extensions.openapi import openapi

from engine.certificates import verifiers
from mobile_api.openapi_docs import error_documenter, json_content
from mobile_api.openapi_docs import object_schema as _obj
from mobile_api.request import json_body
from mobile_api.staff_auth import staff_required

ADMIN_ROLES = ["admin"]
error_responses = error_documenter({
    400: "请求体不是有效的 JSON", 401: "未登录、凭证无效或已过期", 403: "仅管理员可管理用证方", 404: "用证方不存在",
    413: "请求内容过大", 415: "不是 application/json", 422: "字段校验失败（fields 标注字段）", 503: "依赖服务暂不可用"})
_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
VERIFIER = _obj("id", "name", "purpose", "quota_per_hour", "active", id=_INT, name=_STR, purpose=_STR,
                quota_per_hour=_INT, active=_BOOL, key_prefix={**_STR, "description": "密钥前缀（不含密钥）"},
                created_by={**_STR, "nullable": True}, created_at=_STR)
REGISTERED = {**VERIFIER, "required": [*VERIFIER["required"], "api_key"], "properties": {
    **VERIFIER["properties"], "api_key": {**_STR, "description": "API 密钥：只在此时显示一次，平台只保存其哈希"}}}
REGISTER_BODY = _obj("name", "purpose", name={**_STR, "maxLength": 200, "example": "上海市第一人民医院"},
                     purpose={**_STR, "maxLength": 200, "example": "老年人就诊优待身份核验"},
                     quota_per_hour={**_INT, "minimum": 1, "default": verifiers.DEFAULT_QUOTA})


def blueprint() -> Blueprint:
    bp = Blueprint("verifiers", url_prefix="/admin/verifiers")

    @bp.get("")
    @openapi.summary("Registered verifiers / 用证方列表")
    @openapi.description("管理员登记的用证方机构（名称、用证目的、每小时额度、是否启用）；不含密钥。")
    @openapi.response(200, json_content(_obj("items", items={"type": "array", "items": VERIFIER})), "用证方")
    @error_responses(401, 403)
    @staff_required(ADMIN_ROLES)
    async def list_verifiers(request: Request) -> HTTPResponse:
        return json({"items": [verifiers.view(r) for r in await verifiers.all_verifiers()]})

    @bp.post("")
    @openapi.summary("Register a verifier / 登记用证方")
    @openapi.description("登记用证方机构并发放 API 密钥（只显示一次，平台只保存哈希）。用证方核验时在请求头 "
                         "X-Verifier-Key 携带密钥：按本机构额度计数，持证人的访问日志显示机构名称与用证目的。记入审计。")
    @openapi.body(json_content(REGISTER_BODY), required=True)
    @openapi.response(201, json_content(REGISTERED), "已登记（含密钥）")
    @error_responses(400, 401, 403, 413, 415, 422)
    @staff_required(ADMIN_ROLES)
    async def register_verifier(request: Request) -> HTTPResponse:
        body = json_body(request)
        row, key = await verifiers.register(body.get("name"), body.get("purpose"), body.get("quota_per_hour"),
                                            created_by=request.ctx.staff.username)
        return json({**verifiers.view(row), "api_key": key}, status=201)

    @bp.post("/<verifier_id:int>/disable")
    @openapi.summary("Disable a verifier / 停用用证方")
    @openapi.description("停用用证方：其密钥随即失效（401 verifier_key_invalid）。记入审计。")
    @openapi.response(200, json_content(VERIFIER), "已停用")
    @error_responses(401, 403, 404)
    @staff_required(ADMIN_ROLES)
    async def disable_verifier(request: Request, verifier_id: int) -> HTTPResponse:
        return json(verifiers.view(await verifiers.disable(verifier_id, actor=request.ctx.staff.username)))

    return bp


__all__ = ["blueprint"]
