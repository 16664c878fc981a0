"""Tokens, the citizen guard and rate limits for the API.

- Access tokens: short-lived HS256 JWTs (``iss``, ``sub``, ``role``, ``iat``, ``exp``, ``jti``,
  ``typ="access"``, ``fam``). Decoding pins HS256 (so ``none``, HS512 and RS256 confusion are
  refused), requires every claim, and checks time against the service's own clock.
- Refresh tokens: opaque random strings, stored only as a SHA-256 digest in the KV:
  ``refresh:<digest>`` → ``{family, citizen_id, role}``. Each refresh claims the token once
  (atomic ``set_nx`` of ``refresh:<digest>:used``) and issues a new one in the same family. A
  second use of a claimed token means it was copied: the whole family is revoked
  (``family:<id>:revoked``), including its access tokens. Logout revokes the family and
  denylists the access token's ``jti`` (``access:denied:<jti>``) until it expires.
- ``require_citizen`` / ``@citizen_required``: Bearer token → ``Principal``; 401 with
  ``WWW-Authenticate: Bearer``.
- ``rate_limit``: fixed windows on ``app.ctx.kv``; every rule names the threat it answers.

Tokens never appear in a log line; only digests, family ids and jtis do.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import jwt
import structlog
from sanic import Sanic
from sanic.request import Request
from sanic_ext.extensions.openapi import openapi

from engine.accountability import PiiKeys
from engine.citizen import RealNameVerifier, real_name_verifier_from_settings
from engine.platform import KV
from mobile_api.errors import Forbidden, RateLimited, Unauthorized
from mobile_api.wechat import CodeExchanger, wechat_client_from_settings

log = structlog.get_logger("govflow.auth")

ALGORITHM = "HS256"
ISSUER = "govflow"
MIN_SECRET_CHARS = 32
MAX_TOKEN_CHARS = 4096
IAT_LEEWAY_S = 30  # clocks of several API processes may differ a little
DECODED_CACHE_SIZE = 4096  # verified access tokens remembered per process (oldest forgotten first)
SECURITY_SCHEME = "bearerAuth"
_DEV_SECRET = "govflow development JWT secret -- public, never use it in production"
_REQUIRED_CLAIMS = ["iss", "sub", "role", "iat", "exp", "jti", "typ", "fam"]
_warned_dev_secret = False

H = TypeVar("H", bound=Callable[..., Awaitable[Any]])


# --------------------------------------------------------------------------- errors

class BearerError(Unauthorized):
    """401 with ``WWW-Authenticate: Bearer`` (RFC 6750); ``error="invalid_token"`` unless missing."""

    bearer_error: str | None = "invalid_token"

    def headers(self) -> dict[str, str]:
        value = 'Bearer realm="govflow"'
        return {"WWW-Authenticate": value + (f', error="{self.bearer_error}"' if self.bearer_error else "")}


class NotLoggedIn(BearerError):
    code = "unauthorized"
    default_message = "请先登录"
    bearer_error = None


class TokenExpired(BearerError):
    code = "token_expired"
    default_message = "登录已过期，请刷新登录状态或重新登录"


class TokenInvalid(BearerError):
    code = "token_invalid"
    default_message = "登录凭证无效，请重新登录"


class TokenRevoked(BearerError):
    code = "token_revoked"
    default_message = "登录已退出，请重新登录"


class RefreshTokenInvalid(BearerError):
    code = "refresh_token_invalid"
    default_message = "刷新凭证无效或已过期，请重新登录"


class RefreshTokenReused(BearerError):
    code = "refresh_token_reused"
    default_message = "刷新凭证已被使用过，为保护账号安全，相关登录已全部退出，请重新登录"


class RefreshTokenRevoked(BearerError):
    code = "refresh_token_revoked"
    default_message = "登录已退出，请重新登录"


class UpstreamRateLimited(RateLimited):
    code = "wechat_rate_limited"
    default_message = "微信登录请求过于频繁，请稍后再试"


# --------------------------------------------------------------------------- tokens

@dataclass(frozen=True)
class Principal:
    """Who a valid access token speaks for."""

    citizen_id: int
    role: str
    jti: str
    family: str = ""
    expires_at: int = 0


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int

    def as_dict(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token, "token_type": "Bearer",
                "expires_in": self.expires_in, "refresh_expires_in": self.refresh_expires_in}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenService:
    """Issues, verifies, rotates and revokes tokens; state lives in ``kv`` (shared by processes)."""

    def __init__(self, secret: str, kv: KV, *, access_ttl_s: int = 900, refresh_ttl_s: int = 30 * 86400,
                 clock: Callable[[], float] = time.time) -> None:
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_CHARS:
            raise ValueError(f"the token secret must be at least {MIN_SECRET_CHARS} characters")
        if access_ttl_s <= 0 or refresh_ttl_s <= access_ttl_s:
            raise ValueError("token lifetimes: 0 < access TTL < refresh TTL")
        self._secret, self.kv = secret, kv
        self.access_ttl_s, self.refresh_ttl_s, self.clock = access_ttl_s, refresh_ttl_s, clock
        # token text -> its decoded principal and iat: the HMAC and claim checks of a token this
        # process has already verified are not redone on every request (time and revocation are)
        self._decoded: dict[str, tuple[Principal, int]] = {}

    def __repr__(self) -> str:  # never the secret
        return f"TokenService(access_ttl_s={self.access_ttl_s}, refresh_ttl_s={self.refresh_ttl_s})"

    async def issue(self, citizen_id: int, role: str = "citizen") -> TokenPair:
        """A new login: a new refresh-token family."""
        return await self._pair(citizen_id, role, uuid.uuid4().hex)

    async def _pair(self, citizen_id: int, role: str, family: str) -> TokenPair:
        now = int(self.clock())
        claims = {"iss": ISSUER, "sub": str(citizen_id), "role": role, "iat": now, "exp": now + self.access_ttl_s,
                  "jti": uuid.uuid4().hex, "typ": "access", "fam": family}
        access = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        refresh = secrets.token_urlsafe(32)
        record = {"family": family, "citizen_id": citizen_id, "role": role, "issued_at": now}
        await self.kv.set(f"refresh:{_digest(refresh)}", json.dumps(record), ex=self.refresh_ttl_s)
        return TokenPair(access, refresh, self.access_ttl_s, self.refresh_ttl_s)

    async def refresh(self, refresh_token: Any) -> TokenPair:
        """Rotate: claim ``refresh_token`` once, answer a new pair in its family."""
        if not isinstance(refresh_token, str) or not 16 <= len(refresh_token) <= 256:
            raise RefreshTokenInvalid()
        digest = _digest(refresh_token)
        raw = await self.kv.get(f"refresh:{digest}")
        if raw is None:
            raise RefreshTokenInvalid()
        record = json.loads(raw)
        family = str(record["family"])
        if await self.kv.get(f"family:{family}:revoked") is not None:
            raise RefreshTokenRevoked()
        remaining = await self.kv.ttl(f"refresh:{digest}") or self.refresh_ttl_s
        if not await self.kv.set_nx(f"refresh:{digest}:used", "1", ex=remaining):
            await self.revoke_family(family)
            log.warning("refresh_token_reused", family=family, citizen_id=record["citizen_id"],
                        token_digest=digest[:12])
            raise RefreshTokenReused()
        return await self._pair(int(record["citizen_id"]), str(record["role"]), family)

    async def verify(self, token: str) -> Principal:
        """The principal of a valid, unexpired, unrevoked access token; else a ``BearerError``."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise TokenInvalid()
        decoded = self._decoded.get(token)
        if decoded is None:
            decoded = self._decode(token)
            if len(self._decoded) >= DECODED_CACHE_SIZE:
                self._decoded.pop(next(iter(self._decoded)))
            self._decoded[token] = decoded
        principal, iat = decoded
        now = self.clock()
        if iat > now + IAT_LEEWAY_S:
            raise TokenInvalid()
        if principal.expires_at <= now:
            raise TokenExpired()
        # never cached: a logout or a reused refresh token revokes in every process at once
        if await self.kv.exists_any(f"access:denied:{principal.jti}", f"family:{principal.family}:revoked"):
            raise TokenRevoked()
        return principal

    def _decode(self, token: str) -> tuple[Principal, int]:
        """Signature and claim shape (not time: ``verify`` checks that on every use)."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], issuer=ISSUER,
                                options={"require": _REQUIRED_CLAIMS, "verify_exp": False,
                                         "verify_iat": False, "verify_nbf": False})
        except jwt.InvalidTokenError:
            raise TokenInvalid() from None
        exp, iat, sub = claims["exp"], claims["iat"], claims["sub"]
        if (claims["typ"] != "access" or not all(type(v) is int for v in (exp, iat))
                or not isinstance(sub, str) or not sub.isdigit()
                or not all(isinstance(claims[k], str) and claims[k] for k in ("role", "jti", "fam"))):
            raise TokenInvalid()
        return Principal(int(sub), claims["role"], claims["jti"], claims["fam"], exp), iat

    async def revoke_family(self, family: str) -> None:
        """Every refresh token of ``family`` and the access tokens issued with them stop working."""
        await self.kv.set(f"family:{family}:revoked", "1", ex=self.refresh_ttl_s)

    async def logout(self, principal: Principal) -> None:
        """End this login: revoke its family, denylist this access token until it expires."""
        await self.revoke_family(principal.family)
        ttl = max(1.0, principal.expires_at - self.clock() + IAT_LEEWAY_S)
        await self.kv.set(f"access:denied:{principal.jti}", "1", ex=ttl)


def jwt_secret_from_settings(settings: Any) -> str:
    """``JWT_SECRET`` (>= 32 chars); required in production, a fixed public one in development."""
    global _warned_dev_secret
    secret = str(settings.JWT_SECRET or "")
    if secret:
        if settings.is_production and secret.strip() == _DEV_SECRET:  # copied from the code: public
            raise ValueError("GOVFLOW_JWT_SECRET is the public development secret: production refuses it")
        if len(secret) < MIN_SECRET_CHARS:
            raise ValueError(f"GOVFLOW_JWT_SECRET must be at least {MIN_SECRET_CHARS} characters")
        return secret
    if settings.is_production:
        raise ValueError("GOVFLOW_JWT_SECRET is required in production (e.g. `python -c \"import secrets; "
                         "print(secrets.token_urlsafe(48))\"`)")
    if not _warned_dev_secret:
        _warned_dev_secret = True
        log.warning("jwt_dev_secret", message="GOVFLOW_JWT_SECRET is not set: tokens are signed with the fixed, "
                    "PUBLIC development secret; anyone can forge them. Never run like this in production.")
    return _DEV_SECRET


# --------------------------------------------------------------------------- per-app state

@dataclass
class AuthState:
    """What the auth endpoints of one app share (built when its server starts)."""

    tokens: TokenService
    wechat: CodeExchanger
    verifier: RealNameVerifier
    pii_keys: PiiKeys


_STATES: dict[str, tuple[Sanic, AuthState]] = {}  # app name -> (app, state); Sanic apps cannot be weakly referenced


def auth_state(app: Sanic) -> AuthState:
    """This app's ``AuthState``, built on first use from ``app.ctx.settings`` and ``app.ctx.kv``."""
    entry = _STATES.get(app.name)
    if entry is not None and entry[0] is app:
        return entry[1]
    settings = app.ctx.settings
    state = AuthState(
        tokens=TokenService(jwt_secret_from_settings(settings), app.ctx.kv, access_ttl_s=settings.ACCESS_TOKEN_TTL_S,
                            refresh_ttl_s=settings.REFRESH_TOKEN_TTL_S),
        wechat=wechat_client_from_settings(settings), verifier=real_name_verifier_from_settings(settings),
        pii_keys=PiiKeys.from_settings(settings))
    _STATES[app.name] = (app, state)
    return state


