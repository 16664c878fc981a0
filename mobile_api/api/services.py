"""Service catalogue endpoints (办事指南), public:

    GET /services          → {items: [service]}: every item offered to citizens (no platform items)
    GET /services/{slug}   → service + form (render spec and JSON Schema) + materials

With a valid citizen token, ``materials`` say which of them the citizen's valid e-certificates
satisfy (免提交); without one, every material shows its plain status. An invalid token is a 401
(so a client learns to refresh), a missing one is fine.

Also home to the small OpenAPI helpers the other citizen blueprints (applications) share.
"""

from __future__ import annotations

import hashlib
import json as jsonlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urldefrag, urljoin

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json, raw
from sanic_ext.extensions.openapi import openapi

from engine.citizen import Citizen, ServiceItem, find_citizen
from engine.errors import NotFound
from forms import BASE_URI, Form, default_registry, load_form, resolve_materials
from mobile_api.auth import SECURITY_SCHEME, Principal, TokenInvalid, require_principal
from mobile_api.openapi_docs import error_documenter, json_content

F = TypeVar("F", bound=Callable[..., Any])

# ------------------------------------------------------------------ shared OpenAPI helpers
ERROR_TEXT = {
    400: "请求体不是有效的 JSON", 401: "未登录、凭证无效、过期或已退出", 403: "无权访问，或需要先完成实名认证",
    404: "不存在，或不属于当前用户", 409: "当前状态不允许该操作，或幂等键冲突", 413: "请求内容过大",
    415: "不是 application/json", 422: "字段校验失败（fields 标注字段）", 429: "请求过于频繁（见 Retry-After）",
    503: "依赖服务不可用（数据库、Redis）",
}
NULLABLE_STRING: dict[str, Any] = {"type": "string", "nullable": True}


error_responses = error_documenter(ERROR_TEXT)


async def citizen_of(principal: Principal) -> Citizen:
    """The account behind a token; a token for an account that no longer exists is invalid."""
    citizen = await find_citizen(principal.citizen_id)
    if citizen is None:
        raise TokenInvalid()
    return citizen


# ------------------------------------------------------------------ schemas (OpenAPI 3.0)
_LIMIT = {"type": "object", "required": ["value", "unit"],
          "properties": {"value": {"type": "integer"}, "unit": {"type": "string", "example": "工作日"}}}
_CATALOGUE_MATERIAL = {"type": "object", "required": ["name", "required", "form", "source"], "properties": {
    "name": {"type": "string"}, "required": {"type": "boolean"}, "form": {"type": "string"},
    "source": {"type": "object", "required": ["type"], "properties": {
        "type": {"type": "string", "enum": ["citizen", "certificate", "shared_data"]},
        "certificate_type": {"type": "string"}, "dataset": {"type": "string"}}}}}
_SERVICE_PROPERTIES: dict[str, Any] = {
    "slug": {"type": "string", "example": "senior-card"}, "version": {"type": "string"},
    "name": {"type": "string", "example": "老年人优待证办理"}, "summary": {"type": "string"},
    "basic_code": {"type": "string"}, "implementation_code": {"type": "string"},
    "department": {"type": "string", "example": "mca"}, "department_name": {"type": "string"},
    "type": {"type": "string", "enum": ["即办件", "承诺件"]}, "legal_limit": _LIMIT, "promised_limit": _LIMIT,
    "visits": {"type": "integer", "description": "到现场次数"},
    "channels": {"type": "array", "items": {"type": "string", "enum": ["mobile", "window", "web"]}},
    "fees": {"type": "string"}, "legal_basis": {"type": "array", "items": {"type": "string"}},
    "result_certificate": {**NULLABLE_STRING, "description": "结果电子证照类型代码"},
    "real_name_level": {"type": "integer", "minimum": 0, "maximum": 3, "description": "申办所需实名等级"},
}
_SERVICE_REQUIRED = ["slug", "version", "name", "department", "department_name", "type", "legal_limit",
                     "promised_limit", "channels", "materials"]
SERVICE_SCHEMA: dict[str, Any] = {
    "type": "object", "required": _SERVICE_REQUIRED,
    "properties": {**_SERVICE_PROPERTIES, "materials": {"type": "array", "items": _CATALOGUE_MATERIAL}}}
SERVICE_LIST_SCHEMA: dict[str, Any] = {"type": "object", "required": ["items"],
                                       "properties": {"items": {"type": "array", "items": SERVICE_SCHEMA}}}
