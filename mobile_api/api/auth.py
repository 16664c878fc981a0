"""Citizen identity endpoints: mini-program login, token refresh, logout, me, real-name binding.

    POST /auth/miniprogram {code}          → tokens + citizen (masked)
    POST /auth/refresh {refresh_token}     → rotated tokens (reuse of an old one ends the login)
    POST /auth/logout                      → 204; access and refresh tokens of this login refused
    GET  /me                               → citizen (masked)
    POST /me/real-name {name, id_number}   → citizen (masked), level and evidence recorded

The WeChat client, token service and verifier come from ``mobile_api.auth.auth_state``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from sanic import Blueprint, Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, empty, json
from sanic_ext.extensions.openapi import openapi

from engine.citizen import Citizen, identity
from engine.errors import ValidationFailed
from mobile_api.auth import (
    SECURITY_SCHEME,
    Principal,
    TokenInvalid,
    UpstreamRateLimited,
    auth_state,
    citizen_required,
    client_ip,
    close_auth_state,
    rate_limit,
)
from mobile_api.openapi_docs import error_documenter, json_content
from mobile_api.request import json_body
from mobile_api.wechat import MAX_CODE_CHARS, DevWeChatClient, WeChatRateLimited

log = structlog.get_logger("govflow.auth")
F = TypeVar("F", bound=Callable[..., Any])

# ------------------------------------------------------------------ OpenAPI schemas (3.0)
CITIZEN_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["id", "real_name_level", "real_name_bound", "name_masked", "id_masked", "verified_at"],
    "properties": {
        "id": {"type": "integer"},
        "real_name_level": {"type": "integer", "enum": [0, 1, 2, 3],
                            "description": "0 仅微信登录, 1 自报, 2 已核验姓名与身份证号, 3 已人脸核验"},
        "real_name_bound": {"type": "boolean", "description": "是否已完成实名认证"},
        "name_masked": {"type": "string", "nullable": True, "example": "张**"},
        "id_masked": {"type": "string", "nullable": True, "example": "110***********1234"},
        "verified_at": {"type": "string", "format": "date-time", "nullable": True},
    },
}
_TOKEN_PROPERTIES: dict[str, Any] = {
    "access_token": {"type": "string", "description": "JWT (HS256), Authorization: Bearer"},
    "refresh_token": {"type": "string", "description": "opaque; single use, rotated by /auth/refresh"},
    "token_type": {"type": "string", "enum": ["Bearer"]},
    "expires_in": {"type": "integer", "description": "access token lifetime, seconds"},
    "refresh_expires_in": {"type": "integer", "description": "refresh token lifetime, seconds"},
}
TOKENS_SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": False,
                                 "required": list(_TOKEN_PROPERTIES), "properties": _TOKEN_PROPERTIES}
LOGIN_SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": False,
                                "required": [*_TOKEN_PROPERTIES, "citizen"],
                                "properties": {**_TOKEN_PROPERTIES, "citizen": CITIZEN_SCHEMA}}
LOGIN_BODY = {"type": "object", "required": ["code"], "properties": {"code": {
    "type": "string", "minLength": 1, "maxLength": MAX_CODE_CHARS,
    "description": "wx.login() 返回的一次性 code（5 分钟内有效）；开发模式为 dev-<名字>"}}}
REFRESH_BODY = {"type": "object", "required": ["refresh_token"],
                "properties": {"refresh_token": {"type": "string", "minLength": 16, "maxLength": 256}}}
REAL_NAME_BODY = {"type": "object", "required": ["name", "id_number"], "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": identity.MAX_NAME_CHARS, "example": "张三"},
    "id_number": {"type": "string", "pattern": "^[0-9]{17}[0-9Xx]$", "description": "GB 11643 公民身份号码"}}}

_ERROR_TEXT = {
    400: "请求体不是有效的 JSON", 401: "未登录、凭证无效、过期或已退出", 403: "无权访问或微信账号存在风险",
    409: "身份证号已绑定其他账号，或本账号已绑定其他身份证号", 413: "请求内容过大",
    415: "不是 application/json", 422: "字段校验失败（fields 标注字段）", 429: "请求过于频繁（见 Retry-After）",
    503: "依赖服务不可用（微信、Redis、实名核验）",
}


_json = json_content
_errors = error_documenter(_ERROR_TEXT)


# ------------------------------------------------------------------ helpers

def _code_key(code: str) -> str:
    """The per-code rate-limit key: a digest, so the code itself never lands in the KV or a log."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()[:32]


async def _citizen_of(principal: Principal) -> Citizen:
    citizen = await identity.find_citizen(principal.citizen_id)
    if citizen is None:  # a token for an account that no longer exists
        raise TokenInvalid()
    return citizen


# ------------------------------------------------------------------ blueprint

