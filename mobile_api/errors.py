"""API errors and the one place every exception becomes a JSON response.

Every error body is ``{"error": {"code", "message" (Chinese), "fields"?}}`` with a stable
English ``code``. Errors come from the one tree in ``engine.errors``; each has a ``kind``, and
``STATUS_BY_KIND`` below is the only place kinds become HTTP statuses. The edge adds a few
errors of its own (below) and translates Sanic's exceptions into the same shape
(``EdgeRefusal`` keeps Sanic's status for the rare ones without a kind: 408, 414, 416, 417).
``Allow`` (405) and ``Retry-After`` (429) headers follow from the error. Anything unexpected is
logged with its traceback and answered with a bare 500 ``internal``.
"""

from __future__ import annotations

from typing import Any

import structlog
from sanic import Sanic
from sanic import exceptions as sanic_errors
from sanic.request import Request
from sanic.response import HTTPResponse, json
from tortoise.exceptions import DBConnectionError

from engine.errors import (
    BadRequest,
    DependencyDown,
    Forbidden,
    GovflowError,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthenticated,
    UnsupportedType,
)

log = structlog.get_logger("govflow.api")

STATUS_BY_KIND: dict[str, int] = {
    "internal": 500, "bad_request": 400, "invalid": 422, "unauthenticated": 401, "forbidden": 403,
    "not_found": 404, "method_not_allowed": 405, "conflict": 409, "too_large": 413,
    "unsupported_type": 415, "rate_limited": 429, "unavailable": 503,
}


def status_of(error: GovflowError) -> int:
    """The HTTP status of an error: by its kind (an ``EdgeRefusal`` keeps Sanic's own)."""
    return getattr(error, "status", None) or STATUS_BY_KIND.get(error.kind, 500)


class EdgeRefusal(BadRequest):
    """A Sanic refusal with no kind of its own (408, 414, 416, 417, 503 …): keeps its status."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class InvalidJSON(BadRequest):
    code = "invalid_json"
    default_message = "请求体不是有效的 JSON"


class Unauthorized(Unauthenticated):
    code = "unauthorized"
    default_message = "未登录或登录已失效"


class RouteNotFound(NotFound):
    code = "not_found"
    default_message = "请求的地址不存在"


class PayloadTooLarge(TooLarge):
    code = "payload_too_large"
    default_message = "请求内容过大"


class UnsupportedMediaType(UnsupportedType):
    code = "unsupported_media_type"
    default_message = "不支持的内容类型，请使用 application/json"


def error_headers(error: GovflowError) -> dict[str, str]:
    """Headers an error implies: ``Allow`` for 405, ``Retry-After`` for 429, and whatever an
    edge error declares through a ``headers()`` method (``WWW-Authenticate`` for 401)."""
    own = getattr(error, "headers", None)
    if callable(own):
        return {k: str(v) for k, v in own().items()}
    if isinstance(error, MethodNotAllowed) and error.allowed:
        return {"Allow": ", ".join(sorted(error.allowed))}
    if isinstance(error, RateLimited):
        return {"Retry-After": str(error.retry_after)}
    return {}


# The error body as a JSON Schema, for the OpenAPI document of every endpoint.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "stable machine code, e.g. not_found"},
            "message": {"type": "string", "description": "中文说明"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"},
                       "description": "field path -> 中文说明"},
        },
    }},
}

# Sanic exceptions by status when no specific translation applies: (code, Chinese message).
_SANIC_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "请求无效"),
    401: ("unauthorized", "未登录或登录已失效"),
    403: ("forbidden", "无权执行此操作"),
    408: ("request_timeout", "请求超时"),
    414: ("uri_too_long", "请求地址过长"),
    416: ("range_not_satisfiable", "请求的范围无效"),
    417: ("expectation_failed", "无法满足 Expect 请求头"),
    503: ("service_unavailable", "服务暂不可用，请稍后重试"),
}


class DatabaseUnavailable(DependencyDown):
    code = "database_unavailable"
    default_message = "数据库暂不可用，请稍后重试"


def _connection_errors() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [ConnectionError, DBConnectionError]
    try:
        from asyncpg import exceptions as pg
    except ImportError:  # pragma: no cover - asyncpg is a dependency; SQLite-only installs may lack it
        return tuple(kinds)
    # class 08 (connection exceptions) and 57 (operator intervention: shutdown, cannot connect now)
    return (*kinds, pg.PostgresConnectionError, pg.OperatorInterventionError)


_DATABASE_DOWN = _connection_errors()


def database_down(exc: BaseException | None) -> bool:
    """True when ``exc`` or an exception it was raised from means the database cannot be reached."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, _DATABASE_DOWN):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def to_govflow_error(exc: BaseException) -> GovflowError:
    """Translate any exception into the hierarchy above; unknown ones become 500 ``internal``.
    A database that cannot be reached (refused, dropped, shutting down) is a 503
    ``database_unavailable``: the request may be retried once it is back."""
    if isinstance(exc, GovflowError):
        return exc
    if database_down(exc):
        return DatabaseUnavailable(detail=f"{exc.__class__.__name__}: {exc}")
    if isinstance(exc, sanic_errors.NotFound):
        return RouteNotFound()
    if isinstance(exc, sanic_errors.MethodNotAllowed):
        return MethodNotAllowed(allowed=list(getattr(exc, "allowed_methods", None) or []))
    if isinstance(exc, sanic_errors.PayloadTooLarge):
        return PayloadTooLarge()
    if isinstance(exc, sanic_errors.SanicException):
        status = int(getattr(exc, "status_code", 500) or 500)
        if status < 500 or status in _SANIC_BY_STATUS:
            code, message = _SANIC_BY_STATUS.get(status, ("bad_request", "请求无效"))
            return EdgeRefusal(message, status=status, code=code)
    return GovflowError()