async def close_auth_state(app: Sanic) -> None:
    """Forget this app's state and close its WeChat client (after the server stopped)."""
    entry = _STATES.get(app.name)
    if entry is not None and entry[0] is app:
        del _STATES[app.name]
        await entry[1].wechat.aclose()


# --------------------------------------------------------------------------- guard

async def require_principal(request: Request) -> Principal:
    """The principal of the request's ``Authorization: Bearer <token>``; 401 otherwise."""
    header = request.headers.get("authorization", "")
    if not header.strip():
        raise NotLoggedIn()
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenInvalid()
    return await auth_state(request.app).tokens.verify(token.strip())


async def require_citizen(request: Request) -> Principal:
    """As ``require_principal``, and the token must be a citizen's (403 otherwise)."""
    principal = await require_principal(request)
    if principal.role != "citizen":
        raise Forbidden("该接口仅供群众账号使用")
    return principal


def citizen_required(handler: H) -> H:
    """Run ``handler`` only for a citizen's token; sets ``request.ctx.principal`` and documents
    the bearer requirement in OpenAPI. Put it below the ``openapi`` decorators."""
    @functools.wraps(handler)
    async def guarded(request: Request, *args: Any, **kwargs: Any) -> Any:
        principal = await require_citizen(request)
        request.ctx.principal = principal
        structlog.contextvars.bind_contextvars(citizen_id=principal.citizen_id)
        return await handler(request, *args, **kwargs)

    return openapi.secured({SECURITY_SCHEME: []})(guarded)  # type: ignore[return-value]


