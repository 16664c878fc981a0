"""Security headers on every page and API answer (mobile_api/security_headers.py), over real HTTP.

Pages and their files: a Content-Security-Policy allowing only the app's own scripts and styles
(no inline script, nothing from another origin), frame-ancestors limited to this origin and the
configured web-view origins; API answers: ``default-src 'none'``; everywhere ``nosniff`` and
``Referrer-Policy: no-referrer``; Strict-Transport-Security only when the request came over TLS as
a trusted proxy reports it (``X-Forwarded-Proto``) or when ``GOVFLOW_HSTS`` says so. The pages'
HTML carries no inline script or event handler attribute the policy would block.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from sanic import Sanic

from mobile_api.pages import PAGES
from tests.api.conftest import serving

ROOT = Path(__file__).resolve().parents[2]
WEBVIEW = "https://servicewechat.example.gov.cn"


def directives(policy: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in policy.split(";"))):
        name, *values = part.split()
        assert name not in found, f"{name} twice in {policy}"
        found[name] = values
    return found


def assert_common(response: httpx.Response) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff", response.url
    assert response.headers["Referrer-Policy"] == "no-referrer", response.url
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP, no trusted proxy


def assert_page_policy(response: httpx.Response, ancestors: list[str]) -> None:
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"] and policy["script-src"] == ["'self'"], policy
    # bpmn-js/dmn-js write style attributes and one <style> element: the designer alone allows inline styles
    styles = ["'self'", "'unsafe-inline'"] if response.url.path.startswith("/designer/") else ["'self'"]
    assert policy["style-src"] == styles and policy["object-src"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"] and policy["base-uri"] == ["'none'"]
    assert policy["frame-src"] == ["'self'", "blob:"]  # the console's PDF viewer (a blob the page fetched)
    assert policy["frame-ancestors"] == ["'self'", *ancestors]
    for values in policy.values():  # nothing from elsewhere, no eval, no inline script
        assert not any(v in ("*", "'unsafe-eval'", "https:", "http:") for v in values), policy
    assert "'unsafe-inline'" not in policy["script-src"] + policy["default-src"]


def page_assets(html: str) -> list[str]:
    return re.findall(r'<(?:script[^>]+src|link[^>]+href)="(/[^"]+)"', html)


@pytest.fixture
def app(make_app: Callable[..., Sanic]) -> Sanic:
    return make_app(FRAME_ANCESTORS=f" {WEBVIEW} , https://other.example.cn")


async def test_every_page_and_its_files_send_the_page_policy(app: Sanic) -> None:
    async with serving(app) as client:
        for folder in PAGES:
            page = await client.get(f"/{folder}/")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert_page_policy(page, [WEBVIEW, "https://other.example.cn"])
            assert_common(page)
            assets = page_assets(page.text)
            assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
            for asset in assets:
                served = await client.get(asset)
                assert served.status_code == 200, asset
                assert_page_policy(served, [WEBVIEW, "https://other.example.cn"])
                assert_common(served)
        missing = await client.get("/m/static/no-such-file.js")
        assert missing.status_code == 404 and "Content-Security-Policy" in missing.headers


async def test_api_answers_are_never_pages(app: Sanic) -> None:
    async with serving(app) as client:
        answers = [await client.get("/health"), await client.get("/ready"), await client.get("/metrics"),
                   await client.get("/api/v1/services"), await client.get("/api/v1/me"),  # 401
                   await client.get("/no/such/route"), await client.get("/docs/openapi.json"),
                   await client.post("/api/v1/staff/login", content=b"{", headers={"Content-Type": "application/json"})]
        assert [a.status_code for a in answers] == [200, 200, 200, 200, 401, 404, 200, 400]
        for answer in answers:
            assert directives(answer.headers["Content-Security-Policy"]) == {
                "default-src": ["'none'"], "frame-ancestors": ["'none'"], "base-uri": ["'none'"],
                "form-action": ["'none'"]}, answer.url
            assert_common(answer)
        docs = await client.get("/docs")  # ReDoc from its CDN: allowed there, and only there
        policy = directives(docs.headers["Content-Security-Policy"])
        assert docs.status_code == 200 and "https://cdn.redoc.ly" in policy["script-src"]
        assert policy["frame-ancestors"] == ["'none'"]


async def test_frame_ancestors_default_to_the_own_origin(make_app: Callable[..., Sanic]) -> None:
    async with serving(make_app()) as client:
        page = await client.get("/console/")
    assert directives(page.headers["Content-Security-Policy"])["frame-ancestors"] == ["'self'"]


async def test_hsts_only_behind_tls_as_a_trusted_proxy_says_or_when_configured(
        make_app: Callable[..., Sanic]) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    async with serving(make_app()) as client:  # no trusted proxy: the header is anyone's word
        assert "Strict-Transport-Security" not in (await client.get("/m/", headers=forwarded)).headers
    async with serving(make_app(PROXIES_COUNT=1)) as client:
        for path in ("/m/", "/api/v1/services", "/health"):
            secure = await client.get(path, headers=forwarded)
            assert secure.headers["Strict-Transport-Security"] == "max-age=31536000", path
        plain = await client.get("/m/", headers={"X-Forwarded-Proto": "http", "X-Forwarded-For": "203.0.113.9"})
        assert "Strict-Transport-Security" not in plain.headers
    async with serving(make_app(HSTS=True)) as client:
        assert (await client.get("/designer/")).headers["Strict-Transport-Security"] == "max-age=31536000"


class _InlineFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("inline <style>")
        self.problems += [f"<{tag} {name}=…>" for name in names if name.startswith("on") or name == "style"]
        self.problems += [f"<{tag} {n}=javascript:…>" for n, v in attrs if (v or "").strip().lower().startswith("javascript:")]


@pytest.mark.parametrize("folder", sorted(PAGES))
def test_page_html_has_no_inline_script_or_style(folder: str) -> None:
    finder = _InlineFinder()
    finder.feed((ROOT / "web" / folder / "index.html").read_text(encoding="utf-8"))
    assert finder.problems == []
