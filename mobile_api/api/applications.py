"""Citizen applications (在线申办), all for a citizen's token:

    POST /applications {service, form, materials?} → 201 case (``Idempotency-Key``: a retry → 200, same body);
                                            materials: {"<material name>": ["<upload id>", …]} (uploads.py)
    GET  /applications?page=&size=          → my cases, newest first
    GET  /applications/{id}                 → status, steps, decision, certificates (404: not mine)
    POST /applications/{id}/supplement {data} · /withdraw {reason?} · /review-request {reason}
    POST /applications/{id}/evaluation {level, comment} → 201 (a bad one opens a rectification case)
    GET  /applications/{id}/events          → server-sent events: the status now, then every change

The applicant of a case is the citizen's real identity (decrypted, logged) and the stored
``applicant`` is their openid, which ``_my_case`` checks (the case joined to the account). Idempotency keys live in the KV
(``set_nx``): one case per key and citizen, also for concurrent requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json as jsonlib
import re
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json
from sanic_ext.extensions.openapi import openapi

from engine.accountability import blind_index, name_case
from engine.citizen import Applicant, Case, Citizen, ServiceItem, identity
from engine.citizen import case_views as views
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.kernel import utcnow
from engine.platform import attach_uploads, channel, citizen_owner, claim_uploads, parse_material_files
from mobile_api.api.services import NULLABLE_STRING, citizen_of, error_responses, json_content, offered_item
from mobile_api.auth import RATE_LIMITS, RateRule, auth_state, citizen_required, rate_limit
from mobile_api.errors import Forbidden
from mobile_api.openapi_docs import object_schema as _obj
from mobile_api.request import int_arg, json_body

RATE_LIMITS.setdefault("apply_per_citizen", RateRule(
    30, 60, "application floods from one account: cases, identity decryption and engine work per request"))
IDEMPOTENCY_TTL_S = 24 * 3600
PENDING_TTL_S = 120  # a crashed request frees its key after this
REPLAY_WAIT_S = 5.0  # a concurrent retry waits this long for the first request's answer
FINAL_STATUSES = frozenset({"completed", "failed", "withdrawn"})
MAX_CASE_ID = 2**31 - 1
_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")


class RealNameRequired(Forbidden):
    code = "real_name_required"
    default_message = "请先完成实名认证后再申办"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    default_message = "该幂等键已用于内容不同的申请；新的申请请使用新的 Idempotency-Key"


class RequestInProgress(Conflict):
    code = "request_in_progress"
    default_message = "相同的申请正在处理中，请稍后重试"


# ------------------------------------------------------------------ schemas (OpenAPI 3.0)

_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_ANY_OBJ: dict[str, Any] = {"type": "object", "additionalProperties": True}
_TIME, _NULL_TIME = {"type": "string", "format": "date-time"}, {"type": "string", "format": "date-time",
                                                                 "nullable": True}
_SUMMARY: dict[str, Any] = {
    "id": _INT, "case_no": {**_STR, "example": "SENIOR-CARD-20261129-7KQ2M9XA"}, "service": _STR,
    "service_name": _STR, "status": {**_STR, "enum": sorted(views.STATUS_LABELS)},
    "status_label": {**_STR, "example": "已办结"}, "channel": _STR, "created_at": _TIME, "due_at": _NULL_TIME,
    "completed_at": _NULL_TIME}
CASE_SUMMARY_SCHEMA = _obj(*_SUMMARY, **_SUMMARY)
CASE_LIST_SCHEMA = _obj("items", "page", "size", "total", page=_INT, size=_INT, total=_INT, items={
    "type": "array", "items": {**CASE_SUMMARY_SCHEMA, "properties": {
        **CASE_SUMMARY_SCHEMA["properties"],
        "waiting_for_applicant": {**_BOOL, "description": "等待您补正或处理（列表中标“待您补正”）"}}}})
_CURRENT_STEP = _obj("name", "due_at", name=_STR, department=NULLABLE_STRING, department_name=NULLABLE_STRING,
                     waiting_for_applicant=_BOOL, task_id=_STR, due_at=_NULL_TIME,
                     reason={**NULLABLE_STRING, "description": "工作人员要求补正的理由（补正环节）"})
_STEP = _obj("kind", "action", "at", kind=_STR, action=_STR, step=NULLABLE_STRING, department=NULLABLE_STRING,
             department_name=NULLABLE_STRING, opinion=NULLABLE_STRING, at=_TIME)
_CERTIFICATE = _obj("id", "identifier", "name", "holder_name", "holder_code_masked", id=_INT, identifier=_STR,
                    name=_STR, number=_STR, issuer_name=_STR, issue_date=_STR, state=_STR,
                    holder_name={**_STR, "example": "王**"},
                    holder_code_masked={**_STR, "example": "310***********0273"})
_SUPPLEMENT_REQUEST = _obj(
    "reason", "items", "requested_at", reason=NULLABLE_STRING,
    items={"type": "array", "items": _STR, "description": "要求补正的事项（逐项列出）"},
    requested_by=NULLABLE_STRING, department=NULLABLE_STRING, requested_at=_TIME, due_at=_NULL_TIME,
    task_id=_STR, source={**_STR, "enum": ["officer", "process"]})
_REVIEW_STATE = _obj("status", status={**_STR, "enum": ["pending", "decided"]}, requested_at=_TIME,
                     reason=NULLABLE_STRING, verdict={**_STR, "enum": ["uphold", "overturn"]}, verdict_label=_STR,
                     outcome=NULLABLE_STRING, decision_reason=NULLABLE_STRING, decided_at=_TIME)
CASE_DETAIL_SCHEMA: dict[str, Any] = _obj(
    *_SUMMARY, "sla_paused", "current_steps", "steps", "decision", "result", "certificates", "subcases",
    "evaluation", "supplement", "review", "actions", **_SUMMARY,
    sla_paused={**_BOOL, "description": "等待补正，承诺时限暂停计时"},
    current_steps={"type": "array", "items": _CURRENT_STEP}, steps={"type": "array", "items": _STEP},
    decision={**_obj("outcome", outcome=_STR, rule=_STR, reason=_STR, inputs=_ANY_OBJ, table=_STR),
              "nullable": True, "description": "自动决定（秒批）的规则、理由和输入"},
    result=_obj(outcome=_STR, reason=_STR, decided_by=_STR),
    certificates={"type": "array", "items": _CERTIFICATE}, subcases={"type": "array", "items": _ANY_OBJ},
    evaluation={**_obj("level", "label", level=_INT, label=_STR,
                       rectification_case_no={**NULLABLE_STRING, "description": "差评整改件编号"}), "nullable": True},
    supplement={**_SUPPLEMENT_REQUEST, "nullable": True, "description": "待申请人补正的要求（无则为 null）"},
    review={**_REVIEW_STATE, "nullable": True, "description": "人工复核：申请中或已有结论"},
    actions={"type": "array", "items": {**_STR, "enum": ["supplement", "withdraw", "review", "evaluate"]},
             "description": "申请人现在可执行的操作"})
EVALUATION_SCHEMA = _obj("level", "label", "rectification_case_no", level=_INT, label=_STR,
                         rectification_case_no={**NULLABLE_STRING, "description": "差评整改件编号"})
APPLY_BODY = _obj("service", "form", service={**_STR, "example": "senior-card"},
                  form={**_ANY_OBJ, "description": "按事项申请表（GET /services/{slug} 的 form）填写"},
                  materials={"type": "object", "additionalProperties": {"type": "array", "items": {
                      "type": "string", "format": "uuid"}}, "example": {"近期免冠证件照": ["<POST /uploads 返回的 id>"]},
                             "description": "材料名称 → 上传文件编号（POST /uploads）。必需且不能由电子证照或共享数据"
                                            "获取的材料须至少上传一份，否则 422（fields 中 materials.<材料名称> 说明缺少的材料），"
                                            "事项允许容缺后补（may_follow）的除外"})
SUPPLEMENT_BODY = _obj(
    note={**_STR, "maxLength": 500, "description": "补正说明（必填）"},
    materials={"type": "object", "additionalProperties": {"type": "array", "items": _STR, "maxItems": 10},
               "description": "按补正事项（supplement.items）提交的材料：事项 → 上传文件编号（POST /uploads 的 id）"},
    form={**_ANY_OBJ, "description": "更正的申请信息（可选，按补正表单字段）"},
    data={**_ANY_OBJ, "description": "旧格式：补正内容原样记录（不推荐）"})
REASON_BODY = _obj(reason={**_STR, "maxLength": 500})
EVALUATION_BODY = _obj("level", level={**_INT, "minimum": 1, "maximum": 5,
                                       "description": "1 非常满意 … 5 非常不满意"},
                       comment={**_STR, "maxLength": 500})
_SSE = {"text/event-stream": {"schema": {**_STR, "description": (
    "id: <递增序号>\\nevent: status\\ndata: {case_id, case_no, status, status_label, events, final}")}}}


# ------------------------------------------------------------------ helpers
def _actor(citizen: Citizen) -> str:
    return f"citizen:{citizen.id}"


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def _summary(request: Request, case: Case) -> dict[str, Any]:
    catalog = request.app.ctx.catalog
    return {"id": case.id, "case_no": case.case_no, "service": case.service,
            "service_name": catalog.get(case.service).name if case.service in catalog else case.service,
            "status": case.status, "status_label": views.STATUS_LABELS.get(case.status, case.status),
            "channel": case.channel, "created_at": case.created_at.isoformat(), "due_at": _iso(case.due_at),
            "completed_at": _iso(case.completed_at)}


async def case_detail(request: Request, case_id: int, case: Case | None = None) -> dict[str, Any]:
    """``case_detail`` with the summary fields, e.g. the service's name; the case is re-read
    unless the caller has just read it."""
    case = case if case is not None else await views.load_case(case_id)
    return {**_summary(request, case), **await views.case_detail(request.app.ctx.engine, case)}


async def _my_case(request: Request, case_id: int) -> Case:
    """The caller's case, for reads: one query (the case joined to the caller's account) where
    ``_mine`` makes two; a miss reads the account to tell a vanished account (401) from 404."""
    if not 1 <= case_id <= MAX_CASE_ID:
        raise NotFound("办件不存在")
    principal = request.ctx.principal
    case = await views.citizen_case(principal.citizen_id, case_id)
    if case is None:
        await citizen_of(principal)  # 401 when the account is gone
        raise NotFound("办件不存在")
    return case


async def _mine(request: Request, case_id: int) -> tuple[Citizen, Case]:
    """The caller and their case; 404 for anyone else's (or a number no case can have)."""
    case = await _my_case(request, case_id)
    return await citizen_of(request.ctx.principal), case


