"""Every failure answers with the JSON error shape and a stable code, never a traceback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, json

from engine.errors import Conflict, DependencyDown, ValidationFailed
from mobile_api.errors import RateLimited, error_response
from mobile_api.request import json_body
from tests.api.conftest import serving

MAX_BODY = 4096


def add_test_routes(app: Sanic) -> None:
    """Routes that exist only in these tests; none of them echoes its input."""

    async def take_json(request: Request) -> HTTPResponse:
        return json({"keys": len(json_body(request))})

    async def crash(request: Request) -> HTTPResponse:
        raise RuntimeError("secret internal detail /etc/passwd")

    async def invalid(request: Request) -> HTTPResponse:
        raise ValidationFailed(fields={"applicant.phone": "手机号格式不正确"})

    async def busy(request: Request) -> HTTPResponse:
        raise RateLimited(retry_after=2.3)

    app.add_route(take_json, "/test/json", methods=["POST"])
    app.add_route(crash, "/test/crash")
    app.add_route(invalid, "/test/invalid")
    app.add_route(busy, "/test/busy")


@pytest.fixture
async def api(make_app: Callable[..., Sanic]) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(REDIS_URL="", MAX_BODY_BYTES=MAX_BODY)
    add_test_routes(app)
    async with serving(app) as client:
        yield client


def error_of(response: httpx.Response) -> dict:
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    return body["error"]


async def test_valid_json_object_is_accepted(api: httpx.AsyncClient) -> None:
    response = await api.post("/test/json", json={"a": 1, "b": 2})
    assert response.status_code == 200 and response.json() == {"keys": 2}


@pytest.mark.parametrize("body", [b"{not json", b'{"a": 1,}', b"\xff\xfe", b'{"a": "unterminated'])
async def test_malformed_json_is_400_invalid_json(api: httpx.AsyncClient, body: bytes) -> None:
    response = await api.post("/test/json", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


async def test_json_array_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post("/test/json", json=[1, 2])
    assert response.status_code == 422 and error_of(response)["code"] == "validation_failed"


async def test_wrong_media_type_is_415(api: httpx.AsyncClient) -> None:
    response = await api.post("/test/json", content=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415 and error_of(response)["code"] == "unsupported_media_type"


async def test_unknown_path_is_404_json(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "not_found" and error["message"] == "请求的地址不存在"


async def test_wrong_method_is_405_with_allow(api: httpx.AsyncClient) -> None:
    response = await api.delete("/health")
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


async def test_oversized_body_is_413_json(api: httpx.AsyncClient) -> None:
    response = await api.post("/test/json", content=b'{"a": "' + b"x" * (MAX_BODY * 2) + b'"}',
                              headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and error_of(response)["code"] == "payload_too_large"
    assert response.headers.get("X-Request-ID")


async def test_unexpected_exception_is_500_without_details(api: httpx.AsyncClient) -> None:
    response = await api.get("/test/crash")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal", "message": "系统内部错误"}}
    assert "secret" not in response.text and "Traceback" not in response.text


async def test_engine_error_keeps_status_code_and_fields(api: httpx.AsyncClient) -> None:
    response = await api.get("/test/invalid")
    assert response.status_code == 422
    assert error_of(response) == {"code": "validation_failed", "message": "提交的数据不符合要求",
                                  "fields": {"applicant.phone": "手机号格式不正确"}}


async def test_rate_limited_sends_retry_after(api: httpx.AsyncClient) -> None:
    response = await api.get("/test/busy")
    assert response.status_code == 429 and error_of(response)["code"] == "rate_limited"
    assert response.headers["Retry-After"] == "3"


@pytest.mark.parametrize("exc, status, code", [
    (Conflict(), 409, "conflict"),
    (DependencyDown(), 503, "dependency_unavailable"),
    (KeyError("x"), 500, "internal"),
])
def test_error_response_maps_every_govflow_error(exc: Exception, status: int, code: str) -> None:
    response = error_response(exc)
    assert response.status == status and code.encode() in response.body