MATERIAL_STATUS_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["name", "required", "status", "label", "source_type", "satisfied"],
    "properties": {
        "name": {"type": "string"}, "required": {"type": "boolean"},
        "status": {"type": "string", "enum": ["satisfied", "needs_upload"]},
        "satisfied": {"type": "boolean", "description": "无需申请人上传（电子证照免提交或共享数据获取）"},
        "label": {"type": "string", "example": "已由电子证照自动获取（免提交）"},
        "source_type": {"type": "string", "enum": ["certificate", "shared_data", "citizen"]},
        "form": NULLABLE_STRING, "certificate_type": NULLABLE_STRING,
        "by_certificate": {**NULLABLE_STRING, "description": "所用电子证照标识"},
        "certificate_name": NULLABLE_STRING, "by_shared_data": NULLABLE_STRING,
        "purpose_bound": {"type": "boolean", "description": "部门使用加注件"},
        "reason": {**NULLABLE_STRING, "description": "证照类材料仍需上传的原因"},
    }}
_FORM_FIELD = {"type": "object", "required": ["name", "path", "title", "widget", "required"],
               "additionalProperties": True}
SERVICE_DETAIL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [*_SERVICE_REQUIRED, "materials_personalised", "form", "schema", "schema_components"],
    "properties": {
        **_SERVICE_PROPERTIES,
        "materials": {"type": "array", "items": MATERIAL_STATUS_SCHEMA},
        "materials_personalised": {"type": "boolean",
                                   "description": "材料状态是否已按当前用户持有的电子证照核对"},
        "form": {"type": "object", "required": ["name", "title", "description", "fields"], "properties": {
            "name": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
            "fields": {"type": "array", "items": _FORM_FIELD}}, "description": "表单渲染说明（组件已展开）"},
        "schema": {"type": "object", "additionalProperties": True, "description": "申请表 JSON Schema 2020-12"},
        "schema_components": {"type": "object", "additionalProperties": {"type": "object"},
                              "description": "schema 引用的公共组件，按 $id"},
    }}

ANONYMOUS_REASON = "登录并完成实名认证后，持有有效电子证照的可免提交"
UNBOUND_REASON = "完成实名认证后，持有有效电子证照的可免提交"


# ------------------------------------------------------------------ helpers
def offered_item(request: Request, slug: str) -> ServiceItem:
    """The catalogue item ``slug`` if citizens may apply for it; 404 otherwise (platform items too)."""
    catalog = request.app.ctx.catalog
    if slug not in catalog or catalog.get(slug).platform:
        raise NotFound("服务事项不存在")
    item: ServiceItem = catalog.get(slug)
    return item


def service_view(request: Request, item: ServiceItem) -> dict[str, Any]:
    departments: dict[str, str] = request.app.ctx.departments
    return {**item.public_view(), "department_name": departments.get(item.department, item.department)}


@dataclass(frozen=True)
class _Serialized:
    catalog: Any
    departments: dict[str, str]
    body: bytes
    etag: str


_CATALOGUES: dict[str, _Serialized] = {}  # app name -> the catalogue list, serialized once


