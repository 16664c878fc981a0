"""Certificate management for the issuing department (证照管理), wrapping ``engine.certificates.lifecycle``:

    GET  /staff/certificates?q=                    by identifier (证照标识) or the holder's ID number / credit code
    GET  /staff/certificates/{id}                  one certificate with its history (issue, state changes)
    POST /staff/certificates/{id}/suspend {reason}  暂停 (01 → 02)
    POST /staff/certificates/{id}/revoke {reason}   吊销 (01/02 → 03, final)
    POST /staff/certificates/{id}/restore {reason}  恢复 (02 → 01)

Only officers and supervisors of the department that issued the certificate's type (and admins)
see or change it. ``/certificates/verify`` answers the new state at the next scan.
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json
from sanic_ext.extensions.openapi import openapi

from engine.certificates import CertState, effective_state, lifecycle
from engine.kernel import CST
from mobile_api.auth import auth_state
from mobile_api.openapi_docs import error_documenter, json_content
from mobile_api.openapi_docs import object_schema as _obj
from mobile_api.request import json_body
from mobile_api.staff_auth import staff_required

error_responses = error_documenter({
    400: "请求体不是有效的 JSON", 401: "未登录、凭证无效或已过期",
    403: "不是签发该证照的部门（not_issuing_department）或角色无权", 404: "证照不存在",
    409: "证照当前状态不能执行该操作（certificate_state_conflict），如已吊销", 413: "请求内容过大",
    415: "不是 application/json", 422: "字段校验失败（fields 标注字段）", 503: "依赖服务暂不可用"})
_STR, _NSTR, _INT = {"type": "string"}, {"type": "string", "nullable": True}, {"type": "integer"}
STATE = {"type": "string", "enum": [s.value for s in CertState], "description": "01 有效 02 暂停 03 吊销 04 注销 05 过期"}
CERT = _obj("id", "identifier", "name", "state", "state_label", id=_INT, identifier=_STR, name=_STR, number=_STR,
            type_code=_STR, issuer_name=_STR, department={**_NSTR, "description": "签发部门代码"},
            holder_name={**_STR, "description": "脱敏"}, holder_code_masked=_STR, issue_date=_STR,
            valid_to=_NSTR, state=STATE, state_label=_STR, case_id={**_INT, "nullable": True})
EVENT = _obj("at", "kind", at=_STR, kind={**_STR, "enum": ["certificate.issue", "certificate.state"]},
             actor=_NSTR, **{"from": _NSTR}, to=_NSTR, reason=_NSTR, case_no=_NSTR)
DETAIL = {**CERT, "properties": {**CERT["properties"], "history": {"type": "array", "items": EVENT},
                                 "may_manage": {"type": "boolean"}}}
REASON_BODY = _obj("reason", reason={**_STR, "maxLength": lifecycle.REASON_MAX, "description": "原因（记入审计与证照历史）"})


def _manager(request: Request) -> lifecycle.Manager:
    staff = request.ctx.staff
    return lifecycle.Manager(staff.username, list(staff.roles or []), list(staff.departments or []))


def _types(request: Request) -> dict[str, dict[str, Any]]:
    return lifecycle.certificate_types(request.app.ctx.settings.PROCESSES_DIR)


def _view(request: Request, row: Any) -> dict[str, Any]:
    today = request.app.ctx.engine.deps.clock().astimezone(CST).date()
    return lifecycle.staff_view(row, _types(request), effective_state(row, today))


def blueprint() -> Blueprint:
    bp = Blueprint("staff_certificates", url_prefix="/staff")

    @bp.get("/certificates")
    @openapi.summary("Find certificates / 查找证照")
    @openapi.description("按证照标识或持证人证件号码（公民身份号码、统一社会信用代码）查找本部门签发的证照；"
                         "按持证人查找记入个人信息访问日志。")
    @openapi.parameter("q", str, "query", required=True, description="证照标识或持证人证件号码")
    @openapi.response(200, json_content(_obj("items", items={"type": "array", "items": CERT})), "证照")
    @error_responses(401, 403, 422)
    @staff_required(lifecycle.MANAGE_ROLES)
    async def find_certificates(request: Request) -> HTTPResponse:
        rows = await lifecycle.search(request.args.get("q") or "", _manager(request), _types(request),
                                      pii_key=auth_state(request.app).pii_keys.blind_index_key)
        return json({"items": [_view(request, r) for r in rows]})

    @bp.get("/certificates/<cert_id:int>")
    @openapi.summary("Certificate and history / 证照及其历史")
    @openapi.description("证照信息（持证人脱敏）与历史：签发、每次暂停/吊销/恢复（时间、操作人、原因）。")
    @openapi.response(200, json_content(DETAIL), "证照")
    @error_responses(401, 403, 404)
    @staff_required(lifecycle.MANAGE_ROLES)
    async def certificate_detail(request: Request, cert_id: int) -> HTTPResponse:
        row = await lifecycle.find(cert_id)
        if not lifecycle.may_manage(row, _manager(request), _types(request)):
            raise lifecycle.NotIssuingDepartment()
        return json({**_view(request, row), "history": await lifecycle.history(row.identifier), "may_manage": True})

    def _action(action: str, summary: str, description: str) -> None:
        @openapi.summary(summary)
        @openapi.description(description)
        @openapi.body(json_content(REASON_BODY), required=True)
        @openapi.response(200, json_content(CERT), "变更后的证照")
        @error_responses(400, 401, 403, 404, 409, 413, 415, 422)
        @staff_required(lifecycle.MANAGE_ROLES)
        async def handler(request: Request, cert_id: int) -> HTTPResponse:
            outbox, engine = request.app.ctx.engine.deps.notifications, request.app.ctx.engine

            async def tell_holder(conn: Any, changed: Any, reason: str) -> None:
                if outbox is not None:  # the holder's message centre, with the state change
                    await outbox.certificate_state(conn, certificate_name=changed.name, case_id=changed.case_id,
                                                   state_label=CertState(changed.state).label, reason=reason,
                                                   now=engine.deps.clock())

            row = await lifecycle.change_state(cert_id, action, _manager(request), json_body(request).get("reason"),
                                               _types(request), after=tell_holder)
            return json(_view(request, row))

        handler.__name__ = f"certificate_{action}"
        bp.add_route(handler, f"/certificates/<cert_id:int>/{action}", methods=["POST"], name=f"certificate_{action}")

    _action("suspend", "Suspend / 暂停证照", "签发部门暂停证照（01 有效 → 02 暂停），须说明原因；扫码核验随即答复“暂停”。")
    _action("revoke", "Revoke / 吊销证照", "签发部门吊销证照（有效或暂停 → 03 吊销，不可恢复），须说明原因；扫码核验随即答复“吊销”。")
    _action("restore", "Restore / 恢复证照", "签发部门恢复暂停的证照（02 → 01），须说明原因。")
    return bp


__all__ = ["blueprint"]
