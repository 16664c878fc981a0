"""E-certificate endpoints (电子证照): the holder's certificates, refreshing QR codes, public checks.

    GET  /certificates                      → the citizen's certificates (masked holder data)
    GET  /certificates/{id}                 → one of them (404 unless it is the caller's)
    GET  /certificates/{id}/qrcode?format=  → PNG or SVG carrying a fresh short-lived signed token
    POST /certificates/verify {token}       → public: is the certificate genuine and valid now?
    GET  /certificates/keys                 → public: verification keys for offline checks

A QR token names the certificate, its state at signing time, the issuer, the issue date and the
key; it holds no personal data (``engine.certificates.signing.make_qr_token``). ``/verify`` answers with
the *current* state from the register, so a revoked certificate fails even with a fresh token.
A token that fails its own checks is a 400 with a code of the ``SignatureError`` family
(``token_invalid``, ``token_expired``, ``unknown_key``). Every answered verification leaves a
``DataAccessLog`` row (purpose 扫码核验) naming the verifier: the citizen, else a keyed hash of
the address.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import structlog
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json, raw
from sanic_ext.extensions.openapi import openapi

from engine.accountability import mask_name, mask_text
from engine.certificates import (
    ALGORITHMS,
    HOLDER_CITIZEN_ID,
    HOLDER_CODE_TYPES,
    MAX_QR_TOKEN_LEN,
    STATE_CACHE,
    VERIFIER_CACHE,
    Certificate,
    CertState,
    SignatureError,
    effective_state,
    make_qr_token,
    qr_png,
    qr_svg,
    verifiers,
    verify_qr_token,
)
from engine.certificates import store as certificate_store
from engine.citizen import Citizen, find_citizen
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.kernel import CST
from mobile_api.auth import (
    RATE_LIMITS,
    BearerError,
    Principal,
    RateRule,
    TokenInvalid,
    auth_state,
    citizen_required,
    client_ip,
    count_hit,
    enforce_limit,
    require_citizen,
)
from mobile_api.errors import Forbidden
from mobile_api.openapi_docs import error_documenter, json_content
from mobile_api.request import json_body

log = structlog.get_logger("govflow.certificates")
_stdlib_log = logging.getLogger("govflow.certificates")  # structlog builds an event before filtering it
F = TypeVar("F", bound=Callable[..., Any])

VERIFY_RULE = "certificate_verify_per_ip"
RATE_LIMITS.setdefault(VERIFY_RULE, RateRule(
    120, 60, "scraping the register by replaying tokens, and signature-checking floods, from one address"))
VERIFIER_RULE = "certificate_verify_per_verifier"
RATE_LIMITS.setdefault(VERIFIER_RULE, RateRule(
    5000, 3600, "a registered verifier's key used beyond its hourly quota (the quota is the verifier's own)"))
VERIFIER_HEADER = "X-Verifier-Key"
VERIFY_PURPOSE = "扫码核验"
VERIFIED_FIELDS = ("name", "identifier", "issuer_name", "issue_date", "valid_to", "holder_name",
                   "holder_code_masked")
QR_FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
TOKEN_FORMAT = ("base64url(canonical JSON claims {v, cid, st, iss, isd, iat, exp, kid, alg}) + '.' + "
                "base64url(signature over the first part); SM2-SM3: DER r,s, SM3, user id 1234567812345678")


class CertificateNotValid(Conflict):
    code = "certificate_not_valid"
    default_message = "证照当前不是有效状态，不能生成核验二维码"


class CertificateNotFound(NotFound):
    code = "certificate_not_found"
    default_message = "电子证照不存在"


# ------------------------------------------------------------------ OpenAPI schemas (3.0)

def _obj(properties: dict[str, Any]) -> dict[str, Any]:
    """A closed object schema: every property required, nothing else allowed."""
    return {"type": "object", "additionalProperties": False, "required": list(properties),
            "properties": properties}


_STR: dict[str, Any] = {"type": "string"}
_DATE, _TIME = {**_STR, "format": "date"}, {**_STR, "format": "date-time"}
_ALG = {"type": "string", "enum": list(ALGORITHMS)}
_STATE = {"type": "string", "enum": [s.value for s in CertState],
          "description": "01 有效, 02 暂停, 03 吊销, 04 注销, 05 过期（有效期届满自动得出）"}
_STATE_LABEL = {"type": "string", "enum": [s.label for s in CertState], "example": "有效"}
_CERT: dict[str, Any] = {
    "id": {"type": "integer"}, "identifier": {**_STR, "description": "GB/T 36904 证照标识"},
    "name": {**_STR, "example": "老年人优待证"}, "number": {**_STR, "description": "证照编号"},
    "type_code": _STR, "issuer_name": _STR, "issuer_code": _STR,
    "issue_date": _DATE, "valid_from": _DATE,
    "valid_to": {**_DATE, "nullable": True, "description": "null 为长期"},
    "holder_name": {**_STR, "description": "脱敏姓名", "example": "王**"},
    "holder_code_masked": {**_STR, "example": "310***********0273"},
    "holder_code_type": {"type": "string", "enum": sorted(HOLDER_CODE_TYPES)},
    "holder_code_type_label": {**_STR, "example": "居民身份证号码"}, "jurisdiction_code": _STR,
    "state": _STATE, "state_label": _STATE_LABEL,
}
CERTIFICATE_SCHEMA = _obj(_CERT)
CERTIFICATE_DETAIL_SCHEMA = _obj({**_CERT, "extra": {"type": "object", "description": "证照登记的其他信息（已脱敏）"},
                                  "key_id": {**_STR, "description": "签发签名的密钥标识"}, "algorithm": _ALG})
LIST_SCHEMA = _obj({"items": {"type": "array", "items": CERTIFICATE_SCHEMA}, "total": {"type": "integer"},
                    "real_name_bound": {"type": "boolean", "description": "未实名时没有证照，客户端应引导实名认证"}})
VERIFY_BODY = {"type": "object", "required": ["token"], "properties": {"token": {
    "type": "string", "minLength": 1, "maxLength": MAX_QR_TOKEN_LEN,
    "description": "二维码中的文本（签名令牌）"}}}
VERIFY_SCHEMA = _obj({
    "valid": {"type": "boolean", "description": "签名有效、二维码未过期且证照当前状态为 01 有效"},
    "state": _STATE, "state_label": _STATE_LABEL, "message": {**_STR, "example": "证照真实有效"},
    "checked_at": _TIME, "certificate": _obj({k: _CERT[k] for k in VERIFIED_FIELDS}),
    "verifier": {**_STR, "nullable": True, "description": "以用证方密钥核验时为用证方机构名称，匿名核验为 null"},
    "token": _obj({"issued_at": _TIME, "expires_at": _TIME, "key_id": _STR, "algorithm": _ALG})})
KEYS_SCHEMA = _obj({"algorithm": {**_ALG, "description": "当前签名算法"}, "active_key_id": _STR,
                    "token_format": _STR,
                    "keys": {"type": "array", "items": _obj({"kid": _STR, "alg": _ALG, "pem": {
                        **_STR, "description": "SubjectPublicKeyInfo PEM"}})}})

_ERROR_TEXT = {
    400: "请求体不是有效的 JSON；或二维码无效、被篡改（token_invalid）、已过期（token_expired）、"
         "签名密钥未知（unknown_key）",
    401: "未登录、凭证无效、过期或已退出；用证方密钥无效或已停用（verifier_key_invalid）",
    403: "仅供群众账号使用", 404: "证照不存在或不属于当前用户",
    409: "证照已暂停、吊销、注销或过期（certificate_not_valid）", 413: "请求内容过大",
    415: "不是 application/json", 422: "字段校验失败（fields 标注字段）", 429: "请求过于频繁（见 Retry-After）",
    503: "依赖服务不可用（数据库、Redis）",
}


_json = json_content
_errors = error_documenter(_ERROR_TEXT)


# ------------------------------------------------------------------ helpers

def _now(request: Request) -> datetime:
    return request.app.ctx.engine.deps.clock()


def _render(token: str, fmt: str) -> bytes:
    return qr_png(token) if fmt == "png" else qr_svg(token).encode("utf-8")


def _holder_name(row: Certificate) -> str:
    """Citizens' names are masked; a company's name (001) is public register data."""
    return mask_name(row.holder_name) if row.holder_code_type == HOLDER_CITIZEN_ID else row.holder_name


def _masked(value: Any) -> Any:
    """``value`` with every ID-number- or phone-like string masked, however deeply nested."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    return [_masked(v) for v in value] if isinstance(value, list) else value