# --------------------------------------------------------------------------- rate limits

@dataclass(frozen=True)
class RateRule:
    limit: int
    window_s: int
    threat: str


# Every limit names the threat it answers; tests and operators may tune the numbers here.
RATE_LIMITS: dict[str, RateRule] = {
    "login_per_ip": RateRule(60, 60, "credential stuffing: one address replaying many codes"),
    "login_per_code": RateRule(3, 300, "replay of one leaked code (valid 5 minutes) from many addresses"),
    "refresh_per_ip": RateRule(60, 60, "refresh-token guessing and token-endpoint floods"),
    "real_name_per_citizen": RateRule(10, 3600, "ID-number enumeration: probing which numbers are bound (409)"),
    # generous: a service hall's Wi-Fi puts many honest citizens behind one address
    "real_name_per_ip": RateRule(100, 3600, "ID-number enumeration spread over throw-away accounts"),
}


def client_ip(request: Request) -> str:
    """The caller's address: a proxy's header only when the app is configured to trust it."""
    return str(request.remote_addr or request.ip or "unknown")


async def rate_limit(request: Request, rule: str, key: str, limit: int | None = None,
                     window_s: int | None = None) -> None:
    """Count one hit of ``rule`` for ``key``; over the limit → 429 ``rate_limited`` with ``Retry-After``.

    ``rule`` must be in ``RATE_LIMITS``; ``limit``/``window_s`` default to its numbers. ``key``
    must not be a secret (hash codes and tokens first).
    """
    spec = RATE_LIMITS[rule]
    window = window_s or spec.window_s
    kv: KV = request.app.ctx.kv
    await enforce_limit(request, rule, key, await kv.incr_window(f"rate:{rule}:{key}", window), limit, window)


