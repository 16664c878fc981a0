"""The staff workbench API (工作人员), for staff tokens only:

    POST /staff/login {username, password}      → {access_token, expires_in, staff}
    GET  /staff/tasks?status=&due=&page=&size=  → my departments' tasks, by due time, with badge counts
    GET  /staff/tasks/{id}                      → task, case summary (masked), form, materials, timeline,
                                                  补正 rounds, return_targets, colleagues, actions
    POST /staff/tasks/{id}/claim · /unclaim · /complete {data, opinion?} · /comment {text}

Rules (department, claims, conflicts) live in ``engine.workbench.staff``; this layer parses and documents.
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json
from sanic_ext.extensions.openapi import openapi

from engine.errors import ValidationFailed
from engine.workbench import HumanTask, task_detail
from engine.workbench import staff as desk
from mobile_api.api.services import NULLABLE_STRING, error_responses, json_content
from mobile_api.openapi_docs import object_schema as _obj
from mobile_api.request import int_arg, json_body
from mobile_api.staff_auth import login, staff_required

TASK_ROLES = sorted(desk.TASK_ROLES)
_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_TIME, _NULL_TIME = {"type": "string", "format": "date-time"}, {"type": "string", "format": "date-time",
                                                                 "nullable": True}
_ANY_OBJ: dict[str, Any] = {"type": "object", "additionalProperties": True}



STAFF_SCHEMA = _obj("username", "name", "departments", "roles", username=_STR, name=_STR,
                    departments={"type": "array", "items": _STR}, roles={"type": "array", "items": _STR})
LOGIN_BODY = _obj("username", "password", username={**_STR, "example": "samr01"}, password=_STR)
LOGIN_SCHEMA = _obj("access_token", "expires_in", "staff", access_token=_STR, token_type=_STR,
                    expires_in=_INT, staff=STAFF_SCHEMA)
TASK_SCHEMA = _obj(
    "id", "kind", "name", "state", "case_id", "case_no", "due_at", id=_STR,
    kind={**_STR, "enum": ["bpmn", "escalation", "review", "cosign", "supplement"],
          "description": "bpmn 流程任务；cosign 加签任务（由加签人签署）；supplement 补正（窗口件由窗口代办）；"
                         "escalation 超期督办；review 人工复核"}, task_spec=_STR, name=_STR,
    department=NULLABLE_STRING, department_name=NULLABLE_STRING, form_key=NULLABLE_STRING,
    state={**_STR, "enum": ["ready", "claimed", "waiting", "pending", "completed", "cancelled"],
           "description": "waiting：等待申请人补正；pending：后加签，待本任务办结"}, assignee=NULLABLE_STRING,
    case_id=_INT, case_no=_STR, service=_STR, created_at=_TIME, due_at=_NULL_TIME, overdue=_BOOL,
    completed_at=_NULL_TIME, completed_by=NULLABLE_STRING,
    on_behalf_of={**NULLABLE_STRING, "description": "代理：本人代其办理的被代理人用户名（页面显示“代 张三”），否则 null"},
    on_behalf_of_name={**NULLABLE_STRING, "description": "被代理人姓名"})
COUNTS_SCHEMA = _obj(*desk.STATUSES, *desk.DUES, **{k: _INT for k in (*desk.STATUSES, *desk.DUES)})
INBOX_SCHEMA = _obj("items", "page", "size", "total", "counts", page=_INT, size=_INT, total=_INT,
                    items={"type": "array", "items": {**TASK_SCHEMA, "properties": {
                        **TASK_SCHEMA["properties"],
                        "assignee_name": {**NULLABLE_STRING, "description": "认领人显示名：姓名（部门）"}}}},
                    counts=COUNTS_SCHEMA)
EVENT_SCHEMA = _obj("kind", "action", "at", "actor_name", kind=_STR, action=_STR, step=NULLABLE_STRING,
                    task_id=NULLABLE_STRING, actor=NULLABLE_STRING,
                    actor_name={**_STR, "description": "办理人显示名：申请人、工作人员姓名（部门）或 系统",
                                "example": "王芳（市场监管局）"},
                    department=NULLABLE_STRING, department_name=NULLABLE_STRING,
                    opinion=NULLABLE_STRING, at=_TIME,
                    decision={**NULLABLE_STRING, "description": "加签意见：approve 同意 / reject 不同意"},
                    on_behalf_of={**NULLABLE_STRING, "description": "代理：actor 代其办理的工作人员"},
                    actor_label={**NULLABLE_STRING, "description": "页面显示的办理人，如“李四 代 张三”"})
SUPPLEMENT_ROUND = _obj(
    "reason", "items", "requested_by", "requested_at", "due_at", "supplied_at", "answer", reason=NULLABLE_STRING,
    items={"type": "array", "items": _STR, "description": "要求补正的事项"}, requested_by=NULLABLE_STRING,
    requested_by_name={**NULLABLE_STRING, "description": "提出补正的人：工作人员姓名（部门）或 系统"},
    department=NULLABLE_STRING, requested_at=_NULL_TIME, due_at=_NULL_TIME, supplied_by=NULLABLE_STRING,
    supplied_at=_NULL_TIME, task_id=_STR, source={**_STR, "enum": ["officer", "process"],
                                                   "description": "officer 工作人员要求；process 流程中的补正环节"},
    answer={**_obj("materials", note=NULLABLE_STRING,
                   materials={"type": "object", "additionalProperties": {"type": "array", "items": _STR},
                              "description": "补正事项 → 上传文件编号"},
                   form={**_ANY_OBJ, "nullable": True}, files={"type": "array", "items": _ANY_OBJ}),
            "nullable": True, "description": "申请人的补正（未提交为 null）"},
    data={**_ANY_OBJ, "nullable": True, "description": "补正提交的原始内容"})
FILE_SCHEMA = _obj("id", "name", "content_type", "size", "url", "source", id=_STR, name=_STR,
                   content_type={**_STR, "enum": ["application/pdf", "image/jpeg", "image/png"]}, size=_INT,
                   url={**_STR, "description": "GET 此地址（工作人员令牌）查看文件，每次查看留痕"},
                   source={**_STR, "enum": ["applicant", "window", "supplement"]}, material=NULLABLE_STRING,
                   uploaded_at=_TIME)
MATERIAL_SCHEMA = {**_obj("name", "status", "files", name=_STR,
                          status={**_STR, "enum": ["satisfied", "received", "to_follow", "not_provided", "missing"],
                                  "description": "satisfied 电子证照/共享数据；received 已收到文件；to_follow 容缺后补；"
                                                 "not_provided 非必需、未提交；missing 缺少"},
                          files={"type": "array", "items": FILE_SCHEMA}), "additionalProperties": True}
DETAIL_SCHEMA = _obj(
    "task", "case", "form", "materials", "timeline", "supplements", "return_targets", "colleagues", "actions",
    "blocked", task={**TASK_SCHEMA, "properties": {
        **TASK_SCHEMA["properties"],
        "assignee_name": {**NULLABLE_STRING, "description": "认领人显示名：姓名（部门）"}}},
    case=_obj("id", "case_no", "service", "status", id=_INT, case_no=_STR, service=_STR, service_name=_STR,
              status=_STR, status_label=_STR, channel=_STR, applicant_name=NULLABLE_STRING,
              applicant_id=NULLABLE_STRING, created_at=_TIME, due_at=_NULL_TIME, sla_paused=_BOOL),
    form={**_ANY_OBJ, "nullable": True, "description": "任务表单的渲染说明（forms.ui_spec）"},
    materials={"type": "array", "items": MATERIAL_SCHEMA, "description": "材料清单及其文件（申请人上传、窗口收件、补正）"},
    application={**_obj("fields", title=NULLABLE_STRING, fields={"type": "array", "items": _obj(
        "path", "label", "value", "masked", path=_STR, label=_STR, group=NULLABLE_STRING, value=_STR, masked=_BOOL)}),
        "description": "申请表内容；身份证号、电话、姓名、详细地址脱敏（masked），完整值用 POST …/reveal 查看并留痕"},
    timeline={"type": "array", "items": EVENT_SCHEMA},
    supplements={"type": "array", "items": SUPPLEMENT_ROUND, "description": "本办件的补正记录（要求与提交），早的在前"},
    review={**_obj("verdicts", decision={**_ANY_OBJ, "nullable": True, "description": "被复核的自动决定"},
                   result=_ANY_OBJ, outcome={**NULLABLE_STRING, "description": "approved | rejected"},
                   citizen_reason=NULLABLE_STRING, requested_at=_NULL_TIME,
                   verdicts={"type": "array", "items": _obj("value", "label", value=_STR, label=_STR)},
                   decided={**_ANY_OBJ, "nullable": True}),
            "nullable": True, "description": "人工复核任务：被复核的决定、申请人的理由、可选结论"},
    rectification={**_obj("level", "comment", level=_STR, comment=_STR, case_no=NULLABLE_STRING,
                          department=NULLABLE_STRING, department_name=NULLABLE_STRING,
                          deadlines={**_ANY_OBJ, "nullable": True},
                          original={**_ANY_OBJ, "nullable": True, "description": "被评价的原办件"},
                          phone_masked={**NULLABLE_STRING, "description": "评价人联系电话（脱敏）；完整号码经 reveal-phone 查看并记录"}),
                   "nullable": True, "description": "差评整改任务：评价等级、评价内容、原办件、联系电话（脱敏）"},
    return_targets={"type": "array", "description": "可退回到的已办人工环节（step 即 return 的 to_step）",
                    "items": _obj("step", "name", step=_STR, name=_STR)},
    colleagues={"type": "array", "description": "本部门其他工作人员（转办、加签的候选人）",
                "items": _obj("username", "name", username=_STR, name=_STR)},
    actions={"type": "array", "description": "当前用户现在可执行的操作",
             "items": {**_STR, "enum": ["claim", "unclaim", "complete", "return", "supplement_request", "transfer",
                                        "add_signer", "sign", "withdraw", "comment"]}},
    blocked={"type": "object", "additionalProperties": _STR,
             "description": "本任务的其他操作为何现在不能执行（操作 → 中文原因，页面在置灰的按钮旁显示），"
                            "如 complete：需等待加签人签署意见；会签须由不同人员分别签署；回避"})
COMPLETE_BODY = _obj("data", data={**_ANY_OBJ, "description": "按任务表单填写"},
                     opinion={**_STR, "maxLength": 500, "description": "办理意见（写入办件时间线）"},
                     cc={"type": "array", "items": _STR, "maxItems": 10,
                         "description": "抄送：同事用户名（GET /staff/colleagues），办结后他们收到抄送消息，已读留回执"})
COMMENT_BODY = _obj("text", text={**_STR, "minLength": 1, "maxLength": 500})
COMMENT_SCHEMA = _obj("task_id", "actor", "opinion", "at", task_id=_STR, actor=_STR, department=NULLABLE_STRING,
                      opinion=_STR, at=_TIME)


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name)
    if value in (None, "", "all"):
        return None
    if value not in allowed:
        raise ValidationFailed("筛选条件无效", fields={name: f"应为 {' / '.join(allowed)} 之一"})
    return value


def _text(body: dict[str, Any], name: str, label: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()) or len(value.strip()) > 500:
        raise ValidationFailed(f"{label}填写有误", fields={name: f"{label}应为 1–500 字的文本"})
    return value.strip() or None


def _task(request: Request, task: HumanTask) -> HTTPResponse:
    return json(desk.task_view(task, request.app.ctx.engine.deps.departments))


def blueprint() -> Blueprint:
    """A fresh blueprint per app (handlers, and so their OpenAPI entries, are per app)."""
    bp = Blueprint("staff", url_prefix="/staff")
    task_ok = openapi.response(200, json_content(TASK_SCHEMA), "任务的最新状态")
    act_errors = error_responses(401, 403, 404, 409, 503)

    @bp.post("/login")
    @openapi.summary("Staff login / 工作人员登录")
    @openapi.description("用户名密码登录，返回工作人员访问令牌。同一网络地址连续 5 次密码错误，该地址登录此账号暂停 15 分钟（429 account_locked，"
                         "见 Retry-After）；按来源地址限流，同一账号在多个地址被猜测时逐次放慢而不锁定。用户不存在与密码错误返回相同的 401。")
    @openapi.body(json_content(LOGIN_BODY), required=True)
    @openapi.response(200, json_content(LOGIN_SCHEMA), "登录成功")
    @error_responses(400, 401, 413, 415, 422, 429, 503)
    async def staff_login(request: Request) -> HTTPResponse:
        body = json_body(request)
        username, password = body.get("username"), body.get("password")
        fields = {k: "请填写" + label for k, label, v in (("username", "用户名", username), ("password", "密码", password))
                  if not isinstance(v, str) or not v.strip() or len(v) > 256}
        if fields:
            raise ValidationFailed("请填写用户名和密码", fields=fields)
        return json(await login(request, str(username), str(password)))

    @bp.get("/tasks")
    @openapi.summary("Inbox / 待办列表")
    @openapi.description("本部门的任务和指派给本人的加签任务（督办人员另见督办中心），按到期时间排序（无时限的在后）。status：ready 待认领、"
                         "mine 我已认领、done 我已办结、waiting 等待申请人补正（缺省：待认领 + 我已认领）；due：overdue 已超期、today 今日到期"
                         "（北京时间）、soon 24 小时内到期。counts 为各筛选项的数量（到期类在当前 status 范围内）；"
                         "total 与 counts 最多计到 1000（页面显示 999+），积压再多查询耗时也不变。")
    @openapi.parameter("status", str, "query", description="ready | mine | done | waiting")
    @openapi.parameter("due", str, "query", description="overdue | today | soon")
    @openapi.parameter("page", int, "query", description="页码，从 1 开始")
    @openapi.parameter("size", int, "query", description="每页条数，1–100，默认 20")
    @openapi.response(200, json_content(INBOX_SCHEMA), "任务列表")
    @error_responses(401, 403, 422, 503)
    @staff_required(TASK_ROLES)
    async def tasks(request: Request) -> HTTPResponse:
        status, due = _choice(request, "status", desk.STATUSES), _choice(request, "due", desk.DUES)
        page, size = int_arg(request, "page", 1, 100_000), int_arg(request, "size", 20, 100)
        return json(await desk.inbox(request.ctx.staff, status=status, due=due, page=page, size=size,
                                     now=request.app.ctx.engine.deps.clock(),
                                     department_names=request.app.ctx.engine.deps.departments))

    @bp.get("/tasks/<task_id:str>")
    @openapi.summary("Task detail / 任务详情")
    @openapi.description("任务、办件概要（申请人脱敏）、任务表单、材料清单、办件时间线、补正记录，以及页面可提供的操作："
                         "return_targets（可退回的已办环节）、colleagues（本部门其他人员，供转办、加签）、actions（当前用户"
                         "现在可执行的操作）。非本部门任务返回 403（加签人可查看本人的加签任务）。")
    @openapi.response(200, json_content(DETAIL_SCHEMA), "任务详情")
    @error_responses(401, 403, 404, 503)
    @staff_required(TASK_ROLES)
    async def task(request: Request, task_id: str) -> HTTPResponse:
        return json(await task_detail(request.app.ctx.engine, request.ctx.staff, task_id))

    @bp.post("/tasks/<task_id:str>/claim")
    @openapi.summary("Claim / 认领任务")
    @openapi.description("认领本部门待认领的任务；已被他人认领返回 409 task_already_claimed，已办结返回 409 "
                         "task_already_completed；已签署（或已认领）本办件另一份会签返回 409 "
                         "already_signed_this_case；按回避规定不能办理返回 409 recusal_required。")
    @task_ok
    @act_errors
    @staff_required(TASK_ROLES)
    async def claim(request: Request, task_id: str) -> HTTPResponse:
        return _task(request, await desk.claim(request.ctx.staff, task_id, now=request.app.ctx.engine.deps.clock(),
                                               engine=request.app.ctx.engine))

    @bp.post("/tasks/<task_id:str>/unclaim")
    @openapi.summary("Unclaim / 退回待认领")
    @openapi.description("仅认领人可退回；未认领返回 409 task_not_claimed，他人认领返回 409 task_already_claimed。")
    @task_ok
    @act_errors
    @staff_required(TASK_ROLES)
    async def unclaim(request: Request, task_id: str) -> HTTPResponse:
        return _task(request, await desk.unclaim(request.ctx.staff, task_id,
                                                 now=request.app.ctx.engine.deps.clock()))

    @bp.post("/tasks/<task_id:str>/complete")
    @openapi.summary("Complete / 办理任务")
    @openapi.description("提交任务表单并办结（待认领的任务先自动认领）。数据不符合表单返回 422 并标注 fields；"
                         "他人已认领、已转办给他人或已办结返回 409，等待申请人补正返回 409 waiting_for_applicant，"
                         "前加签未签署返回 409 waiting_for_added_signer，加签任务请用 sign（409 cosign_use_sign）。"
                         "窗口件的补正任务（kind=supplement）由窗口人员办结，即代申请人补正（data 为补正内容）。"
                         "人工复核任务（kind=review）的 data 为 {verdict: uphold 维持 | overturn 撤销原决定, reason}："
                         "撤销不予决定即签发结果证照，撤销准予决定即撤销已发证照（办件须已办结，否则 409）。"
                         "办理意见写入办件时间线。")
    @openapi.body(json_content(COMPLETE_BODY), required=True)
    @task_ok
    @error_responses(400, 401, 403, 404, 409, 413, 415, 422, 503)
    @staff_required(TASK_ROLES)
    async def complete(request: Request, task_id: str) -> HTTPResponse:
        body = json_body(request)
        data = body.get("data", {})
        if not isinstance(data, dict):
            raise ValidationFailed("表单数据填写有误", fields={"data": "表单数据应为对象"})
        opinion = _text(body, "opinion", "办理意见", required=False)
        catalog = request.app.ctx.catalog

        def certificate_type_of(service: str) -> str | None:
            return catalog.get(service).raw.get("result_certificate") if service in catalog else None

        return _task(request, await desk.complete(request.app.ctx.engine, request.ctx.staff, task_id, data,
                                                  opinion, certificate_type_of=certificate_type_of,
                                                  cc=body.get("cc") or None))

    @bp.post("/tasks/<task_id:str>/comment")
    @openapi.summary("Comment / 批注")
    @openapi.description("在办件时间线上留下批注（记录人员、部门和时间）。")
    @openapi.body(json_content(COMMENT_BODY), required=True)
    @openapi.response(201, json_content(COMMENT_SCHEMA), "已批注")
    @error_responses(400, 401, 403, 404, 413, 415, 422, 503)
    @staff_required(TASK_ROLES)
    async def comment(request: Request, task_id: str) -> HTTPResponse:
        text = _text(json_body(request), "text", "批注", required=True)
        result = await desk.comment(request.ctx.staff, task_id, str(text), now=request.app.ctx.engine.deps.clock())
        return json(result, status=201)

    return bp


__all__ = ["COMMENT_SCHEMA", "DETAIL_SCHEMA", "INBOX_SCHEMA", "LOGIN_SCHEMA", "TASK_SCHEMA", "blueprint"]