def certificate_view(row: Certificate, state: CertState) -> dict[str, Any]:
    """The holder's view of a certificate: masked holder data, effective state with its label."""
    return {
        "id": row.id, "identifier": row.identifier, "name": row.name, "number": row.number,
        "type_code": row.type_code, "issuer_name": row.issuer_name, "issuer_code": row.issuer_code,
        "issue_date": row.issue_date.isoformat(), "valid_from": row.valid_from.isoformat(),
        "valid_to": row.valid_to.isoformat() if row.valid_to else None,
        "holder_name": _holder_name(row), "holder_code_masked": row.holder_code_masked,
        "holder_code_type": row.holder_code_type,
        "holder_code_type_label": HOLDER_CODE_TYPES.get(row.holder_code_type, row.holder_code_type),
        "jurisdiction_code": row.jurisdiction_code, "state": state.value, "state_label": state.label,
    }


async def _citizen(principal: Principal) -> Citizen:
    citizen = await find_citizen(principal.citizen_id)
    if citizen is None:  # a token for an account that no longer exists
        raise TokenInvalid()
    return citizen


async def _own_certificate(request: Request, cert_id: int) -> Certificate:
    """The caller's certificate ``cert_id``; 404 when it is not there or someone else's. Their own
    (the holder: the common case) in one query; else the account is read (401 when it is gone) and
    the certificates of the companies they represent are tried."""
    principal = request.ctx.principal
    row = await certificate_store.citizen_certificate(cert_id, principal.citizen_id)
    if row is not None:
        return row
    citizen = await _citizen(principal)
    if citizen.id_hash:
        row = await certificate_store.represented_certificate(cert_id, citizen.openid, citizen.id_hash)
    if row is None:
        raise CertificateNotFound()
    return row