async def count_hit(request: Request, rule: str, key: str, window_s: int | None = None,
                    *, read: tuple[str, ...] = ()) -> tuple[int, list[str | None]]:
    """Count one hit of ``rule`` for ``key`` without judging it, and read the KV keys ``read`` in the
    same round trip (a hot path's cache versions): ``(hits in the window, values)``. Follow it with
    ``enforce_limit`` — split so a caller may learn the limit from what it read (a cached row
    confirmed by the version that came back)."""
    window = window_s or RATE_LIMITS[rule].window_s
    kv: KV = request.app.ctx.kv
    return await kv.incr_window_read(f"rate:{rule}:{key}", window, *read)


async def enforce_limit(request: Request, rule: str, key: str, hits: int, limit: int | None = None,
                        window_s: int | None = None) -> None:
    """429 ``rate_limited`` (with ``Retry-After``) when ``hits`` (from ``count_hit``) exceed the limit."""
    spec = RATE_LIMITS[rule]
    if hits > (limit or spec.limit):
        counter = f"rate:{rule}:{key}"
        kv: KV = request.app.ctx.kv
        retry_after = await kv.ttl(counter) or window_s or spec.window_s
        log.warning("rate_limited", rule=rule, key=key, retry_after=round(retry_after, 1))
        raise RateLimited(retry_after=retry_after)


__all__ = [
    "RATE_LIMITS", "AuthState", "BearerError", "NotLoggedIn", "Principal", "RateRule", "RefreshTokenInvalid",
    "RefreshTokenReused", "RefreshTokenRevoked", "TokenExpired", "TokenInvalid", "TokenPair", "TokenRevoked",
    "TokenService", "UpstreamRateLimited", "auth_state", "citizen_required", "client_ip", "close_auth_state",
    "count_hit", "enforce_limit",
    "jwt_secret_from_settings", "rate_limit", "require_citizen", "require_principal",
]