def catalogue_body(request: Request) -> tuple[bytes, str]:
    """The catalogue list as JSON bytes and its strong ETag, built once per catalogue: the list
    depends only on the loaded catalogue (``app.ctx.catalog``, replaced as a whole when the
    catalogue changes) and the department names, so a new catalogue or a renamed department
    rebuilds it on the next request."""
    ctx = request.app.ctx
    cached = _CATALOGUES.get(request.app.name)
    if cached is not None and cached.catalog is ctx.catalog and cached.departments == ctx.departments:
        return cached.body, cached.etag
    body = jsonlib.dumps({"items": [service_view(request, item) for item in ctx.catalog.items()]},
                         ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    _CATALOGUES[request.app.name] = _Serialized(ctx.catalog, dict(ctx.departments), body, etag)
    return body, etag


def if_none_match(request: Request) -> set[str]:
    """The entity tags of ``If-None-Match`` (weak ones compare by their opaque part, RFC 9110 13.1.2)."""
    header = request.headers.get("if-none-match")
    if not header:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


@lru_cache(maxsize=64)
def _form(path: Path, mtime_ns: int) -> Form:
    return load_form(path)


def service_form(item: ServiceItem) -> Form:
    """The item's application form, loaded once per file version."""
    path = item.form_path
    return _form(path, path.stat().st_mtime_ns)


def schema_components(schema: dict[str, Any], base: str) -> dict[str, dict[str, Any]]:
    """Every shared component ``schema`` references (transitively), by ``$id``."""
    registry = default_registry()
    found: dict[str, dict[str, Any]] = {}
    pending = [(schema, base)]
    while pending:
        node, here = pending.pop()
        stack: list[Any] = [node]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                ref = value.get("$ref")
                if isinstance(ref, str):
                    uri = urldefrag(urljoin(here, ref)).url
                    if uri in registry.components and uri not in found:
                        found[uri] = registry.components[uri]
                        pending.append((found[uri], uri))
                stack.extend(v for k, v in value.items() if k not in ("enum", "const", "default", "examples"))
            elif isinstance(value, list):
                stack.extend(value)
    return found


async def optional_citizen(request: Request) -> Citizen | None:
    """The citizen of a bearer token if one is sent (401 when it is invalid), else ``None``."""
    if not request.headers.get("authorization", "").strip():
        return None
    principal = await require_principal(request)
    if principal.role != "citizen":
        return None
    return await citizen_of(principal)


async def certificates_of(citizen: Citizen) -> list[dict[str, Any]]:
    """The citizen's valid e-certificates, found by the blind index of their bound ID number
    (the same keyed hash certificates carry), so nothing is decrypted."""
    from engine.certificates import find_for_holder

    if not citizen.id_hash:
        return []
    rows = await find_for_holder(citizen.id_hash, today=date.today())
    return [{"type_code": r.type_code, "identifier": r.identifier, "name": r.name, "state": r.state}
            for r in rows]


async def material_statuses(item: ServiceItem, citizen: Citizen | None) -> list[dict[str, Any]]:
    certificates = await certificates_of(citizen) if citizen is not None else []
    statuses = [s.to_dict() for s in resolve_materials(item.materials, certificates, today=date.today())]
    if citizen is None or not citizen.id_hash:
        for status in statuses:
            if status["source_type"] == "certificate" and not status["satisfied"]:
                status["reason"] = ANONYMOUS_REASON if citizen is None else UNBOUND_REASON
    return statuses


# ------------------------------------------------------------------ blueprint
def blueprint() -> Blueprint:
    """A fresh blueprint per app (handlers, and so their OpenAPI entries, are per app)."""
    bp = Blueprint("services")

    @bp.get("/services")
    @openapi.summary("Service catalogue / 办事指南列表")
    @openapi.description("面向群众的全部政务服务事项（不含平台内部事项）。Public. 带 ETag，"
                         "If-None-Match 相同时答复 304（Cache-Control: no-cache，每次向服务端确认）。")
    @openapi.response(200, json_content(SERVICE_LIST_SCHEMA), "事项列表（响应头 ETag）")
    @openapi.response(304, None, "未变化：If-None-Match 与当前 ETag 相同，无响应体")
    @openapi.parameter("If-None-Match", str, "header", description="上次响应的 ETag：未变化时答复 304")
    @error_responses(503)
    async def list_services(request: Request) -> HTTPResponse:
        body, etag = catalogue_body(request)
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in if_none_match(request):
            return HTTPResponse(status=304, headers=headers)
        return raw(body, content_type="application/json", headers=headers)

    @bp.get("/services/<slug:str>")
    @openapi.summary("Service detail / 办事指南详情")
    @openapi.description("事项详情、申请表（渲染说明与 JSON Schema）和申请材料。携带群众登录凭证时，材料按本人持有"
                         "的有效电子证照核对是否免提交。Token optional; an invalid one is a 401.")
    @openapi.secured({})
    @openapi.secured({SECURITY_SCHEME: []})
    @openapi.response(200, json_content(SERVICE_DETAIL_SCHEMA), "事项详情")
    @error_responses(401, 404, 503)
    async def service_detail(request: Request, slug: str) -> HTTPResponse:
        item = offered_item(request, slug)
        citizen = await optional_citizen(request)
        form = service_form(item)
        body = {**service_view(request, item), "materials": await material_statuses(item, citizen),
                "materials_personalised": citizen is not None and citizen.id_hash is not None,
                "form": form.ui_spec(), "schema": form.schema,
                "schema_components": schema_components(form.schema, BASE_URI + quote(form.name))}
        return json(body)

    return bp


__all__ = ["ERROR_TEXT", "SERVICE_DETAIL_SCHEMA", "SERVICE_LIST_SCHEMA", "blueprint", "citizen_of",
           "error_responses", "json_content", "offered_item", "service_form", "service_view"]