def _ip_hash(request: Request) -> str:
    """A keyed hash of the caller's address: countable per address, not reversible without the key."""
    key = auth_state(request.app).pii_keys.blind_index_key
    return hmac.new(key, b"ip:" + client_ip(request).encode("utf-8"), hashlib.sha256).hexdigest()[:32]


async def _verifier_actor(request: Request) -> str:
    """``citizen:<id>`` when a valid citizen token came along, else ``ip:<keyed hash>``."""
    if request.headers.get("authorization", "").strip():
        try:
            return f"citizen:{(await require_citizen(request)).citizen_id}"
        except (BearerError, Forbidden):
            pass  # a public endpoint: a stale token only makes the caller anonymous
    return f"ip:{_ip_hash(request)}"


# ------------------------------------------------------------------ blueprint

def blueprint() -> Blueprint:
    """A fresh blueprint per app (handlers, and so their OpenAPI entries, are per app)."""
    bp = Blueprint("certificates")

    @bp.get("/certificates")
    @openapi.summary("My e-certificates / 我的电子证照")
    @openapi.description("当前实名用户名下的电子证照，以及本人代表的企业的证照——本人申办的办件为企业签发的证照，"
                         "或本人登记为法定代表人的企业证照（按身份证号的密钥散列匹配；如开办企业的营业执照、"
                         "印章备案，企业名称公开、完整显示）；个人持证人姓名和证件号码只返回脱敏形式，"
                         "状态为实际状态（有效期届满显示 05 过期）。未实名的账号返回空列表。")
    @openapi.response(200, _json(LIST_SCHEMA), "证照列表")
    @_errors(401, 403, 503)
    @citizen_required
    async def list_certificates(request: Request) -> HTTPResponse:
        citizen = await _citizen(request.ctx.principal)
        today = _now(request).astimezone(CST).date()
        rows = await certificate_store.holder_certificates(citizen.id_hash) if citizen.id_hash else []
        if citizen.id_hash:  # the companies the citizen represents: legal representative or 一件事 applicant
            known = {r.id for r in rows}
            rows += [r for r in await certificate_store.represented_certificates(citizen.openid, citizen.id_hash)
                     if r.id not in known]
        items = [certificate_view(r, effective_state(r, today)) for r in rows]
        return json({"items": items, "total": len(items), "real_name_bound": citizen.id_hash is not None})

    @bp.get("/certificates/<cert_id:int>")
    @openapi.summary("One of my e-certificates / 电子证照详情")
    @openapi.description("证照详情；不是当前用户的证照一律返回 404。")
    @openapi.response(200, _json(CERTIFICATE_DETAIL_SCHEMA), "证照详情")
    @_errors(401, 403, 404, 503)
    @citizen_required
    async def get_certificate(request: Request, cert_id: int) -> HTTPResponse:
        row = await _own_certificate(request, cert_id)
        view = certificate_view(row, effective_state(row, _now(request).astimezone(CST).date()))
        extra = row.data.get("extra") if isinstance(row.data, dict) else None
        return json({**view, "extra": _masked(extra or {}), "key_id": row.key_id, "algorithm": row.algorithm})

    @bp.get("/certificates/<cert_id:int>/qrcode")
    @openapi.summary("QR code of my e-certificate / 证照核验二维码")
    @openapi.description("每次请求生成新的短时签名令牌（默认 180 秒，GOVFLOW_QR_TOKEN_TTL_S），令牌只含证照标识、"
                         "状态、颁证机构、签发日期、有效期和密钥标识，不含个人信息；过期后请重新获取。响应头 "
                         "X-QR-Expires-At 为令牌过期时间（Unix 秒）；Cache-Control: no-store。")
    @openapi.parameter("format", openapi.String(enum=list(QR_FORMATS), default="png"), "query",
                       description="png（默认）或 svg")
    @openapi.response(200, {"image/png": {"schema": {"type": "string", "format": "binary"}},
                            "image/svg+xml": {"schema": {"type": "string"}}}, "二维码图片")
    @_errors(401, 403, 404, 409, 422, 503)
    @citizen_required
    async def qrcode(request: Request, cert_id: int) -> HTTPResponse:
        fmt = request.get_args(keep_blank_values=True).get("format", "png")  # "?format=" is an error too
        if fmt not in QR_FORMATS:
            raise ValidationFailed("二维码格式应为 png 或 svg", fields={"format": "应为 png 或 svg"})
        row = await _own_certificate(request, cert_id)
        now = _now(request)
        state = effective_state(row, now.astimezone(CST).date())
        if state is not CertState.VALID:
            raise CertificateNotValid(f"证照状态为「{state.label}」，不能生成核验二维码")
        ttl = request.app.ctx.settings.QR_TOKEN_TTL_S
        signer = request.app.ctx.engine.deps.keyring.active
        token = make_qr_token(row.identifier, state, row.issuer_code, row.issue_date, ttl, signer, now=now)
        # the PNG is ~3 ms of C++ (zxing-cpp); the SVG is pure Python (qrcode): off the event loop
        body = _render(token, fmt) if fmt == "png" else await asyncio.to_thread(_render, token, fmt)
        expires_at = int(now.timestamp()) + ttl
        log.info("certificate_qr_issued", certificate_id=row.id, key_id=signer.key_id, expires_at=expires_at)
        return raw(body, content_type=QR_FORMATS[fmt], headers={
            "Cache-Control": "no-store", "Pragma": "no-cache", "X-QR-Expires-At": str(expires_at)})

    @bp.post("/certificates/verify")
    @openapi.summary("Verify a certificate QR code / 扫码核验电子证照")
    @openapi.description(
        "公开接口，无需登录。核验二维码令牌的签名与有效期，并按登记库的当前状态作答：证照被暂停、吊销、注销"
        "或已过期时 valid 为 false，state_label 说明原因。令牌本身无效时返回 400：token_invalid（格式错误、"
        "被篡改或签名不符）、token_expired（二维码已过期，请持证人刷新）、unknown_key（签名密钥未知）。"
        "每次核验都记录到个人信息访问日志（用途：扫码核验）。匿名核验按来源地址限流；登记的用证方在请求头 "
        "X-Verifier-Key 中携带密钥，按本机构每小时额度计数，持证人的访问日志显示机构名称和用证目的"
        "（密钥无效或停用：401 verifier_key_invalid）。")
    @openapi.body(_json(VERIFY_BODY), required=True)
    @openapi.response(200, _json(VERIFY_SCHEMA), "核验结果")
    @openapi.parameter(VERIFIER_HEADER, str, "header", description="用证方密钥（可选；管理员登记时发放）")
    @_errors(400, 401, 404, 413, 415, 422, 429, 503)
    async def verify(request: Request) -> HTTPResponse:
        kv = request.app.ctx.kv
        # the register's and the verifiers' cache versions come back with the quota counter: one
        # round trip to Redis per scan, no SQL while nothing changed anywhere
        reads = tuple(k for k in (STATE_CACHE.shared_key(kv), VERIFIER_CACHE.shared_key(kv)) if k)
        key = request.headers.get(VERIFIER_HEADER)
        verifier = None
        if key is not None:  # a registered verifier: its own hourly quota, named in the holder's log
            # the row as this process knows it picks the counter; the version read with it confirms it
            verifier = VERIFIER_CACHE.peek(key) or await VERIFIER_CACHE.authenticate(key)
            hits, values = await count_hit(request, VERIFIER_RULE, str(verifier.id), 3600, read=reads)
            versions = dict(zip(reads, values, strict=True))
            verifier = await VERIFIER_CACHE.authenticate(key, version=VERIFIER_CACHE.version_in(kv, versions))
            await enforce_limit(request, VERIFIER_RULE, str(verifier.id), hits, verifier.quota_per_hour, 3600)
        else:
            ip_hash = _ip_hash(request)
            hits, values = await count_hit(request, VERIFY_RULE, ip_hash, read=reads)
            versions = dict(zip(reads, values, strict=True))
            await enforce_limit(request, VERIFY_RULE, ip_hash, hits)
        token = json_body(request).get("token")
        if not isinstance(token, str) or not token.strip() or len(token) > MAX_QR_TOKEN_LEN:
            raise ValidationFailed("请提供二维码令牌",
                                   fields={"token": f"应为不超过 {MAX_QR_TOKEN_LEN} 个字符的文本"})
        now = _now(request)
        try:
            claims = verify_qr_token(token.strip(), request.app.ctx.engine.deps.keyring.verifier(), now)
        except SignatureError as exc:
            log.info("certificate_verify_refused", code=exc.code)
            raise
        row = await STATE_CACHE.get(claims.identifier, version=STATE_CACHE.version_in(kv, versions))
        if row is None:
            log.warning("certificate_verify_unknown_certificate", key_id=claims.key_id)
            raise CertificateNotFound("电子证照不存在或已被删除")
        state = effective_state(row, now.astimezone(CST).date())
        valid = state is CertState.VALID
        actor = verifiers.actor_of(verifier) if verifier else await _verifier_actor(request)
        purpose = f"{VERIFY_PURPOSE}：{verifier.purpose}" if verifier else VERIFY_PURPOSE
        # written with the next batch (engine.accountability.access_buffer: ≤ 200 rows / 200 ms by default)
        request.app.ctx.access_log.add(actor=actor, subject_hash=row.holder_code_hash,
                                       subject_masked=row.holder_code_masked, dataset="certificate",
                                       fields_read=[*VERIFIED_FIELDS, "state"], case_id=row.case_id,
                                       purpose=purpose, at=now)
        if _stdlib_log.isEnabledFor(logging.INFO):  # not built per scan when INFO is off
            log.info("certificate_verified", certificate_id=row.id, valid=valid, state=state.value, actor=actor)
        view = certificate_view(row, state)
        return json({
            "valid": valid, "state": state.value, "state_label": state.label,
            "message": "证照真实有效" if valid else f"证照当前状态为「{state.label}」，不能作为有效凭证",
            "checked_at": now.astimezone(CST).isoformat(),
            "certificate": {k: view[k] for k in VERIFIED_FIELDS},
            "verifier": verifier.name if verifier else None,
            "token": {"issued_at": datetime.fromtimestamp(claims.issued_at, CST).isoformat(),
                      "expires_at": datetime.fromtimestamp(claims.expires_at, CST).isoformat(),
                      "key_id": claims.key_id, "algorithm": claims.algorithm},
        })

    @bp.get("/certificates/keys")
    @openapi.summary("Verification keys / 证照核验公钥")
    @openapi.description("公开接口：全部有效的核验公钥（含已轮换的旧密钥），供离线核验二维码令牌"
                         "（见 docs/verify_offline.py）。")
    @openapi.response(200, _json(KEYS_SCHEMA), "公钥列表")
    @_errors(503)
    async def keys(request: Request) -> HTTPResponse:
        keyring = request.app.ctx.engine.deps.keyring
        exported = keyring.verifier().export()
        keys = [{"kid": kid, "alg": e["alg"], "pem": e["pem"]} for kid, e in exported.items()]
        return json({"algorithm": keyring.active.algorithm, "active_key_id": keyring.active.key_id,
                     "token_format": TOKEN_FORMAT, "keys": keys},
                    headers={"Cache-Control": "public, max-age=300"})

    return bp