async def _publish(request: Request, case: Case, status: str, kind: str) -> None:
    """Tell live listeners about an applicant's operation; best effort, the change is committed."""
    await request.app.ctx.engine.publish_status(case.id, status, [kind])


def _text(body: dict[str, Any], name: str, *, required: bool, label: str) -> str:
    value = body.get(name, "")
    problem = (f"{label}应为文本" if not isinstance(value, str)
               else f"请填写{label}" if required and not value.strip()
               else f"{label}不能超过 500 字" if len(value.strip()) > 500 else None)
    if problem:
        raise ValidationFailed(f"{label}填写有误", fields={name: problem})
    return str(value).strip()


_UPLOAD_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")


def _supplement_materials(value: Any) -> dict[str, list[str]]:
    """``{"<requested item>": ["<upload id>", …]}``: at most 10 items of at most 10 files each."""
    if value is None:
        return {}
    problem = None
    if not isinstance(value, dict) or len(value) > 10:
        problem = "补正材料应为对象：补正事项 → 上传文件编号列表（至多 10 项）"
    else:
        for item, ids in value.items():
            if not isinstance(ids, list) or not 1 <= len(ids) <= 10 or not all(
                    isinstance(i, str) and _UPLOAD_ID.fullmatch(i) for i in ids):
                problem = f"「{str(item)[:50]}」的文件应为 1–10 个上传文件编号"
                break
    if problem:
        raise ValidationFailed("补正材料填写有误", fields={"materials": problem})
    return {str(k): list(v) for k, v in value.items()}


