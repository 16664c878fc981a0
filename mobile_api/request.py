"""The API's request class and body helpers.

``ApiRequest`` reports a malformed JSON body as ``InvalidJSON`` (400 ``invalid_json``) instead
of Sanic's generic bad request, so clients get a stable code; so is a body whose text holds U+0000. Handlers that take a JSON object
call ``json_body(request)``, which also enforces the media type (415).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sanic import Sanic
from sanic.request import Request

from engine.errors import ValidationFailed
from mobile_api.errors import InvalidJSON, UnsupportedMediaType


class RequestContext(SimpleNamespace):
    """Per-request state; later layers (auth) add their own fields."""

    request_id: str | None
    started: float

    def __init__(self) -> None:
        super().__init__(request_id=None, started=0.0)


class ApiRequest(Request[Sanic, RequestContext]):
    """Sanic's request with a typed ``ctx`` and stable JSON errors."""

    @staticmethod
    def make_context() -> RequestContext:
        return RequestContext()

    def load_json(self, loads: Any = None) -> Any:
        """Parse the body as JSON; an empty body is ``None``, a malformed one ``InvalidJSON``."""
        if not self.body:
            self.parsed_json = None
            return None
        try:
            parsed = (loads or self.__class__._loads)(self.body)
        except (ValueError, TypeError):
            raise InvalidJSON() from None
        if _unstorable(parsed):
            raise InvalidJSON("请求体的文本中不能包含空字符（\\u0000）或不成对的代理字符")
        self.parsed_json = parsed
        return parsed


def _unstorable(value: Any) -> bool:
    """True when any string (or key) in parsed JSON holds U+0000 or a lone surrogate (``\\ud800``):
    PostgreSQL text and jsonb cannot store them and UTF-8 cannot encode the latter, so they would
    fail deep in a query (a 500) instead of here (400)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object: 415 for another media type, 400 when unparseable, 422 when not an object."""
    media_type = (request.content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType()
    body = request.json
    if body is None:
        raise InvalidJSON("请求体不能为空")
    if not isinstance(body, dict):
        raise ValidationFailed("请求体必须是 JSON 对象")
    return body



def int_arg(request: Request, name: str, default: int, high: int) -> int:
    """A page-style query argument: ``default`` when absent, else an integer 1..``high`` (422 otherwise)."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise ValidationFailed("分页参数无效", fields={name: f"应为 1–{high} 的整数"})
    return int(raw)


__all__ = ["ApiRequest", "RequestContext", "int_arg", "json_body"]
