"""Citizen auth over real HTTP: login (dev and through a fake WeChat server), tokens, refresh
rotation with reuse detection, logout, /me, real-name binding, rate limits, OpenAPI.

Every ``/api/v1`` response goes through ``Api.call``, which checks that the route documents the
status and that the JSON body matches the documented schema.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import redis.asyncio as aioredis
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec
from sanic import Sanic

from engine.certificates.keys import generate_signer, write_key_file
from engine.config import Settings
from engine.platform.kv import create_kv
from mobile_api import app as app_module
from mobile_api.auth import RATE_LIMITS, RateRule, auth_state, jwt_secret_from_settings
from tests.api.conftest import serving
from tests.conftest import REDIS_URL
from tests.fakes.wechat_server import APPID, SECRET, SESSION_KEY_PREFIX, FakeWeChat

JWT_SECRET = "test-only-jwt-secret-0123456789abcdef"
PII_KEY = "ab" * 32
ZHANG_ID = "11010519491231002X"
LI_ID = "310104196103150273"
API_PATHS = ("/api/v1/auth/miniprogram", "/api/v1/auth/refresh", "/api/v1/auth/logout", "/api/v1/me",
             "/api/v1/me/real-name")


class Api:
    """An httpx client that checks every /api/v1 answer against the app's OpenAPI document."""

    def __init__(self, client: httpx.AsyncClient, app: Sanic) -> None:
        self.client, self.app = client, app
        self._spec: dict[str, Any] | None = None

    async def spec(self) -> dict[str, Any]:
        if self._spec is None:
            self._spec = (await self.client.get("/docs/openapi.json")).json()
        return self._spec

    async def call(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = await self.client.request(method, path, headers=headers, **kwargs)
        operation = (await self.spec())["paths"][path][method.lower()]
        documented = operation["responses"]
        assert str(response.status_code) in documented, (path, response.status_code, response.text)
        if response.status_code != 204:
            schema = documented[str(response.status_code)]["content"]["application/json"]["schema"]
            OAS30Validator(schema).validate(response.json())
        return response

    async def login(self, code: str = "dev-alice") -> dict[str, Any]:
        response = await self.call("POST", "/api/v1/auth/miniprogram", json={"code": code})
        assert response.status_code == 200, response.text
        return response.json()


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert not error["message"].isascii()  # a Chinese message
    return error


def assert_bearer_401(response: httpx.Response, code: str) -> None:
    error_of(response, 401, code)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.fixture
async def kv_prefix(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """A key prefix of this test's own: Redis counters and tokens never meet another test's."""
    prefix = f"govflow-test-{uuid.uuid4().hex[:12]}:"
    monkeypatch.setattr(app_module, "create_kv", lambda url, **_: create_kv(url, prefix=prefix))
    yield prefix
    if REDIS_URL:
        client = aioredis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


@pytest.fixture
def running(make_app: Callable[..., Sanic], kv_prefix: str) -> Callable[..., Any]:
    """``async with running(**settings) as api``: a served app (Redis in the PostgreSQL pass)."""
    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[Api]:
        app = make_app(**{"JWT_SECRET": JWT_SECRET, **overrides})
        async with serving(app) as client:
            yield Api(client, app)
    return run


@pytest.fixture
async def api(running: Callable[..., Any]) -> AsyncIterator[Api]:
    async with running() as served:
        yield served


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_for(sub: str = "1", **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": "govflow", "sub": sub, "role": "citizen", "iat": now, "exp": now + 600,
            "jti": uuid.uuid4().hex, "typ": "access", "fam": uuid.uuid4().hex, **extra}


# --------------------------------------------------------------------------- login and /me

async def test_dev_login_returns_tokens_and_the_masked_citizen(api: Api) -> None:
    body = await api.login("dev-alice")
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["citizen"]["real_name_level"] == 0 and body["citizen"]["real_name_bound"] is False
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "HS256"
    claims = jwt.decode(body["access_token"], JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == str(body["citizen"]["id"]) and claims["role"] == "citizen"
    assert claims["typ"] == "access" and claims["exp"] - claims["iat"] == 900 and claims["jti"]
    again = await api.login("dev-alice")
    assert again["citizen"]["id"] == body["citizen"]["id"] and again["refresh_token"] != body["refresh_token"]
    assert (await api.login("dev-bob"))["citizen"]["id"] != body["citizen"]["id"]


async def test_me_needs_a_bearer_token(api: Api) -> None:
    assert_bearer_401(await api.call("GET", "/api/v1/me"), "unauthorized")
    basic = await api.call("GET", "/api/v1/me", headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"})
    assert_bearer_401(basic, "token_invalid")
    body = await api.login()
    me = await api.call("GET", "/api/v1/me", token=body["access_token"])
    assert me.status_code == 200 and me.json() == body["citizen"]


async def test_login_body_is_validated(api: Api) -> None:
    url = "/api/v1/auth/miniprogram"
    error_of(await api.call("POST", url, content=b"{not json", headers={"Content-Type": "application/json"}),
             400, "invalid_json")
    error_of(await api.call("POST", url, content=b"code=dev-a", headers={"Content-Type": "text/plain"}),
             415, "unsupported_media_type")
    assert set(error_of(await api.call("POST", url, json={"code": 7}), 422, "validation_failed")["fields"]) == {"code"}
    error_of(await api.call("POST", url, json={"code": "alice"}), 401, "wechat_code_invalid")


# --------------------------------------------------------------------------- token checks

async def test_expired_tokens_are_refused(api: Api) -> None:
    body = await api.login()
    past = claims_for(str(body["citizen"]["id"]), iat=int(time.time()) - 1000, exp=int(time.time()) - 100)
    assert_bearer_401(await api.call("GET", "/api/v1/me", token=jwt.encode(past, JWT_SECRET)), "token_expired")
    tokens = auth_state(api.app).tokens
    tokens.clock = lambda: time.time() + 901  # the service's clock, injected: the fresh token is now stale
    assert_bearer_401(await api.call("GET", "/api/v1/me", token=body["access_token"]), "token_expired")
    tokens.clock = time.time
    assert (await api.call("GET", "/api/v1/me", token=body["access_token"])).status_code == 200


async def test_forged_and_tampered_tokens_are_refused(api: Api) -> None:
    body = await api.login()
    sub = str(body["citizen"]["id"])
    good = body["access_token"]
    head, payload, signature = good.split(".")
    hs_rs = base64.urlsafe_b64encode(
        jwt.api_jws.get_algorithm_by_name("HS256").sign(  # RS256 header, HMAC-signed: key confusion
            f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{payload}".encode(), JWT_SECRET.encode())
    ).rstrip(b"=").decode()
    with warnings.catch_warnings():  # PyJWT warns that the secret is short for HS512: that is the point
        warnings.simplefilter("ignore")
        hs512 = jwt.encode(claims_for(sub), JWT_SECRET, algorithm="HS512")
    forged = {
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims_for(sub))}.",
        "alg None": f"{b64({'alg': 'None'})}.{b64(claims_for(sub))}.",
        "HS512 same secret": hs512,
        "HS256 signature under an HS512 header": f"{b64({'alg': 'HS512', 'typ': 'JWT'})}.{payload}.{signature}",
        "RS256 confusion": f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{payload}.{hs_rs}",
        "other secret": jwt.encode(claims_for(sub), "another-secret-of-enough-length-0123456789"),
        "tampered signature": f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}",
        "tampered payload": f"{head}.{b64(claims_for('999'))}.{signature}",
        "no exp": jwt.encode({k: v for k, v in claims_for(sub).items() if k != "exp"}, JWT_SECRET),
        "no sub": jwt.encode({k: v for k, v in claims_for(sub).items() if k != "sub"}, JWT_SECRET),
        "wrong typ": jwt.encode(claims_for(sub, typ="refresh"), JWT_SECRET),
        "wrong issuer": jwt.encode(claims_for(sub, iss="someone-else"), JWT_SECRET),
        "odd subject": jwt.encode(claims_for("admin"), JWT_SECRET),
        "issued in the future": jwt.encode(claims_for(sub, iat=int(time.time()) + 3600,
                                                      exp=int(time.time()) + 7200), JWT_SECRET),
        "garbage": "not-a-jwt",
        "huge": "a" * 5000,  # over MAX_TOKEN_CHARS, under the header size limit
    }
    for name, token in forged.items():
        response = await api.call("GET", "/api/v1/me", token=token)
        assert response.status_code == 401, name
        assert response.json()["error"]["code"] == "token_invalid", name
    assert (await api.call("GET", "/api/v1/me", token=good)).status_code == 200


# --------------------------------------------------------------------------- refresh and logout

async def refresh(api: Api, token: Any) -> httpx.Response:
    return await api.call("POST", "/api/v1/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(api: Api) -> None:
    first = await api.login()
    second = (await refresh(api, first["refresh_token"])).json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    assert (await api.call("GET", "/api/v1/me", token=second["access_token"])).status_code == 200
    third = (await refresh(api, second["refresh_token"])).json()
    other_login = await api.login()  # another family of the same citizen: unaffected below

    assert_bearer_401(await refresh(api, first["refresh_token"]), "refresh_token_reused")
    assert_bearer_401(await refresh(api, third["refresh_token"]), "refresh_token_revoked")
    assert_bearer_401(await api.call("GET", "/api/v1/me", token=third["access_token"]), "token_revoked")
    assert (await api.call("GET", "/api/v1/me", token=other_login["access_token"])).status_code == 200
    assert (await refresh(api, other_login["refresh_token"])).status_code == 200


async def test_refresh_refuses_unknown_and_malformed_tokens(api: Api) -> None:
    assert_bearer_401(await refresh(api, "x" * 43), "refresh_token_invalid")
    assert_bearer_401(await refresh(api, "short"), "refresh_token_invalid")
    error = error_of(await refresh(api, 12345), 422, "validation_failed")
    assert set(error["fields"]) == {"refresh_token"}
    access = (await api.login())["access_token"]
    assert_bearer_401(await refresh(api, access), "refresh_token_invalid")  # an access token is not one


async def test_logout_revokes_access_and_refresh_tokens(api: Api) -> None:
    assert_bearer_401(await api.call("POST", "/api/v1/auth/logout"), "unauthorized")
    body = await api.login()
    out = await api.call("POST", "/api/v1/auth/logout", token=body["access_token"])
    assert out.status_code == 204 and out.content == b""
    assert_bearer_401(await api.call("GET", "/api/v1/me", token=body["access_token"]), "token_revoked")
    assert_bearer_401(await api.call("POST", "/api/v1/auth/logout", token=body["access_token"]), "token_revoked")
    assert_bearer_401(await refresh(api, body["refresh_token"]), "refresh_token_revoked")
    again = await api.login()
    assert (await api.call("GET", "/api/v1/me", token=again["access_token"])).status_code == 200


# --------------------------------------------------------------------------- WeChat through the fake server

@pytest.fixture
def wechat() -> Any:
    with FakeWeChat(hang_s=3) as server:
        yield server
    assert server.problems == []


def wechat_settings(server: FakeWeChat) -> dict[str, Any]:
    return {"WECHAT_APPID": APPID, "WECHAT_SECRET": SECRET, "WECHAT_API_BASE": server.url, "WECHAT_TIMEOUT_MS": 500}


async def test_wechat_login_and_error_mapping(running: Callable[..., Any], wechat: FakeWeChat,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    tag = uuid.uuid4().hex[:8]
    bodies: list[str] = []
    async with running(**wechat_settings(wechat)) as api:
        ok = await api.call("POST", "/api/v1/auth/miniprogram", json={"code": f"ok-{tag}"})
        assert ok.status_code == 200 and ok.json()["citizen"]["real_name_level"] == 0
        bodies.append(ok.text)
        expected = {"bad": (401, "wechat_code_invalid"), "used": (401, "wechat_code_invalid"),
                    "slow": (429, "wechat_rate_limited"), "risky": (403, "wechat_risky_user"),
                    "garbage": (503, "dependency_unavailable"), "http500": (503, "dependency_unavailable"),
                    "busy": (503, "dependency_unavailable"), "hang": (503, "dependency_unavailable"),
                    "dev": (401, "wechat_code_invalid")}  # dev-<name> means nothing to real WeChat
        for kind, (status, code) in expected.items():
            response = await api.call("POST", "/api/v1/auth/miniprogram", json={"code": f"{kind}-{tag}"})
            error_of(response, status, code)
            bodies.append(response.text)
            if status == 429:
                assert 1 <= int(response.headers["Retry-After"]) <= 60
    logs = capsys.readouterr().out
    assert wechat.requests[0].params["js_code"] == f"ok-{tag}"
    for text in [*bodies, logs]:
        assert SESSION_KEY_PREFIX not in text and SECRET not in text
    assert f"ok-{tag}" not in logs  # the code travels in the query string; httpx's log line is redacted


async def test_wechat_unreachable_is_503(running: Callable[..., Any]) -> None:
    closed = {"WECHAT_APPID": APPID, "WECHAT_SECRET": SECRET, "WECHAT_API_BASE": "http://127.0.0.1:1",
              "WECHAT_TIMEOUT_MS": 1000}
    async with running(**closed) as api:
        response = await api.call("POST", "/api/v1/auth/miniprogram", json={"code": "ok-x"})
        error_of(response, 503, "dependency_unavailable")


async def test_one_code_cannot_be_replayed_many_times(running: Callable[..., Any], wechat: FakeWeChat) -> None:
    code = f"bad-{uuid.uuid4().hex[:8]}"
    async with running(**wechat_settings(wechat)) as api:
        for _ in range(RATE_LIMITS["login_per_code"].limit):
            error_of(await api.call("POST", "/api/v1/auth/miniprogram", json={"code": code}), 401,
                     "wechat_code_invalid")
        response = await api.call("POST", "/api/v1/auth/miniprogram", json={"code": code})
        error_of(response, 429, "rate_limited")
        assert int(response.headers["Retry-After"]) >= 1
    assert len(wechat.requests) == RATE_LIMITS["login_per_code"].limit  # the limited call never reached WeChat


async def test_login_is_rate_limited_per_ip(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RATE_LIMITS, "login_per_ip", RateRule(3, 60, "test"))
    for i in range(3):
        await api.login(f"dev-user{i}")
    response = await api.call("POST", "/api/v1/auth/miniprogram", json={"code": "dev-user9"})
    error_of(response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 60


async def test_production_refuses_dev_codes(running: Callable[..., Any], wechat: FakeWeChat,
                                            tmp_path: Path) -> None:
    keys = tmp_path / "cert-keys"
    write_key_file(generate_signer(), keys)  # production refuses to start without signing keys
    production = {"ENV": "production", "PII_KEY": PII_KEY, "CERT_KEY_DIR": str(keys)}
    async with running(**production) as api:
        error_of(await api.call("POST", "/api/v1/auth/miniprogram", json={"code": "dev-alice"}),
                 503, "wechat_not_configured")
    async with running(**production, **wechat_settings(wechat)) as api:
        error_of(await api.call("POST", "/api/v1/auth/miniprogram", json={"code": "dev-alice"}),
                 401, "wechat_code_invalid")
    assert wechat.requests[-1].params["js_code"] == "dev-alice"  # asked WeChat, which said no


# --------------------------------------------------------------------------- real name

async def bind(api: Api, token: str, **kwargs: Any) -> httpx.Response:
    return await api.call("POST", "/api/v1/me/real-name", token=token, **kwargs)


async def test_real_name_binding_over_http(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    alice = (await api.login("dev-alice"))["access_token"]
    headers = {"Content-Type": "application/json"}
    error_of(await bind(api, alice, content=b'{"name": "\xe5\xbc\xa0', headers=headers), 400, "invalid_json")
    error_of(await bind(api, alice, content=b"name=x", headers={"Content-Type": "text/plain"}),
             415, "unsupported_media_type")
    wrong = error_of(await bind(api, alice, json={"name": 1, "id_number": 110105194912310020}), 422,
                     "validation_failed")
    assert set(wrong["fields"]) == {"name", "id_number"}
    bad_digit = error_of(await bind(api, alice, json={"name": "张三", "id_number": ZHANG_ID[:17] + "1"}), 422,
                         "validation_failed")
    assert set(bad_digit["fields"]) == {"id_number"}
    missing = await api.call("POST", "/api/v1/me/real-name", json={"name": "张三", "id_number": ZHANG_ID})
    assert_bearer_401(missing, "unauthorized")

    ok = await bind(api, alice, json={"name": "张三丰", "id_number": ZHANG_ID.lower()})
    assert ok.status_code == 200
    assert ok.json()["id_masked"] == "110***********002X" and ok.json()["name_masked"] == "张**"
    assert ok.json()["real_name_level"] == 2 and ok.json()["real_name_bound"] is True
    assert ZHANG_ID not in ok.text and ZHANG_ID.lower() not in ok.text and "三丰" not in ok.text
    assert (await bind(api, alice, json={"name": "张三丰", "id_number": ZHANG_ID})).json() == ok.json()
    error_of(await bind(api, alice, json={"name": "李四", "id_number": LI_ID}), 409, "real_name_already_bound")

    bob = (await api.login("dev-bob"))["access_token"]
    conflict = error_of(await bind(api, bob, json={"name": "张三丰", "id_number": ZHANG_ID}), 409,
                        "identity_already_bound")
    assert "已绑定" in conflict["message"]
    me = await api.call("GET", "/api/v1/me", token=bob)
    assert me.json()["real_name_bound"] is False
    logs = capsys.readouterr().out
    assert ZHANG_ID not in logs and ZHANG_ID.lower() not in logs and "三丰" not in logs
    assert alice not in logs and "110***********002X" in logs  # the masked form is what gets logged


async def test_real_name_attempts_are_rate_limited_per_citizen(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RATE_LIMITS, "real_name_per_citizen", RateRule(2, 3600, "test"))
    token = (await api.login())["access_token"]
    for _ in range(2):
        error_of(await bind(api, token, json={"name": "张三", "id_number": "1" * 18}), 422, "validation_failed")
    response = await bind(api, token, json={"name": "张三", "id_number": ZHANG_ID})
    error_of(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 60
    other = (await api.login("dev-other"))["access_token"]  # another citizen has their own budget
    assert (await bind(api, other, json={"name": "张三", "id_number": ZHANG_ID})).status_code == 200


# --------------------------------------------------------------------------- OpenAPI

async def test_auth_routes_are_documented(api: Api) -> None:
    spec = await api.spec()
    validate_spec(spec)
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"]}
    for path in API_PATHS:
        method = "get" if path == "/api/v1/me" else "post"
        operation = spec["paths"][path][method]
        assert " / " in operation["summary"], path  # English / 中文
        assert {"401", "503"} <= set(operation["responses"]), path
        success = "204" if path.endswith("logout") else "200"
        assert success in operation["responses"], path
        secured = path.endswith(("logout", "/me", "real-name"))
        assert (operation.get("security") == [{"bearerAuth": []}]) is secured, path
        if method == "post" and not path.endswith("logout"):
            assert "application/json" in operation["requestBody"]["content"], path
            assert {"400", "415", "422", "429"} <= set(operation["responses"]), path
    assert "409" in spec["paths"]["/api/v1/me/real-name"]["post"]["responses"]


def test_the_signing_secret_is_required_in_production_and_must_be_long() -> None:
    with pytest.raises(ValueError, match="GOVFLOW_JWT_SECRET"):
        jwt_secret_from_settings(Settings(ENV="production"))
    with pytest.raises(ValueError, match="at least 32"):
        jwt_secret_from_settings(Settings(JWT_SECRET="short"))
    assert jwt_secret_from_settings(Settings(ENV="production", JWT_SECRET=JWT_SECRET)) == JWT_SECRET
    assert len(jwt_secret_from_settings(Settings())) >= 32  # development: the fixed, public dev secret