def _check_real_name(item: ServiceItem, citizen: Citizen) -> None:
    """Every application needs a bound real name, at least at the item's level."""
    if citizen.id_hash is None:
        raise RealNameRequired(f"办理「{item.name}」需要先完成实名认证")
    if citizen.real_name_level < item.real_name_level:
        raise RealNameRequired(f"办理「{item.name}」需要实名等级 {item.real_name_level} 级，"
                               f"您当前为 {citizen.real_name_level} 级，请先完成更高等级的实名认证")


async def _apply(request: Request, item: ServiceItem, citizen: Citizen, form: dict[str, Any],
                 request_key: str | None = None, materials: Any = None) -> dict[str, Any]:
    """Validate (form, then the uploads named in ``materials``), read the applicant's real identity
    (logged), start the case, attach the uploads to it; its detail."""
    applications = request.app.ctx.applications
    applications.validate_form(item, form)  # before decrypting anything
    owner, now = citizen_owner(citizen.id), request.app.ctx.engine.deps.clock()
    chosen = parse_material_files(materials, [str(m.get("name")) for m in item.materials])
    await claim_uploads(owner, chosen, now)
    actor = _actor(citizen)
    real = await identity.read_identity(citizen, pii_keys=auth_state(request.app).pii_keys, actor=actor,
                                        purpose=f"在线申办「{item.name}」：确认申请人身份")
    phone = form.get("phone") if isinstance(form.get("phone"), str) else None
    applicant = Applicant(id_number=real.id_number, name=real.name, openid=citizen.openid, phone=phone)
    started = await applications.apply(item.slug, form, applicant=applicant, channel="mobile", actor=actor,
                                       request_key=request_key, uploaded={k: len(v) for k, v in chosen.items()})
    if chosen:
        await attach_uploads(started.id, owner, chosen, source="applicant", now=now)
    if real.access_log_id is not None:  # the citizen's access log names the case the read was for
        await name_case(real.access_log_id, case_id=started.id, case_no=started.case_no)
    # read as the detail endpoint reads it (one query with the certificates, no workflow state): the
    # view it builds is cached under the row's stamp, so the phone's next look at the case is free
    return await case_detail(request, started.id, await views.citizen_case(citizen.id, started.id))


