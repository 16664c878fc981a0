"""The app factory: ``create_app(settings) -> Sanic``, wired by small ``setup_x(app)`` helpers.

Building an app connects to nothing; the ``before_server_start`` listener opens the database,
the key-value store and builds the case engine, ``after_server_stop`` closes them. Every call
returns a fresh app with a unique name, so tests can build as many as they like.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import structlog
from sanic import Blueprint, Sanic
from sanic.config import Config
from sanic.exceptions import SanicException

from engine import build_engine
from engine.accountability import AccessLogBuffer, PiiKeys
from engine.certificates import STATE_CACHE, VERIFIER_CACHE, DocumentKeys
from engine.citizen import ApplicationService, Catalog
from engine.config import Settings
from engine.kernel import CaseEngine, SystemKeys
from engine.platform import create_kv, kv_publisher
from engine.store.db import close_db, init_db
from mobile_api.context import AppContext
from mobile_api.errors import setup_errors
from mobile_api.observability import configure_logging, setup_observability
from mobile_api.ops import ops_blueprint
from mobile_api.pages import pages_blueprint
from mobile_api.request import ApiRequest
from mobile_api.security_headers import setup_security_headers

GovflowApp = Sanic[Config, AppContext]
EngineBuilder = Callable[[Settings], CaseEngine]

API_TITLE = "govflow API"
API_DESCRIPTION = (
    "政务服务平台接口：办事指南、在线申办、电子证照、工作人员办件与流程设计。\n\n"
    "Government service platform API: service catalog, applications, e-certificates, "
    "staff case handling and process design. Errors are "
    '`{"error": {"code", "message", "fields"}}` with a stable English `code`.'
)
API_VERSION = "1.0.0"

log = structlog.get_logger("govflow.api")
_names = itertools.count(2)


def create_app(settings: Settings | None = None, *, name: str | None = None,
               generate_schemas: bool = False,
               engine_builder: EngineBuilder | None = None) -> GovflowApp:
    """A new API app. ``settings`` default to ``Settings.from_env()``.

    Tests only: ``generate_schemas`` creates tables instead of relying on the committed
    migrations; ``engine_builder`` replaces ``engine.build_engine``.
    """
    settings = settings or Settings.from_env()
    ctx = AppContext(settings=settings, generate_schemas=generate_schemas)
    app: GovflowApp = Sanic(name or _unique_name(), ctx=ctx, configure_logging=False,
                            request_class=ApiRequest)  # type: ignore[arg-type]  # Sanic's overloads
    setup_config(app)
    setup_logging(app)
    setup_errors(app)
    setup_observability(app)
    setup_security_headers(app)
    setup_openapi(app)
    setup_listeners(app, engine_builder or build_engine)
    setup_routes(app)
    return app


def _unique_name() -> str:
    name = "govflow"
    while True:
        try:
            Sanic.get_app(name)
        except SanicException:
            return name
        name = f"govflow_{next(_names)}"


def setup_config(app: GovflowApp) -> None:
    settings = app.ctx.settings
    app.config.REQUEST_MAX_SIZE = settings.MAX_BODY_BYTES
    if settings.PROXIES_COUNT > 0:  # behind nginx / an ingress: the client is in X-Forwarded-For
        app.config.PROXIES_COUNT = settings.PROXIES_COUNT
    app.config.ACCESS_LOG = False  # replaced by the structured "request" log line
    app.config.update({"API_TITLE": API_TITLE, "API_VERSION": API_VERSION,
                       "API_DESCRIPTION": API_DESCRIPTION})


def setup_logging(app: GovflowApp) -> None:
    configure_logging(app.ctx.settings.LOG_LEVEL)


def setup_openapi(app: GovflowApp) -> None:
    """sanic-ext: OpenAPI 3 document at ``/docs/openapi.json``, ReDoc at ``/docs`` (Swagger at ``/docs/swagger``)."""
    origins = [o.strip() for o in app.ctx.settings.CORS_ORIGINS.split(",") if o.strip()]
    app.extend(config={
        "oas_url_prefix": "/docs", "oas_uri_to_json": "/openapi.json", "oas_ui_default": "redoc",
        "oas_autodoc": True,
        # Same-origin pages and the mini-program itself need no CORS; mini-program web views on
        # other origins do (GOVFLOW_CORS_ORIGINS). Without it, automatic OPTIONS routes only slow
        # down start-up (each one re-finalises the router), so they come with CORS only.
        "cors": bool(origins), "http_auto_options": bool(origins),
        "cors_origins": origins or "", "cors_allow_headers": ["Authorization", "Content-Type",
                                                              "Idempotency-Key", "Last-Event-ID"],
        "cors_expose_headers": ["X-Request-ID", "Retry-After"], "cors_max_age": 600,
    })


def api_v1_blueprints(app: GovflowApp) -> list[Blueprint]:
    """Blueprints served under ``/api/v1`` (auth, citizen, staff, designer join here)."""
    from mobile_api.api import v1_blueprints

    return v1_blueprints()


def setup_routes(app: GovflowApp) -> None:
    """Ops endpoints at the root; everything else in the ``/api/v1`` group."""
    app.blueprint(ops_blueprint())
    app.blueprint(pages_blueprint())
    app.blueprint(Blueprint.group(*api_v1_blueprints(app), version=1, version_prefix="/api/v"))


def setup_listeners(app: GovflowApp, engine_builder: EngineBuilder = build_engine) -> None:
    """Open the database, kv and engine before serving; close them after the server stopped."""

    @app.before_server_start
    async def open_services(app: GovflowApp) -> None:
        ctx = app.ctx
        settings = ctx.settings
        ctx.kv = create_kv(settings.REDIS_URL, prefix=settings.REDIS_PREFIX)
        await init_db(settings.DATABASE_URL, generate_schemas=ctx.generate_schemas)
        ctx.engine = engine_builder(settings)
        ctx.engine.deps.publish = kv_publisher(ctx.kv)  # live status (SSE) after every committed step
        ctx.departments = dict(ctx.engine.deps.departments)
        ctx.system_keys = SystemKeys.parse(settings.SYSTEM_KEYS)  # who may POST /messages
        ctx.catalog = Catalog.load(settings.PROCESSES_DIR)
        ctx.document_keys = DocumentKeys.from_settings(settings.DOC_SIGN_DIR, production=settings.is_production)
        ctx.applications = ApplicationService(ctx.engine, ctx.catalog,
                                              pii_key=PiiKeys.from_settings(settings).blind_index_key,
                                              folder_review_state="pending" if settings.is_production else "approved")
        STATE_CACHE.install(ctx.kv)  # QR verification's register cache; state changes invalidate it everywhere
        VERIFIER_CACHE.install(ctx.kv)  # registered verifiers' rows; disabling one invalidates them everywhere
        ctx.access_log = AccessLogBuffer(max_rows=settings.ACCESS_LOG_FLUSH_ROWS,
                                         max_delay_s=settings.ACCESS_LOG_FLUSH_MS / 1000)
        ctx.access_log_stop = asyncio.Event()
        ctx.access_log_task = asyncio.ensure_future(ctx.access_log.run(ctx.access_log_stop))
        log.info("services_started", kv=ctx.kv.kind, env=settings.ENV, departments=len(ctx.departments))

    @app.after_server_stop
    async def close_services(app: GovflowApp) -> None:
        ctx = app.ctx
        if getattr(ctx, "access_log_task", None) is not None:
            ctx.access_log_stop.set()
            try:
                await ctx.access_log_task  # the last batch of verification access-log rows
            except Exception:  # noqa: BLE001 - the database may already be gone
                log.error("access_log_final_flush_failed", waiting=len(ctx.access_log))
        await close_db()
        await ctx.close_kv()


__all__ = [
    "EngineBuilder",
    "GovflowApp",
    "api_v1_blueprints",
    "create_app",
    "setup_config",
    "setup_listeners",
    "setup_logging",
    "setup_openapi",
    "setup_routes",
]