def error_response(exc: BaseException) -> HTTPResponse:
    """The JSON response for ``exc``; carries ``Allow``/``Retry-After`` where they apply."""
    return _respond(exc, to_govflow_error(exc))


def _respond(exc: BaseException, error: GovflowError) -> HTTPResponse:
    headers: dict[str, str] = {}
    status = status_of(error)
    if isinstance(exc, sanic_errors.SanicException) and status < 500:
        headers = {k: str(v) for k, v in (getattr(exc, "headers", None) or {}).items()}
    headers.update(error_headers(error))
    return json(error.to_dict(), status=status, headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """Methods the router serves at ``request.path``. Sanic names them for static paths only;
    a 405 on a path with parameters (``/applications/<id>``) must still send ``Allow`` (RFC 9110)."""
    allowed = []
    for method in _METHODS:
        try:
            request.app.router.get(request.path, method, request.headers.get("host"))
        except Exception:  # noqa: BLE001 - not served with this method
            continue
        allowed.append(method)
    return allowed


async def handle_error(request: Request, exc: Exception) -> HTTPResponse:
    """Sanic's catch-all handler: map, log server-side failures, never leak a traceback."""
    error = to_govflow_error(exc)
    if isinstance(error, MethodNotAllowed) and not error.allowed:
        error.allowed = _allowed_methods(request)
    status = status_of(error)
    if status >= 500:
        event: dict[str, Any] = {"path": request.path, "method": request.method,
                                 "status": status, "code": error.code}
        if error.code != "internal":  # a known condition, e.g. a dependency down
            log.warning("request_failed", detail=str(error.detail or ""), **event)
        else:
            log.error("unhandled_exception", exc_info=exc, **event)
    return _respond(exc, error)


MAX_ROW_ID = 2**31 - 1  # object ids in paths are 32-bit serials (PostgreSQL ``integer``)


async def refuse_impossible_ids(request: Request) -> None:
    """An ``<id:int>`` path parameter no row can have (0, negative, or past the column's range)
    is a 404 before any query: the database would otherwise fail with an overflow (a 500)."""
    for value in (request.match_info or {}).values():
        if type(value) is int and not 0 < value <= MAX_ROW_ID:
            raise NotFound()


def setup_errors(app: Sanic) -> None:
    """Route every exception through ``handle_error``; refuse impossible ids early."""
    app.error_handler.add(Exception, handle_error)
    app.register_middleware(refuse_impossible_ids, "request")


__all__ = [
    "ERROR_SCHEMA",
    "STATUS_BY_KIND",
    "DatabaseUnavailable",
    "EdgeRefusal",
    "Forbidden",
    "InvalidJSON",
    "MethodNotAllowed",
    "PayloadTooLarge",
    "RateLimited",
    "RouteNotFound",
    "Unauthorized",
    "UnsupportedMediaType",
    "error_headers",
    "error_response",
    "handle_error",
    "setup_errors",
    "status_of",
    "to_govflow_error",
]
