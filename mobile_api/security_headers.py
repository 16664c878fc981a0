"""Security headers on every response (docs/production.md, "Security headers").

- Pages (every folder of ``mobile_api.pages.PAGES`` and their static files): a Content-Security-Policy
  that lets the browser run only the app's own script files and style sheets — no inline script, no
  ``eval``, nothing from another origin; ``frame-ancestors`` names only this origin and the
  configured mini-program web-view origins (``GOVFLOW_FRAME_ANCESTORS``). The designer alone also
  allows inline styles, which bpmn-js/dmn-js need (``page_policy``).
- API answers (JSON, SSE, files): ``default-src 'none'`` — a response of the API is never a page.
- The API docs (``/docs``, ``/docs/swagger``): sanic-ext's ReDoc/Swagger pages load their scripts
  from a CDN and start them inline; they get a policy of their own that allows exactly that.
- Everywhere: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (case numbers
  and tokens never leave in a Referer), and ``Strict-Transport-Security`` when the request came over
  TLS — the socket itself, ``X-Forwarded-Proto: https`` from a trusted proxy (``GOVFLOW_PROXIES_COUNT``
  ≥ 1; Sanic ignores the header otherwise) — or always with ``GOVFLOW_HSTS=1``.
"""

from __future__ import annotations

from typing import Any

from sanic import Request, Sanic
from sanic.response import BaseHTTPResponse

from mobile_api.pages import PAGES

HSTS_VALUE = "max-age=31536000"  # one year; no includeSubDomains: other services may share the domain
DESIGNER_PREFIX = "/designer/"


def page_prefixes() -> tuple[str, ...]:
    """Every page folder ``mobile_api.pages`` serves (a new page gets the page policy), plus the
    modules they share."""
    return (*(f"/{folder}/" for folder in PAGES), "/shared/")
DOCS_PATHS = ("/docs", "/docs/", "/docs/redoc", "/docs/swagger", "/docs/swagger/")


def frame_ancestors(settings: Any) -> str:
    origins = [o.strip() for o in str(getattr(settings, "FRAME_ANCESTORS", "") or "").split(",") if o.strip()]
    return " ".join(["'self'", *origins])


def page_policy(settings: Any, *, inline_styles: bool = False) -> str:
    """What a page may load: its own scripts, styles, images and fonts, and the API (same origin).

    ``inline_styles`` (the designer only): bpmn-js and dmn-js lay out diagrams and tables with style
    attributes, and dmn-js's expression editor (CodeMirror, through style-mod) adds a ``<style>``
    element to the document; styles cannot run script, and ``script-src`` stays ``'self'``."""
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'" if inline_styles else "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        # the console's material viewer shows a PDF fetched with the staff token as a blob: URL in
        # an iframe (the browser's PDF viewer); blobs come only from the page's own scripts
        "frame-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        f"frame-ancestors {frame_ancestors(settings)}",
    ])


def docs_policy(app: Sanic) -> str:
    """The API docs pages: their CDN and their inline start-up code, and nothing else."""
    config = app.config
    cdns = sorted({_origin(str(getattr(config, name, "") or "")) for name in
                   ("OAS_UI_REDOC_CDN_URL", "OAS_UI_SWAGGER_CDN_URL")} - {""})
    sources = " ".join(cdns)
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' 'unsafe-inline' {sources}",
        f"style-src 'self' 'unsafe-inline' {sources} https://fonts.googleapis.com",
        f"font-src 'self' data: {sources} https://fonts.gstatic.com",
        f"img-src 'self' data: {sources}",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ])


API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def _origin(url: str) -> str:
    parts = url.split("/")
    return "/".join(parts[:3]) if len(parts) >= 3 and parts[0] in ("https:", "http:") else ""


def over_tls(request: Request, settings: Any) -> bool:
    """TLS on the socket, or ``X-Forwarded-Proto: https`` from a trusted proxy (Sanic reads the
    header only when ``PROXIES_COUNT`` is set), or ``GOVFLOW_HSTS`` says the service is HTTPS-only."""
    return bool(getattr(settings, "HSTS", False)) or request.scheme in ("https", "wss")


def setup_security_headers(app: Sanic) -> None:
    settings = app.ctx.settings
    pages, designer = page_policy(settings), page_policy(settings, inline_styles=True)
    page_paths = page_prefixes()
    docs: list[str] = []  # built on first use: sanic-ext fills its config when the app starts

    async def add_headers(request: Request, response: BaseHTTPResponse) -> None:
        headers = response.headers
        path = request.path
        if path.startswith(DESIGNER_PREFIX):
            policy = designer
        elif path.startswith(page_paths):
            policy = pages
        elif path in DOCS_PATHS:
            if not docs:
                docs.append(docs_policy(app))
            policy = docs[0]
        else:
            policy = API_POLICY
        headers.setdefault("Content-Security-Policy", policy)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if over_tls(request, settings):
            headers.setdefault("Strict-Transport-Security", HSTS_VALUE)

    # priority 900: after the app's own response middleware, before the request log (1000)
    app.register_middleware(add_headers, "response", priority=900)


__all__ = ["API_POLICY", "HSTS_VALUE", "docs_policy", "frame_ancestors", "page_policy", "page_prefixes",
           "setup_security_headers"]