async def _unabortable(work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """Finish ``work`` even when the client hangs up (Sanic then cancels the handler): a retry
    finds the case instead of a half-made one."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # nobody may be left to read it
    return await asyncio.shield(task)


def _created(body: dict[str, Any], status: int = 201, **headers: str) -> HTTPResponse:
    return json(body, status=status, headers={"Location": f"/api/v1/applications/{body['id']}", **headers})


def request_key(citizen: Citizen, key: str, fingerprint: str) -> str:
    """The digest a case started under (citizen, Idempotency-Key, body) carries in its timeline."""
    return hashlib.sha256(f"{citizen.id}\0{key}\0{fingerprint}".encode()).hexdigest()


async def _committed(citizen: Citizen, digest: str) -> int | None:
    """The case a request with this digest already committed (within the key's lifetime), if any.
    The database, not Redis, is the record: a process killed between committing the case and
    recording its answer leaves Redis saying "pending", and the retry must not start a second case."""
    return await views.case_started_by_request(citizen.openid, digest,
                                               utcnow() - timedelta(seconds=IDEMPOTENCY_TTL_S))


async def _idempotent(request: Request, citizen: Citizen, key: str, fingerprint: str,
                      work: Callable[[str], Awaitable[dict[str, Any]]]) -> HTTPResponse:
    """At most one case per (citizen, key): the first request works, a retry gets its answer (200),
    a concurrent one waits up to ``REPLAY_WAIT_S``; another body under the key is a 409. A case
    committed under the key is found in the database too, so a crash never makes a second one."""
    kv = request.app.ctx.kv
    slot = f"idempotency:applications:{citizen.id}:{hashlib.sha256(key.encode()).hexdigest()}"
    digest = request_key(citizen, key, fingerprint)

    async def replay(case_id: int) -> HTTPResponse:
        body = await case_detail(request, case_id)
        record = {"state": "done", "fingerprint": fingerprint, "body": body}
        await kv.set(slot, jsonlib.dumps(record, ensure_ascii=False), ex=IDEMPOTENCY_TTL_S)
        return _created(body, 200, **{"Idempotency-Replayed": "true"})

    async def run_and_record() -> dict[str, Any]:
        try:
            body = await work(digest)
        except BaseException:
            await kv.delete(slot)  # nothing was created: a retry may try again
            raise
        record = {"state": "done", "fingerprint": fingerprint, "body": body}
        await kv.set(slot, jsonlib.dumps(record, ensure_ascii=False), ex=IDEMPOTENCY_TTL_S)
        return body

    pending = jsonlib.dumps({"state": "pending", "fingerprint": fingerprint})
    deadline = time.monotonic() + REPLAY_WAIT_S
    next_lookup = time.monotonic()
    while True:
        if await kv.set_nx(slot, pending, ex=PENDING_TTL_S):
            committed = await _committed(citizen, digest)  # Redis forgot (restart, TTL): the database did not
            if committed is not None:
                return await replay(committed)
            return _created(await _unabortable(run_and_record()))
        raw = await kv.get(slot)
        record = jsonlib.loads(raw) if raw else None
        if record is not None and record.get("fingerprint") != fingerprint:
            raise IdempotencyKeyReused()
        if record is not None and record.get("state") == "done":
            return _created(record["body"], 200, **{"Idempotency-Replayed": "true"})
        if record is not None and time.monotonic() >= next_lookup:  # at most once a second while waiting
            next_lookup = time.monotonic() + 1.0
            if (committed := await _committed(citizen, digest)) is not None:
                return await replay(committed)  # the first attempt committed, then its process died
        if time.monotonic() >= deadline:
            raise RequestInProgress()
        await asyncio.sleep(0.05)  # the first request is still working (or just failed: claim again)


def _sse(seq: int, case: Case, status: str, events: list[str]) -> str:
    data = {"case_id": case.id, "case_no": case.case_no, "status": status,
            "status_label": views.STATUS_LABELS.get(status, status), "events": events,
            "final": status in FINAL_STATUSES}
    return f"id: {seq}\nevent: status\ndata: {jsonlib.dumps(data, ensure_ascii=False)}\n\n"


async def _stream_status(request: Request, case: Case) -> None:
    """SSE: the current status first (id above ``Last-Event-ID``), then each message published on
    ``case:<id>``, keep-alive comments in between; ends when the case reaches a final status."""
    config = request.app.config
    keepalive = min(max(float(config.get("SSE_KEEPALIVE_S", 15.0)), 0.05), config.RESPONSE_TIMEOUT / 2)
    max_s = float(config.get("SSE_MAX_S", 3600.0))
    last = request.headers.get("last-event-id", "").strip()
    seq = int(last) + 1 if last.isdigit() and len(last) <= 18 else 1
    subscription = await request.app.ctx.kv.subscribe(channel(case.id))
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for message in subscription:
                queue.put_nowait(message)
        finally:
            queue.put_nowait(None)  # the channel ended: close, the client reconnects

    pumping = asyncio.create_task(pump())
    try:
        case = await views.load_case(case.id)  # read after subscribing: no change falls in between
        response = await request.respond(content_type="text/event-stream; charset=utf-8",
                                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        await response.send("retry: 3000\n" + _sse(seq, case, case.status, []))
        status, started = case.status, time.monotonic()
        sent = started
        while status not in FINAL_STATUSES and time.monotonic() - started < max_s:
            try:  # a keep-alive when nothing was sent for a while; also how a gone client is noticed
                message = await asyncio.wait_for(queue.get(), max(0.0, sent + keepalive - time.monotonic()))
            except TimeoutError:
                await response.send(": keep-alive\n\n")
                sent = time.monotonic()
                continue
            if message is None:
                break
            try:
                data = jsonlib.loads(message)
                status, events = str(data["status"]), [str(e) for e in data.get("events") or []]
            except (ValueError, KeyError, TypeError):
                continue
            seq += 1
            await response.send(_sse(seq, case, status, events))
            sent = time.monotonic()
        await response.eof()
    finally:
        pumping.cancel()
        await asyncio.wait([pumping], timeout=1)
        await subscription.close()


# ------------------------------------------------------------------ blueprint
def blueprint() -> Blueprint:
    """A fresh blueprint per app (handlers, and so their OpenAPI entries, are per app)."""
    bp = Blueprint("applications")
    detail_ok = openapi.response(200, json_content(CASE_DETAIL_SCHEMA), "办件详情")
    operation_errors = error_responses(400, 401, 403, 404, 409, 413, 415, 422, 503)

    @bp.post("/applications")
    @openapi.summary("Apply / 在线申办")
    @openapi.description(
        "提交申请表，按事项流程立案；即办件可能当场办结。需完成事项要求等级的实名认证。带 Idempotency-Key 时，"
        "同一用户同一键只立案一次：重试返回 200 和首次的响应体；同一键提交不同内容返回 409 "
        "idempotency_key_reused；首次请求仍在处理时返回 409 request_in_progress。")
    @openapi.parameter("Idempotency-Key", str, "header", description="幂等键：1–255 个可见 ASCII 字符，保留 24 小时")
    @openapi.body(json_content(APPLY_BODY), required=True)
    @openapi.response(201, json_content(CASE_DETAIL_SCHEMA), "已立案")
    @openapi.response(200, json_content(CASE_DETAIL_SCHEMA), "幂等重试：首次立案的响应")
    @error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
    @citizen_required
    async def apply(request: Request) -> HTTPResponse:
        principal = request.ctx.principal
        await rate_limit(request, "apply_per_citizen", str(principal.citizen_id))
        body = json_body(request)
        service, form, materials = body.get("service"), body.get("form"), body.get("materials")
        if not isinstance(service, str) or not service.strip() or len(service) > 64:
            raise ValidationFailed("请选择要办理的事项", fields={"service": "请选择要办理的事项"})
        key = request.headers.get("idempotency-key")
        if key is not None and not _KEY_RE.fullmatch(key):
            raise ValidationFailed("幂等键格式不正确", fields={"Idempotency-Key": "应为 1–255 个可见 ASCII 字符"})
        item = offered_item(request, service.strip())
        citizen = await citizen_of(principal)
        _check_real_name(item, citizen)
        if not isinstance(form, dict):
            raise ValidationFailed("申请表填写有误", fields={"form": "申请表应为对象"})
        if key is None:
            return _created(await _unabortable(_apply(request, item, citizen, form, materials=materials)))
        canonical = jsonlib.dumps({"service": item.slug, "form": form, **({"materials": materials} if materials else {})},
                                  sort_keys=True, ensure_ascii=False)
        return await _idempotent(request, citizen, key, hashlib.sha256(canonical.encode()).hexdigest(),
                                 lambda digest: _apply(request, item, citizen, form, digest, materials))

    @bp.get("/applications")
    @openapi.summary("My applications / 我的办件")
    @openapi.parameter("page", int, "query", description="页码，从 1 开始")
    @openapi.parameter("size", int, "query", description="每页条数，1–100，默认 20")
    @openapi.response(200, json_content(CASE_LIST_SCHEMA), "办件列表（新的在前）")
    @error_responses(401, 403, 422, 503)
    @citizen_required
    async def my_applications(request: Request) -> HTTPResponse:
        page, size = int_arg(request, "page", 1, 100_000), int_arg(request, "size", 20, 100)
        openid = (await citizen_of(request.ctx.principal)).openid
        rows, total = await views.citizen_cases(openid, page=page, size=size)
        waiting = await views.waiting_for_applicant([c.id for c in rows])
        items = [{**_summary(request, c), "waiting_for_applicant": c.id in waiting} for c in rows]
        return json({"items": items, "page": page, "size": size, "total": total})

    @bp.get("/applications/<case_id:int>")
    @openapi.summary("Application detail / 办件详情")
    @openapi.description("状态、办理环节、当前步骤和时限、自动决定及理由、结果证照（脱敏）、子件和评价。")
    @detail_ok
    @error_responses(401, 403, 404, 503)
    @citizen_required
    async def application(request: Request, case_id: int) -> HTTPResponse:
        case = await _my_case(request, case_id)
        return json(await case_detail(request, case.id, case))

    @bp.post("/applications/<case_id:int>/supplement")
    @openapi.summary("Supplement / 补正材料")
    @openapi.description("办件等待申请人补正时提交补正内容；补正期间暂停计时，提交后恢复。适用于流程中的补正环节，"
                         "也适用于工作人员的补正要求（current_steps 中 waiting_for_applicant 为 true，reason 为补正理由）："
                         "data 原样记入办件供经办人查看，其中 materials（对象数组）追加到材料清单。")
    @openapi.body(json_content(SUPPLEMENT_BODY), required=True)
    @detail_ok
    @operation_errors
    @citizen_required
    async def supplement_case(request: Request, case_id: int) -> HTTPResponse:
        citizen, case = await _mine(request, case_id)
        body = json_body(request)
        if "data" in body and "note" not in body:  # the earlier shape: data recorded as given
            data = body.get("data")
            if not isinstance(data, dict):
                raise ValidationFailed("补正内容填写有误", fields={"data": "补正内容应为对象"})
            await views.supplement(request.app.ctx.engine, case, data, actor=_actor(citizen))
        else:
            note = _text(body, "note", required=True, label="补正说明")
            materials, form = _supplement_materials(body.get("materials")), body.get("form")
            if form is not None and not isinstance(form, dict):
                raise ValidationFailed("补正内容填写有误", fields={"form": "更正的申请信息应为对象"})
            await views.answer_supplement(request.app.ctx.engine, case, note=note, materials=materials,
                                          form=form, actor=_actor(citizen), owner=citizen_owner(citizen.id))
        return json(await case_detail(request, case.id))

    @bp.post("/applications/<case_id:int>/withdraw")
    @openapi.summary("Withdraw / 撤回申请")
    @openapi.description("受理前可撤回；请求体可省略。")
    @openapi.body(json_content(REASON_BODY))
    @detail_ok
    @operation_errors
    @citizen_required
    async def withdraw_case(request: Request, case_id: int) -> HTTPResponse:
        citizen, case = await _mine(request, case_id)
        reason = _text(json_body(request) if request.body else {}, "reason", required=False, label="撤回原因")
        await views.withdraw(request.app.ctx.engine, case, actor=_actor(citizen), reason=reason)
        await _publish(request, case, "withdrawn", "withdrawn")
        return json(await case_detail(request, case.id))

    @bp.post("/applications/<case_id:int>/review-request")
    @openapi.summary("Request human review / 申请人工复核")
    @openapi.description("对自动决定（秒批）申请人工复核（个人信息保护法第二十四条）；每个办件一次。")
    @openapi.body(json_content({**REASON_BODY, "required": ["reason"]}), required=True)
    @detail_ok
    @operation_errors
    @citizen_required
    async def review_request(request: Request, case_id: int) -> HTTPResponse:
        citizen, case = await _mine(request, case_id)
        reason = _text(json_body(request), "reason", required=True, label="复核理由")
        await views.request_review(request.app.ctx.engine, case, actor=_actor(citizen), reason=reason)
        await _publish(request, case, case.status, "review_requested")
        return json(await case_detail(request, case.id))

    @bp.post("/applications/<case_id:int>/evaluation")
    @openapi.summary("Evaluate / 好差评")
    @openapi.description("办结后评价一次；“不满意”“非常不满意”自动启动差评整改，返回整改件编号。评价人身份保密。")
    @openapi.body(json_content(EVALUATION_BODY), required=True)
    @openapi.response(201, json_content(EVALUATION_SCHEMA), "已评价")
    @operation_errors
    @citizen_required
    async def evaluate_case(request: Request, case_id: int) -> HTTPResponse:
        citizen, case = await _mine(request, case_id)
        body = json_body(request)
        level = body.get("level")
        if type(level) is not int or level not in views.LEVELS:
            raise ValidationFailed("评价等级无效", fields={"level": "评价等级应为 1–5 的整数"})
        comment = _text(body, "comment", required=False, label="评价内容")
        evaluator = blind_index(str(citizen.id), auth_state(request.app).pii_keys.blind_index_key)
        result = await views.evaluate(request.app.ctx.engine, case, evaluator_hash=evaluator, level=level,
                                comment=comment,
                                start_rectification=request.app.ctx.applications.start_rectification)
        await _publish(request, case, case.status, "evaluated")
        return json(result, status=201)

    @bp.get("/applications/<case_id:int>/events")
    @openapi.summary("Live status / 办件状态推送")
    @openapi.description(
        "Server-sent events：先推送当前状态，之后每次状态变化推送一条 status 事件，其间约每 15 秒一条保活注释；"
        "办结、撤回或异常（final 为 true）后结束。断线重连带 Last-Event-ID 时重新推送当前状态，序号更大。")
    @openapi.parameter("Last-Event-ID", str, "header", description="上次收到的事件序号")
    @openapi.response(200, _SSE, "text/event-stream")
    @error_responses(401, 403, 404, 503)
    @citizen_required
    async def events(request: Request, case_id: int) -> None:
        case = await _my_case(request, case_id)
        await _stream_status(request, case)

    return bp


__all__ = ["CASE_DETAIL_SCHEMA", "CASE_LIST_SCHEMA", "case_detail", "EVALUATION_SCHEMA", "IdempotencyKeyReused",
           "RealNameRequired", "RequestInProgress", "blueprint"]
