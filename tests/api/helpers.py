"""Shared helpers for API tests: a client that checks every answer against the OpenAPI document.

``OpenApiClient.call`` asserts that the route documents the response's status and media type and,
for JSON, that the body matches the documented schema. Paths with parameters (``/x/{id}``) are
matched against the document's templates. Every response is kept in ``responses`` so a test can
assert that some personal data appears in none of them.
"""

from __future__ import annotations

import json
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import png
import zxingcpp
from openapi_schema_validator import OAS30Validator
from sanic import Sanic


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The error object of ``response``, after checking its status, code and Chinese message."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error
    assert not error["message"].isascii()  # a Chinese message
    return error


def _decode_grey(pixels: bytearray, width: int, height: int) -> list[str]:
    found = zxingcpp.read_barcodes(memoryview(pixels).cast("B", (height, width)),
                                   formats=zxingcpp.BarcodeFormat.QRCode)
    return [barcode.text for barcode in found]


def decode_qr_png(data: bytes) -> list[str]:
    """The texts of the QR codes in a PNG, read with a real decoder (zxing-cpp; pixels via pypng)."""
    width, height, rows, _info = png.Reader(bytes=data).asRGB8()
    pixels = bytearray()
    for row in rows:
        pixels.extend(bytes(row)[0::3])  # black and white: the red channel is the grey level
    return _decode_grey(pixels, width, height)


_SVG_RECT = re.compile(r"M([0-9.]+),([0-9.]+)H([0-9.]+)V([0-9.]+)H([0-9.]+)z")


def decode_qr_svg(text: str, px_per_unit: int = 10) -> list[str]:
    """Rasterise a single-path QR SVG (square modules, as ``engine.certificates.qr`` draws it) and decode it."""
    root = ET.fromstring(text)
    size = round(float(root.attrib["viewBox"].split()[2]) * px_per_unit)
    pixels = bytearray(b"\xff" * size * size)
    paths = [el for el in root.iter() if el.tag.endswith("path")]
    assert len(paths) == 1, "one path expected"
    for x0, y0, x1, y1, _ in _SVG_RECT.findall(paths[0].attrib["d"]):
        left, top = round(float(x0) * px_per_unit), round(float(y0) * px_per_unit)
        right, bottom = round(float(x1) * px_per_unit), round(float(y1) * px_per_unit)
        for y in range(top, bottom):
            pixels[y * size + left:y * size + right] = b"\x00" * (right - left)
    return _decode_grey(pixels, size, size)


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^/}]+\})", template)
    return re.compile("^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$")


