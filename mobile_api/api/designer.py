"""The process designer API (流程设计), for staff with the designer role (or admin):

    GET  /designer/departments                   department codes and names (what lanes may be called)
    POST /designer/validate                      BPMN or DMN XML → {valid, errors[], warnings[]}
    POST /designer/processes                     deploy a version: raw BPMN XML, or JSON {bpmn, files, process_id}
    GET  /designer/processes                     processes with their latest version
    GET  /designer/processes/{id}/versions       every version (immutable, content-hashed)
    GET  /designer/processes/{id}/versions/{v}/bpmn   the BPMN XML of a version (``latest`` works), with a
                                                 generated diagram layout when the stored model has none
    GET  /designer/processes/{id}/versions/{v}/file?name=   one file of a version (DMN, form)
    GET  /designer/processes/{id}/stats?version=&since=&until=   heat-map figures per BPMN element
    POST /designer/processes/{id}/migrate {from_version, to_version, dry_run}  move running cases

The rules live in ``engine.designer``; this layer parses bodies and documents the answers.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json, text
from sanic_ext.extensions.openapi import openapi

from engine.bpmn import files_from_json, with_layout
from engine.designer import ProcessDefinition, Upload, migration, stats, validation, versions
from engine.designer import deploy as deployer
from engine.errors import NotFound, ValidationFailed
from mobile_api.errors import UnsupportedMediaType
from mobile_api.openapi_docs import error_documenter, json_content
from mobile_api.openapi_docs import object_schema as _obj
from mobile_api.request import json_body
from mobile_api.staff_auth import staff_required

DESIGN_ROLES = ["admin", "designer"]  # deploy, migrate, validate
READ_ROLES = ["admin", "designer", "supervisor"]  # lists, XML, heat-map
XML_TYPES = ("application/xml", "text/xml", "application/bpmn+xml", "application/dmn+xml")

error_responses = error_documenter({
    400: "请求体不是有效的 JSON", 401: "未登录、凭证无效或已过期",
    403: "非工作人员，或角色不是流程设计员/管理员（forbidden_role）", 404: "流程或版本不存在",
    409: "并发部署或办件已被他人更新，请重试",
    413: "请求内容或模型文件过大（payload_too_large）",
    415: "内容类型不是 application/xml、text/xml 或 application/json",
    422: "模型无效：doctype_forbidden（DOCTYPE/实体）、not_xml、not_bpmn_or_dmn、invalid_file_name、"
         "lint_failed（未通过校验，fields 按元素标注）、sandbox_violation（脚本越权）、validation_failed",
    503: "依赖服务暂不可用"})
_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_NSTR, _NINT = {"type": "string", "nullable": True}, {"type": "integer", "nullable": True}
_NNUM = {"type": "number", "nullable": True}
_TIME = {"type": "string", "format": "date-time"}



FINDING = _obj("code", "message", "element_id", "line", code={**_STR, "example": "task_without_lane"},
               message={**_STR, "description": "中文说明（含原始细节）"}, element_id=_NSTR, line=_NINT,
               file=_STR, severity={**_STR, "enum": ["error", "warning"]})
VALIDATE_SCHEMA = _obj("valid", "errors", "warnings", valid=_BOOL, errors={"type": "array", "items": FINDING},
                       warnings={"type": "array", "items": FINDING},
                       process_ids={"type": "array", "items": _STR}, decision_ids={"type": "array", "items": _STR})
VERSION_SCHEMA = _obj("process_id", "version", "content_hash", "created_at",
                      process_id=_STR, name=_STR, version=_INT, content_hash=_STR, deployed_by=_NSTR,
                      created_at=_TIME, files={"type": "array", "items": _STR}, running_cases=_INT)
DEPLOY_SCHEMA = {**VERSION_SCHEMA, "required": [*VERSION_SCHEMA["required"], "created"], "properties": {
    **VERSION_SCHEMA["properties"], "created": {**_BOOL, "description": "false：内容相同，返回已有版本"},
    "warnings": {"type": "array", "items": FINDING}}}
PROCESS_SCHEMA = _obj("process_id", "latest_version", process_id=_STR, name=_STR, latest_version=_INT,
                      versions=_INT, updated_at=_TIME, deployed_by=_NSTR, running_cases=_INT)
ELEMENT_STATS = _obj("waiting", "completed", "overdue", waiting=_INT, completed=_INT, overdue=_INT,
                     avg_seconds=_NNUM, p90_seconds=_NNUM)
STATS_SCHEMA = _obj("process_id", "elements", process_id=_STR, version=_NINT, since=_NSTR, until=_NSTR,
                    elements={"type": "object", "additionalProperties": ELEMENT_STATS,
                              "description": "BPMN 元素 id → 统计"})
MIGRATE_BODY = _obj("from_version", "to_version", from_version=_INT, to_version=_INT,
                    dry_run={**_BOOL, "default": True, "description": "默认 true：只检查不迁移"})
MIGRATE_SCHEMA = _obj("process_id", "from_version", "to_version", "dry_run", "cases", process_id=_STR,
                      from_version=_INT, to_version=_INT, dry_run=_BOOL, moved=_INT, movable=_INT, refused=_INT,
                      cases={"type": "array", "items": _obj("case_id", "case_no", "movable", "moved", "reasons",
                                                            case_id=_INT, case_no=_STR, movable=_BOOL, moved=_BOOL,
                                                            reasons={"type": "array", "items": _STR})})
XML_BODY = {"schema": {"type": "string", "description": "BPMN 或 DMN XML（UTF-8，不含 DOCTYPE）"}}
DEPLOY_JSON = _obj(bpmn={**_STR, "description": "BPMN XML；只更新表单/决策表时可省略（须给 process_id）"},
                   process_id={**_STR, "description": "可选：流程 id（须与 BPMN 一致）"},
                   files={"type": "object", "additionalProperties": _STR,
                          "description": "其他文件：名称.dmn、forms/名称.json；未给出的沿用最新版本"})


def _media(request: Request) -> str:
    return (request.content_type or "").split(";", 1)[0].strip().lower()


def _xml_body(request: Request) -> bytes:
    """A raw XML body; JSON ``{"xml": "..."}`` is accepted too."""
    media = _media(request)
    if media in XML_TYPES:
        if not request.body:
            raise ValidationFailed("请求体为空", fields={"body": "缺少 XML"})
        return bytes(request.body)
    if media == "application/json":
        xml = json_body(request).get("xml")
        if not isinstance(xml, str) or not xml.strip():
            raise ValidationFailed("缺少 xml 字段", fields={"xml": "应为 BPMN 或 DMN XML 文本"})
        return xml.encode("utf-8")
    raise UnsupportedMediaType("请使用 application/xml、text/xml 或 application/json")


def _upload(request: Request) -> Upload:
    media = _media(request)
    if media in XML_TYPES:
        return Upload(bpmn=_xml_body(request))
    if media != "application/json":
        raise UnsupportedMediaType("请使用 application/xml、text/xml 或 application/json")
    body = json_body(request)
    bpmn, files, process_id = body.get("bpmn"), body.get("files", {}), body.get("process_id")
    if "bpmn" in body and not isinstance(bpmn, str):  # omitted: keep the BPMN; null is not omitted
        raise ValidationFailed("bpmn 应为 XML 文本", fields={"bpmn": "应为字符串"})
    if not isinstance(files, dict):
        raise ValidationFailed("files 应为对象", fields={"files": "文件名 → 文本"})
    if "process_id" in body and (not isinstance(process_id, str) or not process_id.strip()):
        raise ValidationFailed("process_id 无效", fields={"process_id": "应为非空字符串"})
    return Upload(bpmn=bpmn, files=files, process_id=process_id)


def _version_view(d: ProcessDefinition, running: int = 0) -> dict[str, Any]:
    return {"process_id": d.process_id, "name": d.name, "version": d.version, "content_hash": d.content_hash,
            "deployed_by": d.deployed_by, "created_at": d.created_at.isoformat(),
            "files": sorted(files_from_json(d.files)), "running_cases": running}


def _time(request: Request, name: str) -> datetime | None:
    value = request.args.get(name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed("时间格式有误", fields={name: "应为 ISO 8601 时间，如 2026-11-01T00:00:00+08:00"}) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def blueprint() -> Blueprint:
    """A fresh blueprint per app (handlers, and so their OpenAPI entries, are per app)."""
    bp = Blueprint("designer", url_prefix="/designer")

    @bp.post("/validate")
    @openapi.summary("Validate a model / 校验模型")
    @openapi.description("对 BPMN 或 DMN XML 做与部署相同的检查（泳道对应部门、表单存在、脚本通过沙箱、定时器可解析、"
                         "每条路径可到达结束、人工任务都在泳道中、网关有条件或默认流；Camunda 的 ${...} 表达式和 "
                         "Groovy/JavaScript 脚本给出应改写成的 Python）。BPMN 与其流程最新版本的表单和决策表一起检查。"
                         "模型问题以 200 {valid:false} 回答；DOCTYPE、非 XML、过大等输入以 4xx 拒绝。不保存任何内容。")
    @openapi.body({**{t: XML_BODY for t in XML_TYPES[:2]},
                   **json_content(_obj("xml", xml={**_STR, "description": "BPMN 或 DMN XML"}))}, required=True)
    @openapi.response(200, json_content(VALIDATE_SCHEMA), "校验结果（含元素 id 与行号）")
    @error_responses(400, 401, 403, 413, 415, 422)
    @staff_required(DESIGN_ROLES)
    async def validate_model(request: Request) -> HTTPResponse:
        result = await validation.validate(_xml_body(request), departments=request.app.ctx.departments)
        return json(result)

    @bp.post("/processes")
    @openapi.summary("Deploy a version / 部署新版本")
    @openapi.description("部署流程的新版本（不可变，按内容哈希）。请求体二选一：① 原始 BPMN XML（application/xml 或 "
                         "text/xml，即建模器导出的内容），表单和决策表沿用该流程的最新版本；② JSON {bpmn, files?, "
                         "process_id?}，files 中的 名称.dmn、forms/名称.json 替换同名文件。未通过校验则 422 不保存。"
                         "内容与已有版本相同时返回该版本（200，created=false），否则 201。正在办理的办件保持原版本。"
                         "每次部署都记入审计（操作人、哈希、时间）。")
    @openapi.body({**{t: XML_BODY for t in XML_TYPES[:2]}, **json_content(DEPLOY_JSON)}, required=True)
    @openapi.response(201, json_content(DEPLOY_SCHEMA), "已部署新版本")
    @openapi.response(200, json_content(DEPLOY_SCHEMA), "内容未变，返回已有版本")
    @error_responses(400, 401, 403, 409, 413, 415, 422)
    @staff_required(DESIGN_ROLES)
    async def deploy_version(request: Request) -> HTTPResponse:
        ctx = request.app.ctx
        result = await deployer.deploy(ctx.engine, _upload(request), actor=request.ctx.staff.username,
                                       departments=ctx.departments)
        running = await versions.running_counts([result.definition.id])
        return json({**_version_view(result.definition, running.get(result.definition.id, 0)),
                     "created": result.created, "warnings": result.warnings}, status=201 if result.created else 200)

    @bp.get("/departments")
    @openapi.summary("Departments / 部门（泳道可选值）")
    @openapi.description("泳道可命名的部门：代码与名称（processes/departments.yaml）。")
    @openapi.response(200, json_content(_obj("items", items={"type": "array", "items": _obj(
        "code", "name", code=_STR, name=_STR)})), "部门列表")
    @error_responses(401, 403)
    @staff_required(READ_ROLES)
    async def departments(request: Request) -> HTTPResponse:
        return json({"items": [{"code": code, "name": name}
                               for code, name in request.app.ctx.departments.items()]})

    @bp.get("/processes")
    @openapi.summary("Processes / 流程列表")
    @openapi.description("已部署的流程及其最新版本、版本数和在办件数。")
    @openapi.response(200, json_content(_obj("items", items={"type": "array", "items": PROCESS_SCHEMA})), "流程列表")
    @error_responses(401, 403)
    @staff_required(READ_ROLES)
    async def list_processes(request: Request) -> HTTPResponse:
        rows = await versions.all_versions()
        running = await versions.running_counts([r.id for r in rows])
        items: dict[str, dict[str, Any]] = {}
        for d in rows:
            entry = items.setdefault(d.process_id, {"process_id": d.process_id, "versions": 0, "running_cases": 0})
            entry.update(name=d.name or entry.get("name", ""), latest_version=d.version, versions=entry["versions"] + 1,
                         updated_at=d.created_at.isoformat(), deployed_by=d.deployed_by,
                         running_cases=entry["running_cases"] + running.get(d.id, 0))
        return json({"items": list(items.values())})

    @bp.get("/processes/<process_id:str>/versions")
    @openapi.summary("Versions / 版本列表")
    @openapi.description("流程的全部版本（新到旧），含内容哈希、部署人、文件和在办件数。")
    @openapi.response(200, json_content(_obj("items", items={"type": "array", "items": VERSION_SCHEMA})), "版本列表")
    @error_responses(401, 403, 404)
    @staff_required(READ_ROLES)
    async def list_versions(request: Request, process_id: str) -> HTTPResponse:
        rows = await versions.versions_of(process_id)
        if not rows:
            raise NotFound(f"流程 {process_id} 尚未部署")
        running = await versions.running_counts([r.id for r in rows])
        return json({"items": [_version_view(d, running.get(d.id, 0)) for d in rows]})

    @bp.get("/processes/<process_id:str>/versions/<version:str>/bpmn")
    @openapi.summary("Version XML / 版本的 BPMN")
    @openapi.description("某版本（或 latest）的 BPMN XML。存储的模型没有图形布局（BPMN DI）时，返回自动生成布局的 XML"
                         "（响应头 X-Layout: generated），内容哈希不变；部署编辑后的 XML 即成为新版本。")
    @openapi.response(200, {"application/xml": XML_BODY}, "BPMN XML")
    @error_responses(401, 403, 404, 422)
    @staff_required(READ_ROLES)
    async def version_bpmn(request: Request, process_id: str, version: str) -> HTTPResponse:
        definition = await versions.definition(process_id, version)
        files = files_from_json(definition.files)
        names = sorted(n for n in files if n.endswith(".bpmn"))
        if not names:
            raise NotFound("该版本没有 BPMN 文件")
        stored = files[names[0]]
        laid_out = with_layout(stored)
        headers = {"X-Layout": "generated" if laid_out != stored else "stored",
                   "X-Content-Hash": definition.content_hash, "X-Version": str(definition.version)}
        return text(laid_out, content_type="application/xml; charset=utf-8", headers=headers)

    @bp.get("/processes/<process_id:str>/versions/<version:str>/file")
    @openapi.parameter("name", str, "query", required=True, description="文件名，如 senior_card_decision.dmn、forms/apply.json")
    @openapi.summary("Version file / 版本中的文件")
    @openapi.description("某版本中的一个文件原文：名称.dmn（决策表，供 DMN 编辑器）、名称.bpmn 或 forms/名称.json。")
    @openapi.response(200, {"application/xml": XML_BODY, **json_content({"type": "object"})}, "文件内容")
    @error_responses(401, 403, 404, 422)
    @staff_required(READ_ROLES)
    async def version_file(request: Request, process_id: str, version: str) -> HTTPResponse:
        name = request.args.get("name") or ""
        files = files_from_json((await versions.definition(process_id, version)).files)
        if name not in files:
            raise NotFound(f"该版本没有文件 {name}")
        media = "application/json" if name.endswith(".json") else "application/xml"
        return text(files[name], content_type=f"{media}; charset=utf-8")

    @bp.get("/processes/<process_id:str>/stats")
    @openapi.summary("Heat-map / 热力图统计")
    @openapi.description("按 BPMN 元素统计：当前等待数、时间窗内完成数、平均与 P90 用时（秒）、超期数（当前超期的待办 + "
                         "时间窗内超期办结的任务）。不给 version 时统计全部版本。")
    @openapi.parameter("version", int, "query", description="版本号（可选）")
    @openapi.parameter("since", str, "query", description="起始时间（ISO 8601，含）")
    @openapi.parameter("until", str, "query", description="截止时间（ISO 8601，不含）")
    @openapi.response(200, json_content(STATS_SCHEMA), "每个元素的统计")
    @error_responses(401, 403, 404, 422)
    @staff_required(READ_ROLES)
    async def process_stats(request: Request, process_id: str) -> HTTPResponse:
        raw = request.args.get("version")
        if raw is not None and not (raw.isdigit() and len(raw) < 10):
            raise ValidationFailed("版本号无效", fields={"version": "应为正整数"})
        since, until = _time(request, "since"), _time(request, "until")
        result = await stats.element_stats(request.app.ctx.engine, process_id,
                                           version=int(raw) if raw else None, since=since, until=until)
        result["since"] = since.isoformat() if since else None
        result["until"] = until.isoformat() if until else None
        return json(result)

    @bp.post("/processes/<process_id:str>/migrate")
    @openapi.summary("Migrate cases / 迁移在办件")
    @openapi.description("把 from_version 的在办件迁到 to_version：办件已到达（已办、在办、等待）的每个环节在目标版本中"
                         "都存在才迁移，否则逐件列出原因。默认 dry_run=true 只检查；迁移记入审计和办件时间线。")
    @openapi.body(json_content(MIGRATE_BODY), required=True)
    @openapi.response(200, json_content(MIGRATE_SCHEMA), "逐件结果")
    @error_responses(400, 401, 403, 404, 409, 413, 415, 422)
    @staff_required(DESIGN_ROLES)
    async def migrate_cases(request: Request, process_id: str) -> HTTPResponse:
        body = json_body(request)
        dry_run = body.get("dry_run", True)
        if not isinstance(dry_run, bool):
            raise ValidationFailed("dry_run 应为布尔值", fields={"dry_run": "true 或 false"})
        report = await migration.migrate(request.app.ctx.engine, process_id, body.get("from_version"),
                                         body.get("to_version"), dry_run=dry_run,
                                         actor=request.ctx.staff.username)
        return json(report.as_dict())

    return bp


__all__ = ["DESIGN_ROLES", "READ_ROLES", "blueprint"]
