"""Signed PDF documents (``engine.certificates.documents``):

    GET /certificates/{id}/pdf                          the holder's e-certificate (another citizen: 404)
    GET /applications/{id}/documents                    the applicant's list: 受理回执, 补正告知书, 不予许可决定书
    GET /applications/{id}/documents/{kind}             one of them as PDF (kind: receipt | supplement | refusal)
    GET /staff/cases/{id}/documents                     the same list for the case's officers
    GET /staff/cases/{id}/documents/{kind}              the PDF (access-logged: it names the applicant)
    GET /documents/ca.pem                               public: the CA certificate to trust in a PDF reader

Every PDF carries a PAdES signature by the issuing department's key.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json, raw
from sanic_ext.extensions.openapi import openapi

from engine.certificates import documents
from engine.certificates import store as certificate_store
from engine.citizen import case_views as views
from engine.citizen import find_citizen
from engine.errors import Forbidden, NotFound
from engine.workbench import staff as desk
from mobile_api.auth import TokenInvalid, auth_state, citizen_required
from mobile_api.openapi_docs import error_documenter, json_content
from mobile_api.openapi_docs import object_schema as _obj
from mobile_api.staff_auth import staff_required

error_responses = error_documenter({
    401: "未登录、凭证无效或已过期", 403: "非本人或非经办部门", 404: "证照、办件或文书不存在（或不是您的）",
    503: "文书签章或字体未配置，或依赖服务暂不可用"})
PDF = {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}
LIST_SCHEMA = _obj("items", items={"type": "array", "items": _obj("kind", "title", "url", kind={"type": "string"},
                                                                   title={"type": "string"},
                                                                   url={"type": "string"})})
MAX_ID = 2**31 - 1


class DocumentForbidden(Forbidden):
    code = "document_forbidden"
    default_message = "只有经办部门的工作人员可以查看该办件的文书"


def _facts(request: Request) -> dict[str, documents.ServiceFacts]:
    out = {}
    for item in request.app.ctx.catalog.items(include_platform=True):
        promised = item.raw.get("promised_limit") or {}
        out[item.slug] = documents.ServiceFacts(
            name=item.name, department=item.department, legal_basis=tuple(item.raw.get("legal_basis") or ()),
            promised=f"{promised.get('value')}个{promised.get('unit', '工作日')}" if promised.get("value") else "即办")
    return out


def _pdf(body: bytes, name: str) -> HTTPResponse:
    return raw(body, content_type="application/pdf", headers={
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}.pdf", "Cache-Control": "private, no-store"})


async def _applicant_case(request: Request, case_id: int) -> Any:
    if not 1 <= case_id <= MAX_ID:
        raise NotFound("办件不存在")
    case = await views.citizen_case(request.ctx.principal.citizen_id, case_id)
    if case is None:
        raise NotFound("办件不存在")
    return case


async def _officer_case(request: Request, case_id: int) -> Any:
    if not 1 <= case_id <= MAX_ID:
        raise NotFound("办件不存在")
    case = await documents.find_case(case_id)
    if case is None:
        raise NotFound("办件不存在")
    staff = request.ctx.staff
    if not await documents.officer_may_read(case, desk.departments_of(staff), list(staff.roles or [])):
        raise DocumentForbidden()
    return case


def _kind(kind: str) -> str:
    if kind not in documents.KINDS:
        raise documents.DocumentNotFound()
    return kind


async def _case_document(request: Request, case: Any, kind: str, reader: tuple[str, str | None] | None) -> HTTPResponse:
    facts = _facts(request).get(case.service) or documents.ServiceFacts(name=case.service, department="window")
    engine = request.app.ctx.engine
    body = await documents.case_pdf(engine, case, _kind(kind), keys=request.app.ctx.document_keys, facts=facts,
                                    now=engine.deps.clock(), reader=reader,
                                    pii_key=auth_state(request.app).pii_keys.blind_index_key)
    return _pdf(body, f"{documents.KINDS[kind]}-{case.case_no}")


def blueprint() -> Blueprint:
    bp = Blueprint("documents")

    @bp.get("/certificates/<cert_id:int>/pdf")
    @openapi.summary("E-certificate as signed PDF / 电子证照版式文件")
    @openapi.description("持证人本人下载电子证照 PDF：证照标识、持证人、有效期、颁证机构和核验二维码（7 日内有效的签名令牌，"
                         "核验时以登记库当前状态为准），带颁证部门的 PAdES 电子签章。不是本人的证照返回 404。")
    @openapi.response(200, PDF, "签章的 PDF")
    @error_responses(401, 403, 404, 503)
    @citizen_required
    async def certificate_pdf(request: Request, cert_id: int) -> HTTPResponse:
        citizen = await find_citizen(request.ctx.principal.citizen_id)
        if citizen is None:
            raise TokenInvalid()
        row = await certificate_store.holder_certificate(cert_id, citizen.id_hash) if citizen.id_hash \
            and 1 <= cert_id <= MAX_ID else None
        if row is None:
            raise NotFound("电子证照不存在")
        engine = request.app.ctx.engine
        body = await documents.certificate_pdf(row, keys=request.app.ctx.document_keys,
                                               qr_signer=engine.deps.keyring.active, now=engine.deps.clock(),
                                               services=_facts(request), departments=dict(engine.deps.departments))
        return _pdf(body, f"{row.name}-{row.number}")

    @bp.get("/applications/<case_id:int>/documents")
    @openapi.summary("Documents of my case / 办件文书")
    @openapi.description("本人办件现有的文书：受理回执（都有）、补正告知书（被要求补正后）、不予许可决定书（不予许可办结后）。")
    @openapi.response(200, json_content(LIST_SCHEMA), "文书列表")
    @error_responses(401, 403, 404, 503)
    @citizen_required
    async def my_documents(request: Request, case_id: int) -> HTTPResponse:
        case = await _applicant_case(request, case_id)
        items = [{**d, "url": f"/api/v1/applications/{case.id}/documents/{d['kind']}"}
                 for d in await documents.available(case)]
        return json({"items": items})

    @bp.get("/applications/<case_id:int>/documents/<kind:str>")
    @openapi.summary("One document of my case as signed PDF / 下载办件文书")
    @openapi.description("kind：receipt 受理回执、supplement 补正告知书（所列补正内容和期限）、refusal 不予许可决定书（理由、"
                         "法律依据和救济途径）。带办理部门的 PAdES 电子签章。办件没有这份文书时返回 404 document_not_found。")
    @openapi.response(200, PDF, "签章的 PDF")
    @error_responses(401, 403, 404, 503)
    @citizen_required
    async def my_document(request: Request, case_id: int, kind: str) -> HTTPResponse:
        case = await _applicant_case(request, case_id)
        return await _case_document(request, case, kind, None)

    @bp.get("/staff/cases/<case_id:int>/documents")
    @openapi.summary("Documents of a case (staff) / 办件文书（经办人员）")
    @openapi.description("经办部门（曾有本部门任务）的工作人员和管理员可见；其他部门返回 403 document_forbidden。")
    @openapi.response(200, json_content(LIST_SCHEMA), "文书列表")
    @error_responses(401, 403, 404, 503)
    @staff_required(sorted(desk.TASK_ROLES))
    async def case_documents(request: Request, case_id: int) -> HTTPResponse:
        case = await _officer_case(request, case_id)
        items = [{**d, "url": f"/api/v1/staff/cases/{case.id}/documents/{d['kind']}"}
                 for d in await documents.available(case)]
        return json({"items": items})

    @bp.get("/staff/cases/<case_id:int>/documents/<kind:str>")
    @openapi.summary("One document of a case as signed PDF (staff) / 下载办件文书（经办人员）")
    @openapi.description("同申请人下载的文书；文书载有申请人姓名，每次下载记入个人信息访问日志。")
    @openapi.response(200, PDF, "签章的 PDF")
    @error_responses(401, 403, 404, 503)
    @staff_required(sorted(desk.TASK_ROLES))
    async def case_document(request: Request, case_id: int, kind: str) -> HTTPResponse:
        case = await _officer_case(request, case_id)
        staff = request.ctx.staff
        departments = desk.departments_of(staff)
        return await _case_document(request, case, kind, (staff.username, departments[0] if departments else None))

    @bp.get("/documents/ca.pem")
    @openapi.summary("Document signing CA / 文书签章根证书")
    @openapi.description("公开：签发各部门文书签章证书的 CA 证书（PEM），导入 PDF 阅读器后即可验证文书签章。")
    @openapi.response(200, {"application/x-pem-file": {"schema": {"type": "string"}}}, "CA 证书")
    @error_responses(503)
    async def ca_pem(request: Request) -> HTTPResponse:
        return raw(request.app.ctx.document_keys.ca_pem(), content_type="application/x-pem-file")

    return bp