def blueprint() -> Blueprint:
    """A fresh blueprint per app (handlers, and so their OpenAPI entries, are per app)."""
    bp = Blueprint("auth")

    @bp.before_server_start
    async def start_auth(app: Sanic) -> None:
        app.ext.openapi.add_security_scheme(SECURITY_SCHEME, "http", scheme="bearer", bearer_format="JWT",
                                            description="POST /api/v1/auth/miniprogram 返回的 access_token")
        auth_state(app)  # fail at start-up, not on the first login, when settings are wrong

    @bp.after_server_stop
    async def stop_auth(app: Sanic) -> None:
        await close_auth_state(app)

    @bp.post("/auth/miniprogram")
    @openapi.summary("Mini-program login / 小程序登录")
    @openapi.description("用 wx.login() 的 code 换取登录凭证。Exchanges the one-time code with WeChat "
                         "(jscode2session) server-side; the session_key never leaves the server.")
    @openapi.body(_json(LOGIN_BODY), required=True)
    @openapi.response(200, _json(LOGIN_SCHEMA), "登录成功")
    @_errors(400, 401, 403, 413, 415, 422, 429, 503)
    async def miniprogram_login(request: Request) -> HTTPResponse:
        await rate_limit(request, "login_per_ip", client_ip(request))
        code = json_body(request).get("code")
        if not isinstance(code, str) or not code.strip() or len(code) > MAX_CODE_CHARS:
            raise ValidationFailed("请提供微信登录凭证", fields={"code": "登录凭证应为不超过 128 个字符的文本"})
        state = auth_state(request.app)
        if not isinstance(state.wechat, DevWeChatClient):  # dev codes are reusable on purpose
            await rate_limit(request, "login_per_code", _code_key(code))
        try:
            session = await state.wechat.jscode2session(code)
        except WeChatRateLimited as exc:
            raise UpstreamRateLimited(retry_after=exc.retry_after) from None
        citizen = await identity.login(session.openid, session.unionid)
        pair = await state.tokens.issue(citizen.id, role="citizen")
        log.info("citizen_login", citizen_id=citizen.id, real_name_level=citizen.real_name_level)
        return json({**pair.as_dict(), "citizen": identity.citizen_view(citizen)})

    @bp.post("/auth/refresh")
    @openapi.summary("Refresh tokens / 刷新登录凭证")
    @openapi.description("每个 refresh_token 只能使用一次，返回新的一对凭证；旧凭证被再次使用时，本次登录的"
                         "全部凭证失效。A reused refresh token revokes its whole family.")
    @openapi.body(_json(REFRESH_BODY), required=True)
    @openapi.response(200, _json(TOKENS_SCHEMA), "新的凭证")
    @_errors(400, 401, 413, 415, 422, 429, 503)
    async def refresh(request: Request) -> HTTPResponse:
        await rate_limit(request, "refresh_per_ip", client_ip(request))
        token = json_body(request).get("refresh_token")
        if not isinstance(token, str) or not token:
            raise ValidationFailed("请提供刷新凭证", fields={"refresh_token": "刷新凭证应为文本"})
        pair = await auth_state(request.app).tokens.refresh(token)
        return json(pair.as_dict())

    @bp.post("/auth/logout")
    @openapi.summary("Log out / 退出登录")
    @openapi.description("本次登录的访问凭证和刷新凭证立即失效。Revokes this login's token family.")
    @openapi.response(204, {}, "已退出")  # no body: ``{}`` documents no media type (None would be */*)
    @_errors(401, 403, 503)
    @citizen_required
    async def logout(request: Request) -> HTTPResponse:
        principal: Principal = request.ctx.principal
        await auth_state(request.app).tokens.logout(principal)
        log.info("citizen_logout", citizen_id=principal.citizen_id)
        return empty(status=204)

    @bp.get("/me")
    @openapi.summary("Current citizen / 当前用户")
    @openapi.description("当前登录用户的实名状态；姓名和身份证号只返回脱敏形式。Masked values only.")
    @openapi.response(200, _json(CITIZEN_SCHEMA), "当前用户")
    @_errors(401, 403, 503)
    @citizen_required
    async def me(request: Request) -> HTTPResponse:
        return json(identity.citizen_view(await _citizen_of(request.ctx.principal)))

    @bp.post("/me/real-name")
    @openapi.summary("Bind real name / 实名认证")
    @openapi.description("核验姓名与身份证号（GB 11643 校验位）并绑定到当前账号；一个身份证号只能绑定一个账号。"
                         "The response carries only masked values.")
    @openapi.body(_json(REAL_NAME_BODY), required=True)
    @openapi.response(200, _json(CITIZEN_SCHEMA), "已实名")
    @_errors(400, 401, 403, 409, 413, 415, 422, 429, 503)
    @citizen_required
    async def real_name(request: Request) -> HTTPResponse:
        principal: Principal = request.ctx.principal
        body = json_body(request)  # an unreadable body probes nothing: not counted below
        await rate_limit(request, "real_name_per_ip", client_ip(request))
        await rate_limit(request, "real_name_per_citizen", str(principal.citizen_id))
        state = auth_state(request.app)
        citizen = await identity.bind_real_name(await _citizen_of(principal), body.get("name"),
                                                body.get("id_number"), pii_keys=state.pii_keys,
                                                verifier=state.verifier, fresh=True)
        return json(identity.citizen_view(citizen))

    return bp
