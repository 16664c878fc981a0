"""Window intake (前台一口受理), for clerks and admins:

    POST /staff/applications  multipart: service, form (JSON text), id_number, name, phone?,
                              materials (files, several), material_names (one per file, same order)
                              → 201 the case detail

Rules live in ``engine.workbench.intake`` (applicant, placeholder openid, timeline) and ``engine.platform.uploads``
(types by magic bytes, sizes). The route streams its body so scans may exceed the API's JSON body
limit, up to ``MAX_FILES`` × ``UPLOAD_MAX_BYTES``.
"""

from __future__ import annotations

import json as jsonlib
from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json
from sanic_ext.extensions.openapi import openapi

from engine.errors import ValidationFailed
from engine.platform import FileTooLarge, store_from_settings
from engine.workbench import MAX_FILES, Upload, window_intake
from mobile_api.api.applications import CASE_DETAIL_SCHEMA, case_detail
from mobile_api.api.services import offered_item
from mobile_api.auth import auth_state
from mobile_api.errors import UnsupportedMediaType
from mobile_api.openapi_docs import error_documenter, json_content
from mobile_api.staff_auth import staff_required

INTAKE_ROLES = ("clerk", "admin")
FORM_OVERHEAD = 256 * 1024  # text fields and multipart framing on top of the files
error_responses = error_documenter({
    400: "请求格式不正确", 401: "未登录、凭证无效或已过期",
    403: "非窗口工作人员（staff_only / forbidden_role）", 404: "事项不存在或未开放",
    413: "材料文件过大（file_too_large）", 415: "材料不是 PDF/JPG/PNG（按文件内容识别，unsupported_file_type），"
                                          "或请求不是 multipart/form-data",
    422: "身份证号、姓名、申请表或材料名称填写有误（fields 标注字段）", 503: "依赖服务暂不可用"})
_STR = {"type": "string"}
INTAKE_BODY = {"type": "object", "required": ["service", "form", "id_number", "name"], "properties": {
    "service": {**_STR, "example": "business-startup"},
    "form": {**_STR, "description": "申请表（JSON 文本），按事项申请表填写"},
    "id_number": {**_STR, "description": "申请人身份证号"}, "name": {**_STR, "description": "申请人姓名"},
    "phone": {**_STR, "description": "联系电话（可选）"},
    "materials": {"type": "array", "items": {**_STR, "format": "binary"},
                  "description": f"扫描件：PDF / JPG / PNG，最多 {MAX_FILES} 份"},
    "material_names": {"type": "array", "items": _STR, "description": "每份扫描件的材料名称，与 materials 顺序一致"}}}


async def _read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    while (chunk := await request.stream.read()) is not None:  # type: ignore[union-attr]
        size += len(chunk)
        if size > limit:
            raise FileTooLarge("上传内容过大")
        chunks.append(chunk)
    return b"".join(chunks)


def _field(request: Request, name: str) -> str | None:
    value = request.form.get(name)
    return value if isinstance(value, str) else None


def _uploads(request: Request) -> list[Upload]:
    files = request.files.getlist("materials") if request.files else []
    names = request.form.getlist("material_names") if request.form else []
    if len(names) != len(files):
        raise ValidationFailed("请为每份材料填写材料名称", fields={"material_names": "数量应与材料文件一致"})
    return [Upload(material=str(n), data=f.body) for n, f in zip(names, files, strict=True)]


def blueprint() -> Blueprint:
    """A fresh blueprint per app (handlers, and so their OpenAPI entries, are per app)."""
    bp = Blueprint("staff_intake", url_prefix="/staff")

    @bp.post("/applications", stream=True)
    @openapi.summary("Window intake / 前台一口受理")
    @openapi.description("窗口工作人员（clerk / admin）为到窗口办事的群众立案，与掌上申办同一流程（channel=window）。"
                         "申请人已绑定账号时办件归入其账号，否则按身份证号生成占位标识，绑定后可认领。扫描件按文件内容"
                         "识别类型（PDF / JPG / PNG），单份不超过 UPLOAD_MAX_BYTES（默认 10 MB），记入办件时间线"
                         "（材料名称、大小、SHA-256）。")
    @openapi.body({"multipart/form-data": {"schema": INTAKE_BODY}}, required=True)
    @openapi.response(201, json_content(CASE_DETAIL_SCHEMA), "已立案")
    @error_responses(400, 401, 403, 404, 413, 415, 422, 503)
    @staff_required(INTAKE_ROLES)
    async def window_apply(request: Request) -> HTTPResponse:
        settings = request.app.ctx.settings
        max_bytes = int(settings.UPLOAD_MAX_BYTES)
        body = await _read_body(request, MAX_FILES * max_bytes + FORM_OVERHEAD)
        if not request.content_type.startswith("multipart/form-data"):
            raise UnsupportedMediaType("请以 multipart/form-data 提交")
        request.body = body
        service, form_text = _field(request, "service"), _field(request, "form")
        if not service or len(service) > 64:
            raise ValidationFailed("请选择要办理的事项", fields={"service": "请选择要办理的事项"})
        try:
            form: Any = jsonlib.loads(form_text or "")
        except ValueError:
            raise ValidationFailed("申请表填写有误", fields={"form": "申请表应为 JSON 对象"}) from None
        item = offered_item(request, service.strip())
        store = store_from_settings(settings)
        result = await window_intake(
            request.app.ctx.applications, store, service=item.slug, form=form, name=_field(request, "name"),
            id_number=_field(request, "id_number"), phone=_field(request, "phone"), uploads=_uploads(request),
            clerk=request.ctx.staff.username, pii_keys=auth_state(request.app).pii_keys, max_bytes=max_bytes)
        return json(await case_detail(request, result.id), status=201)

    return bp


__all__ = ["INTAKE_BODY", "INTAKE_ROLES", "blueprint"]
