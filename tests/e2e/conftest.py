"""Browser tests for the citizen H5 page (``/m/``, phone-sized) and the staff workbench
(``/console/``, desktop-sized): a real server on a free port with the demo catalogue, driven by
Playwright (async API, so the server and the browser share the test's event loop) on Debian's
Chromium. ``make browser`` installs Chromium and CJK fonts;
Playwright's own browser download is never used.

Screenshots of the run go to ``docs/screenshots/`` (overwritten every run).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright
from sanic import Sanic

from engine.citizen.applications import Applicant
from engine.config import PROJECT_ROOT, Settings
from mobile_api.app import create_app
from tests.api.conftest import serving
from tests.conftest import TEST_DB, _reset_postgres

Sanic.test_mode = True

CHROMIUM = os.environ.get("GOVFLOW_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE: dict[str, Any] = {"viewport": {"width": 375, "height": 812}, "device_scale_factor": 2, "is_mobile": True,
                         "has_touch": True, "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
JWT_SECRET = "e2e-only-jwt-secret-0123456789abcdef"
ID_CARD_TYPE = "11310000996137268Q002"  # 居民身份证 (processes/certificate_types.yaml)


@dataclass
class Server:
    base_url: str
    app: Sanic

    @property
    def engine(self) -> Any:
        return self.app.ctx.engine

    async def issue_certificate(self, type_code: str, holder: Applicant) -> dict[str, Any]:
        """An e-certificate issued to ``holder`` before the test (as an earlier service would have),
        through the same ``certificate.issue`` connector and record writer the processes use."""
        from engine.kernel.connectors import ConnectorContext

        context = ConnectorContext(case_no="", service="e2e", actor="e2e", purpose="测试预置证照")
        issued = self.engine.deps.connectors.call("certificate.issue", {
            "type_code": type_code, "holder_name": holder.name, "holder_code": holder.id_number,
            "holder_code_type": "111", "data": {}}, context)
        for kind, payload in context.records:
            await self.engine.deps.record_writers[kind](None, None, payload)
        return issued


@pytest.fixture
async def server_factory(settings: Settings, db_url: str) -> AsyncIterator[Any]:
    """Start servers (settings overridable) that stop at the end of the test."""
    if TEST_DB == "postgres":
        await _reset_postgres(db_url)
    stack: list[Any] = []

    async def start(**overrides: Any) -> Server:
        app = create_app(dataclasses.replace(settings, JWT_SECRET=JWT_SECRET, **overrides), generate_schemas=True)
        cm = serving(app)
        client = await cm.__aenter__()
        stack.append(cm)
        return Server(base_url=str(client.base_url).rstrip("/"), app=app)

    yield start
    for cm in reversed(stack):
        await cm.__aexit__(None, None, None)


@pytest.fixture
async def server(server_factory: Any) -> Server:
    return await server_factory()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make browser` (Debian's chromium + fonts-noto-cjk)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}, "locale": "zh-CN",
                           "timezone_id": "Asia/Shanghai"}


# every Content-Security-Policy violation (mobile_api/security_headers.py) is reported to the console
# by this listener as well as by Chromium itself; either fails the test
_CSP_LISTENER = """document.addEventListener('securitypolicyviolation', (e) => console.error(
  'CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':'
  + e.lineNumber));"""


def _csp_violation(text: str) -> bool:
    return "Content Security Policy" in text or text.startswith("CSP violation:")


async def _pages(browser: Browser, options: dict[str, Any], timeout_ms: int = 10_000) -> AsyncIterator[Any]:
    """Open pages with ``options``; each fails the test on an uncaught script error or on any
    Content-Security-Policy violation logged to the console."""
    contexts, errors, violations = [], [], []

    async def open_page(base_url: str) -> Page:
        context = await browser.new_context(base_url=base_url, **options)
        context.set_default_timeout(timeout_ms)
        await context.add_init_script(_CSP_LISTENER)
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: violations.append(msg.text) if _csp_violation(msg.text) else None)
        return page

    yield open_page
    for context in contexts:
        await context.close()
    assert not errors, errors
    assert not violations, violations


@pytest.fixture
async def phone(browser: Browser) -> AsyncIterator[Any]:
    """Open phone-sized pages (the citizen page)."""
    async for open_page in _pages(browser, PHONE):
        yield open_page


@pytest.fixture
async def desktop(browser: Browser) -> AsyncIterator[Any]:
    """Open desktop-sized pages (the staff workbench)."""
    async for open_page in _pages(browser, DESKTOP):
        yield open_page


async def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """A screenshot saved as ``docs/screenshots/<name>`` (overwritten every run): the screen, or
    with ``full_page`` the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    await page.locator("#toast").wait_for(state="hidden", timeout=5_000)  # a passing notice would cover the page
    await page.evaluate("document.fonts.ready")
    if not full_page:
        await page.screenshot(path=str(path), animations="disabled", caret="hide")
        return path
    # the whole page in a viewport as tall as the page, from the top: fixed bars (the phone page's
    # header and tab bar) sit at the top and bottom instead of across the middle of the picture
    size = page.viewport_size
    assert size is not None
    height = await page.evaluate("document.documentElement.scrollHeight")
    await page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    try:
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=str(path), animations="disabled", caret="hide")
    finally:
        await page.set_viewport_size(size)
    return path
