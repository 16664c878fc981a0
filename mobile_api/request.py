"""The API's request class and body helpers.

``ApiRequest`` reports a malformed JSON body as ``InvalidJSON`` (400 ``invalid_json``) instead
of Sanic's generic bad request, so clients get a stable code. Handlers that take a JSON object
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
            self.parsed_json = (loads or self.__class__._loads)(self.body)
        except (ValueError, TypeError):
            raise InvalidJSON() from None
        return self.parsed_json


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


__all__ = ["ApiRequest", "RequestContext", "json_body"]
