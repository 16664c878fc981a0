"""WeChat mini-program login: exchange the client's one-time ``code`` for an openid, server-side.

``WeChatClient`` calls ``GET /sns/jscode2session`` (appid, secret, js_code,
grant_type=authorization_code) and maps WeChat's answers to engine errors with HTTP statuses:

    40029 / 40163 invalid or already used code   → InvalidCode        (401 wechat_code_invalid)
    45011 rate limited                           → WeChatRateLimited  (429 wechat_rate_limited, retry_after)
    40226 risky user                             → RiskyUser          (403 wechat_risky_user)
    anything else, network errors, timeouts,
    non-JSON answers                             → DependencyDown     (503 dependency_unavailable)

The ``session_key`` WeChat returns never leaves the server: it is not logged, not stored and
not part of the ``WeChatSession`` repr. The app secret and the code travel in the query string,
so httpx's request log line is redacted here (see ``_RedactQuery``).

``DevWeChatClient`` serves development without a WeChat app: ``dev-<name>`` → openid
``dev-<name>``. It cannot be built in production.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from engine.config import env_is_production
from engine.errors import DependencyDown, Forbidden, GovflowError, RateLimited, Unauthenticated

log = logging.getLogger("govflow.wechat")

MAX_CODE_CHARS = 128
RATE_LIMIT_RETRY_S = 60  # 45011 is a per-user, per-minute quota
_DEV_CODE = re.compile(r"dev-[A-Za-z0-9_.\-]{1,40}")  # fullmatch: "dev-a\n" is not a code
_CODE_INVALID = {40029, 40163}  # invalid code; code already used
_SECRET_PARAMS = re.compile(r"((?:secret|js_code|appid)=)[^&\s\"']*")


class InvalidCode(Unauthenticated):
    code = "wechat_code_invalid"
    default_message = "微信登录凭证无效或已过期，请重新登录"


class WeChatRateLimited(RateLimited):
    """WeChat refused for now; the API answers 429 with ``Retry-After: retry_after``."""

    code = "wechat_rate_limited"
    default_message = "微信登录请求过于频繁，请稍后再试"

    def __init__(self, message: str | None = None, *, retry_after: float = RATE_LIMIT_RETRY_S,
                 detail: Any = None) -> None:
        GovflowError.__init__(self, message, detail=detail)
        self.retry_after = retry_after


class RiskyUser(Forbidden):
    code = "wechat_risky_user"
    default_message = "该微信账号存在安全风险，暂无法登录，请在微信中完成安全验证后重试"


class WeChatNotConfigured(DependencyDown):
    code = "wechat_not_configured"
    default_message = "微信登录暂未开通，请稍后再试"


@dataclass(frozen=True)
class WeChatSession:
    """What a code is worth: the user's openid (+unionid) and the server-only session key."""

    openid: str
    unionid: str | None
    session_key: str = field(repr=False)


class CodeExchanger(Protocol):
    """Anything that turns a mini-program ``code`` into a ``WeChatSession``."""

    async def jscode2session(self, code: str) -> WeChatSession: ...
    async def aclose(self) -> None: ...


