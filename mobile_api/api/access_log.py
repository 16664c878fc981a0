"""The citizen's personal-data access log (个人信息查询记录), for a citizen's token:

    GET /me/access-log?page=&size=   → who (department, masked actor) read my data, for which
                                        case and purpose, and when; newest first

The rows and their masking are ``engine.accountability.access_log``'s.
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json
from sanic_ext.extensions.openapi import openapi

from engine.accountability import citizen_access_log
from mobile_api.auth import TokenInvalid, citizen_required
from mobile_api.openapi_docs import error_documenter, json_content
from mobile_api.request import int_arg

_STR, _INT = {"type": "string"}, {"type": "integer"}
_NULL_STR = {"type": "string", "nullable": True}
ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["id", "at", "department", "department_name", "actor", "case_no", "purpose",
                                   "dataset", "dataset_label", "fields"],
    "properties": {
        "id": _INT, "at": {"type": "string", "format": "date-time"},
        "department": {**_NULL_STR, "description": "读取数据的部门代码"},
        "department_name": {**_NULL_STR, "example": "民政局"},
        "actor": {**_STR, "description": "读取人（脱敏）：本人、工作人员账号（脱敏）、系统、匿名核验", "example": "mc***1"},
        "case_no": {**_NULL_STR, "example": "SENIOR-CARD-20261129-7KQ2M9XA"},
        "purpose": {**_STR, "example": "核验老年人优待证申请人的年龄和户籍"},
        "dataset": _STR, "dataset_label": {**_STR, "example": "人口库信息"},
        "fields": {"type": "array", "items": _STR, "description": "读取的字段（中文）"},
    },
}
ACCESS_LOG_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["items", "page", "size", "total"],
    "properties": {"items": {"type": "array", "items": ENTRY_SCHEMA}, "page": _INT, "size": _INT, "total": _INT},
}
error_responses = error_documenter({
    401: "未登录、凭证无效、过期或已退出", 403: "不是群众账号的凭证", 422: "分页参数无效（fields 标注字段）",
    503: "依赖服务不可用"})


def blueprint() -> Blueprint:
    """A fresh blueprint per app (handlers, and so their OpenAPI entries, are per app)."""
    bp = Blueprint("access_log")

    @bp.get("/me/access-log")
    @openapi.summary("My data access log / 我的个人信息查询记录")
    @openapi.description("哪个部门、哪位工作人员（脱敏）、为哪个办件、出于什么目的、在什么时间读取了我的个人信息"
                         "（实名信息解密、共享数据查询、窗口受理、办件审查、电子证照使用和扫码核验），按时间倒序。"
                         "只返回本人数据的记录；未实名的账号没有记录。")
    @openapi.parameter("page", int, "query", description="页码，从 1 开始")
    @openapi.parameter("size", int, "query", description="每页条数，1–100，默认 20")
    @openapi.response(200, json_content(ACCESS_LOG_SCHEMA), "查询记录")
    @error_responses(401, 403, 422, 503)
    @citizen_required
    async def my_access_log(request: Request) -> HTTPResponse:
        page, size = int_arg(request, "page", 1, 100_000), int_arg(request, "size", 20, 100)
        log = await citizen_access_log(request.ctx.principal.citizen_id, page=page, size=size,
                                       departments=request.app.ctx.departments)
        if log is None:  # a token for an account that no longer exists
            raise TokenInvalid()
        return json(log)

    return bp


__all__ = ["ACCESS_LOG_SCHEMA", "blueprint"]
