"""Citizen uploads (材料上传), for a citizen's token:

    POST /uploads            multipart field ``file`` → 201 {id, content_type, size, sha256, …}
    GET  /uploads/{id}       → the upload's record (404: not mine)
    GET  /uploads/{id}/content → the stored bytes (thumbnails, 补正 previews)

An upload belongs to its citizen until ``POST /applications {…, materials: {"<material>": [id…]}}``
(or a 补正) attaches it to a case; unattached uploads expire after ``FILES_UPLOAD_TTL_S``. Rules
live in ``engine.platform.files`` and ``engine.platform.uploads`` (types by magic bytes, size,
photos re-encoded without EXIF). The route streams its body: a 10 MB photo exceeds the API's
JSON body limit.
"""

from __future__ import annotations

from urllib.parse import quote

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json, raw
from sanic_ext.extensions.openapi import openapi

from engine.errors import ValidationFailed
from engine.platform import (
    FileTooLarge,
    citizen_owner,
    owned_upload,
    read_file,
    save_upload,
    store_from_settings,
    upload_view,
)
from mobile_api.auth import RATE_LIMITS, RateRule, citizen_required, rate_limit
from mobile_api.errors import UnsupportedMediaType
from mobile_api.openapi_docs import error_documenter, json_content
from mobile_api.openapi_docs import object_schema as _obj

RATE_LIMITS.setdefault("upload_per_citizen", RateRule(
    60, 60, "upload floods from one account: image re-encoding and storage per request"))
FORM_OVERHEAD = 64 * 1024  # multipart framing around the one file
_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_NULL_STR = {"type": "string", "nullable": True}
UPLOAD_SCHEMA = _obj(
    "id", "content_type", "size", "sha256",
    id={**_STR, "format": "uuid"}, content_type={**_STR, "enum": ["application/pdf", "image/jpeg", "image/png"]},
    size={**_INT, "description": "存储的字节数（图片为去除 EXIF 后重新编码的大小）"},
    sha256={**_STR, "description": "存储内容的 SHA-256"}, name=_STR, material=_NULL_STR,
    source={**_STR, "enum": ["applicant", "window", "supplement"]},
    attached={**_BOOL, "description": "是否已随申请或补正提交"}, created_at={**_STR, "format": "date-time"},
    expires_at={**_NULL_STR, "format": "date-time", "description": "未提交的上传文件到期即删除"})
UPLOAD_BODY = {"type": "object", "required": ["file"], "properties": {
    "file": {**_STR, "format": "binary", "description": "PDF / JPG / PNG（按文件内容识别），不超过 10 MB"}}}
error_responses = error_documenter({
    400: "请求格式不正确", 401: "未登录、凭证无效或已过期", 403: "非群众账号",
    404: "文件不存在（或不属于您）", 413: "文件过大（file_too_large）",
    415: "不是 PDF/JPG/PNG（按文件内容识别，unsupported_file_type）、图片无法识别（unreadable_image），"
         "或请求不是 multipart/form-data",
    422: "缺少 file 字段", 429: "上传过于频繁或未提交的上传文件过多", 503: "材料存储服务暂不可用"})
_FILE_CONTENT = {media: {"schema": {**_STR, "format": "binary"}}
                 for media in ("application/pdf", "image/jpeg", "image/png")}


async def read_stream(request: Request, limit: int) -> bytes:
    """The request body, read from the stream; more than ``limit`` bytes → 413."""
    chunks, size = [], 0
    while (chunk := await request.stream.read()) is not None:  # type: ignore[union-attr]
        size += len(chunk)
        if size > limit:
            raise FileTooLarge("上传内容过大")
        chunks.append(chunk)
    return b"".join(chunks)


def file_response(data: bytes, content_type: str, filename: str) -> HTTPResponse:
    """Stored bytes as a download the browser shows inline: the sniffed type (only PDF/JPEG/PNG are
    ever stored, so never HTML or SVG), ``nosniff``, a UTF-8 file name, no caching of personal files."""
    ascii_name = "".join(c if c.isascii() and c.isalnum() or c in ".-_" else "_" for c in filename) or "file"
    return raw(data, content_type=content_type, headers={
        "Content-Disposition": f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})


def blueprint() -> Blueprint:
    """A fresh blueprint per app (handlers, and so their OpenAPI entries, are per app)."""
    bp = Blueprint("uploads")

    @bp.post("/uploads", stream=True)
    @openapi.summary("Upload a material / 上传材料")
    @openapi.description(
        "上传一份申请材料（multipart 字段 file）。按文件内容识别类型，只接受 PDF、JPG、PNG，单份不超过 "
        "UPLOAD_MAX_BYTES（默认 10 MB）；图片去除 EXIF（含拍摄位置）后重新编码保存。返回的 id 在 "
        "POST /applications 的 materials 中按材料名称引用；未提交的上传文件在 FILES_UPLOAD_TTL_S（默认 24 小时）后删除。")
    @openapi.body({"multipart/form-data": {"schema": UPLOAD_BODY}}, required=True)
    @openapi.response(201, json_content(UPLOAD_SCHEMA), "已上传")
    @error_responses(400, 401, 403, 413, 415, 422, 429, 503)
    @citizen_required
    async def upload(request: Request) -> HTTPResponse:
        principal = request.ctx.principal
        await rate_limit(request, "upload_per_citizen", str(principal.citizen_id))
        settings = request.app.ctx.settings
        max_bytes = int(settings.UPLOAD_MAX_BYTES)
        body = await read_stream(request, max_bytes + FORM_OVERHEAD)
        if not request.content_type.startswith("multipart/form-data"):
            raise UnsupportedMediaType("请以 multipart/form-data 上传文件")
        request.body = body
        sent = request.files.get("file") if request.files else None
        if sent is None:
            raise ValidationFailed("请选择要上传的文件", fields={"file": "请选择要上传的文件"})
        row = await save_upload(
            store_from_settings(settings), owner=citizen_owner(principal.citizen_id), data=sent.body,
            now=request.app.ctx.engine.deps.clock(), ttl_s=int(settings.FILES_UPLOAD_TTL_S), max_bytes=max_bytes,
            max_pending=int(settings.FILES_MAX_PENDING))
        return json(upload_view(row), status=201, headers={"Location": f"/api/v1/uploads/{row.id}"})

    @bp.get("/uploads/<upload_id:str>")
    @openapi.summary("My upload / 我的上传文件")
    @openapi.response(200, json_content(UPLOAD_SCHEMA), "上传文件信息")
    @error_responses(401, 403, 404, 503)
    @citizen_required
    async def my_upload(request: Request, upload_id: str) -> HTTPResponse:
        row = await owned_upload(citizen_owner(request.ctx.principal.citizen_id), upload_id)
        return json(upload_view(row))

    @bp.get("/uploads/<upload_id:str>/content")
    @openapi.summary("My upload's content / 上传文件内容")
    @openapi.description("返回存储的文件（图片为去除 EXIF 后的版本），用于缩略图和预览。")
    @openapi.response(200, _FILE_CONTENT, "文件内容")
    @error_responses(401, 403, 404, 503)
    @citizen_required
    async def my_upload_content(request: Request, upload_id: str) -> HTTPResponse:
        row = await owned_upload(citizen_owner(request.ctx.principal.citizen_id), upload_id)
        data = await read_file(store_from_settings(request.app.ctx.settings), row)
        return file_response(data, row.content_type, row.name)

    return bp


__all__ = ["UPLOAD_SCHEMA", "blueprint", "file_response", "read_stream"]