class OpenApiClient:
    """An httpx client bound to a served app; ``call`` validates answers against its OpenAPI document."""

    def __init__(self, client: httpx.AsyncClient, app: Sanic) -> None:
        self.client, self.app = client, app
        self.responses: list[httpx.Response] = []
        self._spec: dict[str, Any] | None = None

    async def spec(self) -> dict[str, Any]:
        if self._spec is None:
            self._spec = (await self.client.get("/docs/openapi.json")).json()
        return self._spec

    async def operation(self, method: str, path: str) -> dict[str, Any]:
        """The documented operation for a concrete ``path`` (exact match first, then templates)."""
        paths = (await self.spec())["paths"]
        path = path.split("?", 1)[0]
        if path in paths:
            return paths[path][method.lower()]
        matches = [t for t in paths if "{" in t and _template_regex(t).match(path)]
        assert len(matches) == 1, (path, matches)
        return paths[matches[0]][method.lower()]

    async def call(self, method: str, path: str, *, token: str | None = None,
                   **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = await self.client.request(method, path, headers=headers, **kwargs)
        self.responses.append(response)
        documented = (await self.operation(method, path))["responses"]
        status = str(response.status_code)
        assert status in documented, (method, path, response.status_code, response.text[:500])
        if response.status_code != 204:
            content = documented[status].get("content") or {}
            media = response.headers.get("content-type", "").split(";", 1)[0].strip()
            assert media in content, (path, status, media, list(content))
            if media == "application/json":
                OAS30Validator(content[media]["schema"]).validate(response.json())
        return response

    async def login(self, code: str = "dev-alice") -> dict[str, Any]:
        """Dev login (``dev-<name>``): tokens and the masked citizen."""
        response = await self.call("POST", "/api/v1/auth/miniprogram", json={"code": code})
        assert response.status_code == 200, response.text
        return response.json()

    async def bind_real_name(self, access_token: str, name: str, id_number: str) -> dict[str, Any]:
        response = await self.call("POST", "/api/v1/me/real-name", token=access_token,
                                   json={"name": name, "id_number": id_number})
        assert response.status_code == 200, response.text
        return response.json()

    def all_text(self) -> str:
        """Headers and bodies of every response so far (binary bodies decoded leniently)."""
        return "\n".join(f"{dict(r.headers)}\n{r.content.decode('utf-8', 'replace')}" for r in self.responses)


# --------------------------------------------------------------------------- served apps, citizens, SSE

TEST_JWT_SECRET = "test-only-jwt-secret-0123456789abcdef"


@asynccontextmanager
async def running_api(make_app: Callable[..., Sanic], monkeypatch: Any,
                      **overrides: Any) -> AsyncIterator[OpenApiClient]:
    """Serve ``make_app(**overrides)`` (Redis in the PostgreSQL pass) with KV keys under a prefix of
    its own, removed from Redis afterwards; yield an ``OpenApiClient`` for it."""
    import redis.asyncio as aioredis

    from engine.platform.kv import create_kv
    from mobile_api import app as app_module
    from tests.api.conftest import serving
    from tests.conftest import REDIS_URL

    prefix = f"govflow-test-{uuid.uuid4().hex[:12]}:"
    monkeypatch.setattr(app_module, "create_kv", lambda url, **_: create_kv(url, prefix=prefix))
    app = make_app(**{"JWT_SECRET": TEST_JWT_SECRET, **overrides})
    try:
        async with serving(app) as client:
            yield OpenApiClient(client, app)
    finally:
        if REDIS_URL:
            redis = aioredis.from_url(REDIS_URL)
            try:
                keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
                if keys:
                    await redis.delete(*keys)
            finally:
                await redis.aclose()


async def citizen_token(api: OpenApiClient, code: str, name: str | None = None,
                        id_number: str | None = None) -> str:
    """Dev login as ``code``; with ``name`` and ``id_number`` also bind the real name. The access token."""
    token: str = (await api.login(code))["access_token"]
    if name is not None and id_number is not None:
        await api.bind_real_name(token, name, id_number)
    return token


STAFF_PASSWORD = "correct horse battery staple"
StaffRows = dict[str, tuple[list[str], list[str]]]  # username -> (departments, roles)


async def seed_staff(rows: StaffRows, *, password: str = STAFF_PASSWORD,
                     name: Callable[[str], str] = lambda username: username) -> None:
    """Create the staff accounts of ``rows`` (one password for all) in the served app's database."""
    from engine.platform.seed import hash_password
    from engine.store.models import StaffUser

    hashed = hash_password(password)
    for username, (departments, roles) in rows.items():
        await StaffUser.create(username=username, name=name(username), password_hash=hashed,
                               departments=departments, roles=roles)


async def staff_login(api: OpenApiClient, username: str, password: str = STAFF_PASSWORD) -> str:
    """Log a seeded staff account in through ``POST /api/v1/staff/login``; its access token."""
    response = await api.call("POST", "/api/v1/staff/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Parse a streamed ``text/event-stream`` body: one dict per event (``id``, ``event``, ``retry``,
    ``data`` decoded from JSON) and ``{"comment": text}`` for comment lines (keep-alives)."""
    event: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if line == "":
            if event:
                yield event
            event = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            event[name] = json.loads(value) if name == "data" else value


__all__ = [
    "TEST_JWT_SECRET",
    "OpenApiClient",
    "citizen_token",
    "decode_qr_png",
    "decode_qr_svg",
    "error_of",
    "running_api",
    "sse_events",
]