class _RedactQuery(logging.Filter):
    """Strip appid, secret and js_code values from httpx's ``HTTP Request: GET <url>`` lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "secret=" in text or "js_code=" in text:
            record.msg, record.args = _SECRET_PARAMS.sub(r"\1***", text), ()
        return True


def _install_redaction() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactQuery) for f in logger.filters):
        logger.addFilter(_RedactQuery())


_install_redaction()


def _check_code(code: Any) -> str:
    if not isinstance(code, str) or not code.strip() or len(code) > MAX_CODE_CHARS:
        raise InvalidCode()
    return code.strip()


class WeChatClient:
    """The real ``jscode2session`` client. One instance per app; ``aclose`` when done."""

    def __init__(self, base_url: str, appid: str, secret: str, *, timeout_s: float = 5,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not appid or not secret:
            raise ValueError("WeChatClient needs GOVFLOW_WECHAT_APPID and GOVFLOW_WECHAT_SECRET")
        self._appid, self._secret = appid, secret
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s, transport=transport,
                                       follow_redirects=False, trust_env=False)

    def __repr__(self) -> str:  # never the secret
        return f"WeChatClient(base_url={str(self._http.base_url)!r}, appid={self._appid!r})"

    async def jscode2session(self, code: str) -> WeChatSession:
        """Exchange ``code`` once; raises the errors in the module docstring."""
        code = _check_code(code)
        params = {"appid": self._appid, "secret": self._secret, "js_code": code,
                  "grant_type": "authorization_code"}
        try:
            response = await self._http.get("/sns/jscode2session", params=params)
        except httpx.TimeoutException as exc:
            raise DependencyDown("微信登录服务响应超时，请稍后重试", detail=type(exc).__name__) from None
        except httpx.HTTPError as exc:
            raise DependencyDown("微信登录服务暂不可用，请稍后重试", detail=type(exc).__name__) from None
        if response.status_code != 200:
            raise DependencyDown("微信登录服务暂不可用，请稍后重试", detail=f"HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise DependencyDown("微信登录服务返回了无法识别的结果，请稍后重试", detail="not a JSON object")
        return self._session_from(data)

    @staticmethod
    def _session_from(data: dict[str, Any]) -> WeChatSession:
        errcode = data.get("errcode") or 0
        if errcode:
            _raise_for(errcode, str(data.get("errmsg") or "")[:200])
        openid, session_key, unionid = data.get("openid"), data.get("session_key"), data.get("unionid")
        if not isinstance(openid, str) or not openid or len(openid) > 64 or not isinstance(session_key, str):
            raise DependencyDown("微信登录服务返回了无法识别的结果，请稍后重试", detail="no openid")
        if not isinstance(unionid, str) or not unionid or len(unionid) > 64:
            unionid = None
        return WeChatSession(openid=openid, unionid=unionid, session_key=session_key)

    async def aclose(self) -> None:
        await self._http.aclose()


def _raise_for(errcode: Any, errmsg: str) -> None:
    """Map a WeChat ``errcode`` to our errors (the errmsg carries no secret, only a request id)."""
    if errcode in _CODE_INVALID:
        raise InvalidCode(detail=errcode)
    if errcode == 45011:
        raise WeChatRateLimited(detail=errcode)
    if errcode == 40226:
        raise RiskyUser(detail=errcode)
    log.warning("wechat jscode2session failed: errcode=%s errmsg=%s", errcode, errmsg)
    raise DependencyDown("微信登录服务暂不可用，请稍后重试", detail=f"errcode {errcode}")


def _production(env: str) -> bool:
    return env_is_production(env)


class DevWeChatClient:
    """Development only: ``dev-<name>`` → openid ``dev-<name>``; anything else is an invalid code.

    Building one in production (``env`` or ``GOVFLOW_ENV``) raises, so no wiring mistake can
    make ``dev-`` codes log anybody in there.
    """

    def __init__(self, *, env: str) -> None:
        if _production(env):
            raise RuntimeError("DevWeChatClient is not available when GOVFLOW_ENV=production")

    async def jscode2session(self, code: str) -> WeChatSession:
        code = _check_code(code)
        if not _DEV_CODE.fullmatch(code):
            raise InvalidCode("开发模式下登录凭证应为 dev-<名字>（字母、数字、._-）")
        return WeChatSession(openid=code, unionid=None, session_key=secrets.token_urlsafe(16))

    async def aclose(self) -> None:
        return None


class UnconfiguredWeChat:
    """Production without a WeChat app: every login answers 503 ``wechat_not_configured``."""

    async def jscode2session(self, code: str) -> WeChatSession:
        raise WeChatNotConfigured(detail="GOVFLOW_WECHAT_APPID / GOVFLOW_WECHAT_SECRET not set")

    async def aclose(self) -> None:
        return None


def wechat_client_from_settings(settings: Any, *, transport: httpx.AsyncBaseTransport | None = None
                                ) -> CodeExchanger:
    """The real client when appid and secret are set; else the development client, or in
    production one that refuses every login."""
    appid, secret = str(settings.WECHAT_APPID or ""), str(settings.WECHAT_SECRET or "")
    if appid and secret:
        return WeChatClient(settings.WECHAT_API_BASE, appid, secret,
                            timeout_s=settings.WECHAT_TIMEOUT_MS / 1000, transport=transport)
    if appid or secret:
        log.warning("only one of GOVFLOW_WECHAT_APPID / GOVFLOW_WECHAT_SECRET is set: WeChat login disabled")
    if _production(settings.ENV):
        log.error("GOVFLOW_WECHAT_APPID / GOVFLOW_WECHAT_SECRET are not set: mini-program login answers 503")
        return UnconfiguredWeChat()
    log.warning("no WeChat app configured: development login accepts dev-<name> codes (never in production)")
    return DevWeChatClient(env=settings.ENV)


__all__ = [
    "CodeExchanger", "DevWeChatClient", "InvalidCode", "RiskyUser", "UnconfiguredWeChat", "WeChatClient",
    "WeChatNotConfigured", "WeChatRateLimited", "WeChatSession", "wechat_client_from_settings",
]
