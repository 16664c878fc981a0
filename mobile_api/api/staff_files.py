"""Application files and form for the back office, for staff tokens:

    GET  /staff/files/{id}                → one material file (case's departments only; every open logged)
    POST /staff/tasks/{id}/reveal {field} → the full value of one masked form field (logged)
    GET  /staff/cases?q=                  → a clerk's case search by case number or ID number
    GET  /staff/cases/{id}/receipt        → the 受理回执: case number, items received, promised date, QR

Rules live in ``engine.workbench.files`` (departments, masks, access log) and
``engine.workbench.cases`` (search, receipt).
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json
from sanic_ext.extensions.openapi import openapi

from engine.platform import store_from_settings
from engine.workbench import open_case_file, receipt, reveal_field, search_cases
from mobile_api.api.services import NULLABLE_STRING, error_responses, json_content
from mobile_api.api.uploads import file_response
from mobile_api.auth import auth_state
from mobile_api.openapi_docs import object_schema as _obj
from mobile_api.request import json_body
from mobile_api.staff_auth import staff_required

TASK_ROLES = ("clerk", "officer", "supervisor", "admin")
SEARCH_ROLES = ("clerk", "officer", "supervisor", "admin")
_STR, _INT = {"type": "string"}, {"type": "integer"}
_TIME = {"type": "string", "format": "date-time"}
_FILE_CONTENT = {media: {"schema": {**_STR, "format": "binary"}}
                 for media in ("application/pdf", "image/jpeg", "image/png")}
REVEAL_BODY = _obj("field", field={**_STR, "description": "申请表字段路径，如 legal_representative.id_number"})
REVEAL_SCHEMA = _obj("field", "value", field=_STR, value=_STR)
CASE_ROW = _obj("id", "case_no", "service", "status", id=_INT, case_no=_STR, service=_STR, service_name=_STR,
                status=_STR, status_label=_STR, channel=_STR, applicant_id=NULLABLE_STRING, created_at=_TIME,
                due_at={**_TIME, "nullable": True}, task_id=NULLABLE_STRING)
SEARCH_SCHEMA = _obj("items", items={"type": "array", "items": CASE_ROW})
RECEIPT_SCHEMA = _obj(
    "case_no", "service_name", "received_at", "materials", "track_url", "qr_svg",
    case_no=_STR, service_name=_STR, applicant_name=NULLABLE_STRING, applicant_id=NULLABLE_STRING,
    department_name=NULLABLE_STRING, received_at=_TIME, promised_date=NULLABLE_STRING,
    promised_days={**_INT, "nullable": True}, clerk=NULLABLE_STRING,
    materials={"type": "array", "items": _obj("name", "how", name=_STR, how=_STR, files=_INT)},
    track_url={**_STR, "description": "扫码查询办件进度的地址"}, qr_svg={**_STR, "description": "track_url 的二维码（SVG）"})


def blueprint() -> Blueprint:
    """A fresh blueprint per app (handlers, and so their OpenAPI entries, are per app)."""
    bp = Blueprint("staff_files", url_prefix="/staff")

    @bp.get("/files/<file_id:str>")
    @openapi.summary("Open a material file / 查看材料文件")
    @openapi.description("返回办件材料文件（申请人上传、窗口收件扫描件、补正文件），类型按文件内容识别（仅 PDF/JPG/PNG），"
                         "带 Content-Disposition 和 X-Content-Type-Options: nosniff。仅限办件所涉部门的工作人员（加签人、"
                         "窗口件的窗口人员），否则 403；每次打开都记入申请人的个人信息访问记录。")
    @openapi.response(200, _FILE_CONTENT, "文件内容")
    @error_responses(401, 403, 404, 503)
    @staff_required(TASK_ROLES)
    async def case_file(request: Request, file_id: str) -> HTTPResponse:
        row, data = await open_case_file(request.app.ctx.engine, store_from_settings(request.app.ctx.settings),
                                         request.ctx.staff, file_id)
        return file_response(data, row.content_type, row.name)

    @bp.post("/tasks/<task_id:str>/reveal")
    @openapi.summary("Reveal a masked field / 查看完整信息")
    @openapi.description("返回申请表中一个脱敏字段（身份证号、电话、姓名、详细地址）的完整值，记入申请人的个人信息访问记录和审计日志。")
    @openapi.body(json_content(REVEAL_BODY), required=True)
    @openapi.response(200, json_content(REVEAL_SCHEMA), "完整值")
    @error_responses(400, 401, 403, 404, 413, 415, 422, 503)
    @staff_required(TASK_ROLES)
    async def reveal(request: Request, task_id: str) -> HTTPResponse:
        return json(await reveal_field(request.app.ctx.engine, request.ctx.staff, task_id,
                                       json_body(request).get("field")))

    @bp.get("/cases")
    @openapi.summary("Case search / 办件查询")
    @openapi.description("窗口人员按办件编号或申请人身份证号查询办件（最多 50 条，新的在前）。按身份证号查询记入该申请人的个人信息访问记录。")
    @openapi.parameter("q", str, "query", description="办件编号或 18 位身份证号", required=True)
    @openapi.response(200, json_content(SEARCH_SCHEMA), "查询结果")
    @error_responses(401, 403, 422, 503)
    @staff_required(SEARCH_ROLES)
    async def search(request: Request) -> HTTPResponse:
        rows = await search_cases(request.app.ctx.engine, request.ctx.staff, request.args.get("q"),
                                             pii_keys=auth_state(request.app).pii_keys,
                                             catalog=request.app.ctx.catalog)
        return json({"items": rows})

    @bp.get("/cases/<case_id:int>/receipt")
    @openapi.summary("Acceptance receipt / 受理回执")
    @openapi.description("可打印的受理回执：办件编号、事项、收取的材料、承诺办结日期和查询进度的二维码。")
    @openapi.response(200, json_content(RECEIPT_SCHEMA), "受理回执")
    @error_responses(401, 403, 404, 503)
    @staff_required(SEARCH_ROLES)
    async def case_receipt(request: Request, case_id: int) -> HTTPResponse:
        base = f"{request.scheme}://{request.host}"
        return json(await receipt(request.app.ctx.engine, request.ctx.staff, case_id,
                                             catalog=request.app.ctx.catalog, base_url=base))

    return bp


__all__ = ["blueprint"]
