"""The citizen's personal-data access log (个人信息查询记录), for a citizen's token:

    GET /me/access-log?page=&size=   → who (department, masked actor) read my data, for which
                                        case and purpose, and when; newest first

Rows are ``DataAccessLog`` entries whose subject is the caller's own ID number (matched by its
keyed hash, the same blind index the real-name binding stored), so a citizen sees only reads of
their own data; an account without a real name has none. Actors are shown masked: the caller
is 本人, staff by a masked account name under their department, anonymous verifiers as such.
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json
from sanic_ext.extensions.openapi import openapi

from engine.accountability.privacy import mask_middle
from engine.store.identity_models import Citizen
from engine.store.shared_models import DataAccessLog
from mobile_api.auth import TokenInvalid, citizen_required
from mobile_api.openapi_docs import error_documenter, json_content
from mobile_api.request import int_arg

DATASET_LABELS = {
    "citizen": "实名身份信息", "population": "人口库信息", "birth_records": "出生医学证明信息",
    "credit_blacklist": "失信名单核查", "certificate": "电子证照", "case": "办件申请信息",
    "window_intake": "窗口受理身份信息和材料",
}
FIELD_LABELS = {
    "name": "姓名", "id_number": "身份证号", "phone": "联系电话", "materials": "申请材料", "applicant": "申请人信息",
    "form": "申请表", "birth_date": "出生日期", "household_region": "户籍地", "state": "证照状态",
}
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


def actor_label(actor: str | None, citizen_id: int) -> str:
    """Who read the data, as the citizen sees it: never a full account name or another person."""
    if not actor or actor == "system":
        return "系统"
    if actor == f"citizen:{citizen_id}":
        return "本人"
    if actor.startswith("citizen:"):
        return "其他用户（扫码核验）"
    if actor.startswith("ip:"):
        return "匿名核验"
    return mask_middle(actor, 2, 1)


def entry_view(row: DataAccessLog, citizen_id: int, departments: dict[str, str]) -> dict[str, Any]:
    return {
        "id": row.id, "at": row.created_at.isoformat(), "department": row.department,
        "department_name": departments.get(row.department or "", row.department) if row.department else None,
        "actor": actor_label(row.actor, citizen_id), "case_no": row.case_no, "purpose": row.purpose,
        "dataset": row.dataset, "dataset_label": DATASET_LABELS.get(row.dataset, row.dataset),
        "fields": [FIELD_LABELS.get(str(f), str(f)) for f in row.fields_read or []],
    }


async def access_log(citizen: Citizen, *, page: int, size: int, departments: dict[str, str]) -> dict[str, Any]:
    """The reads of ``citizen``'s own data, newest first (none without a bound real name)."""
    if not citizen.id_hash:
        return {"items": [], "page": page, "size": size, "total": 0}
    query = DataAccessLog.filter(subject_hash=citizen.id_hash)
    total = await query.count()
    rows = await query.order_by("-created_at", "-id").offset((page - 1) * size).limit(size)
    return {"items": [entry_view(r, citizen.id, departments) for r in rows], "page": page, "size": size,
            "total": total}


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
        citizen = await Citizen.get_or_none(id=request.ctx.principal.citizen_id)
        if citizen is None:  # a token for an account that no longer exists
            raise TokenInvalid()
        return json(await access_log(citizen, page=page, size=size, departments=request.app.ctx.departments))

    return bp


__all__ = ["ACCESS_LOG_SCHEMA", "access_log", "actor_label", "blueprint"]
