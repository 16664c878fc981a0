"""Operations endpoints: liveness, readiness and Prometheus metrics (no auth, no version prefix).

``/health`` touches nothing, so a wedged database never gets a healthy process restarted;
``/ready`` checks the database and Redis, so a load balancer stops sending traffic to a
process that cannot serve it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sanic import Blueprint, Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, json, raw
from sanic_ext.extensions.openapi import openapi

from engine import ping_database
from engine.errors import DependencyDown
from mobile_api.errors import ERROR_SCHEMA

CHECK_TIMEOUT_S = 2.0

log = structlog.get_logger("govflow.api")

_HEALTH_SCHEMA = {"type": "object", "required": ["status"],
                  "properties": {"status": {"type": "string", "enum": ["ok"]}}}
_READY_SCHEMA = {
    "type": "object", "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready"]},
        "checks": {"type": "object", "properties": {
            "database": {"type": "string", "enum": ["ok"]},
            "redis": {"type": "string", "enum": ["ok", "not_configured"]},
        }},
    },
}


async def _check(name: str, probe: Callable[[], Awaitable[Any]]) -> str | None:
    """None when ``probe`` answers in time, else why not (logged, not returned to the client)."""
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the reason goes to the log
        log.warning("dependency_check_failed", dependency=name, error=repr(exc))
        return "超时" if isinstance(exc, TimeoutError) else "无法连接"
    return None


async def readiness(app: Sanic) -> dict[str, str]:
    """Check every dependency concurrently; raise ``DependencyDown`` naming the ones down."""
    kv = app.ctx.kv
    probes: dict[str, Callable[[], Awaitable[Any]]] = {"database": ping_database}
    checks = {"database": "ok", "redis": "not_configured"}
    if kv.kind != "memory":
        probes["redis"] = kv.ping
    results = await asyncio.gather(*(_check(name, probe) for name, probe in probes.items()))
    down = {name: f"{name} {reason}" for name, reason in zip(probes, results, strict=True) if reason}
    if down:
        raise DependencyDown(f"依赖服务不可用：{'、'.join(down)}", fields=down)
    checks.update({name: "ok" for name in probes})
    return checks


def ops_blueprint() -> Blueprint:
    """A fresh blueprint per app: handler objects are per app, so OpenAPI stays per app."""
    bp = Blueprint("ops")

    @bp.get("/health")
    @openapi.summary("Liveness / 存活检查")
    @openapi.description("Always 200 while the process serves HTTP; touches no dependency.")
    @openapi.response(200, {"application/json": {"schema": _HEALTH_SCHEMA}}, "进程存活")
    async def health(request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    @bp.get("/ready")
    @openapi.summary("Readiness / 就绪检查")
    @openapi.description("Checks the database and Redis (when configured); 503 names what is down.")
    @openapi.response(200, {"application/json": {"schema": _READY_SCHEMA}}, "可以接收请求")
    @openapi.response(503, {"application/json": {"schema": ERROR_SCHEMA}}, "依赖服务不可用")
    async def ready(request: Request) -> HTTPResponse:
        checks = await readiness(request.app)
        return json({"status": "ready", "checks": checks})

    @bp.get("/metrics")
    @openapi.summary("Prometheus metrics / 监控指标")
    @openapi.description("Prometheus text exposition format: request counts and latency per route, "
                         "notification deliveries by channel and status.")
    @openapi.response(200, {"text/plain": {"schema": {"type": "string"}}}, "Prometheus 文本格式")
    async def metrics(request: Request) -> HTTPResponse:
        from engine.platform import delivery_counts

        try:
            request.app.ctx.metrics.set_deliveries(await delivery_counts())
        except Exception:  # noqa: BLE001 - a database hiccup must not hide the request metrics
            pass
        body, content_type = request.app.ctx.metrics.render()
        return raw(body, content_type=content_type)

    return bp


__all__ = ["CHECK_TIMEOUT_S", "ops_blueprint", "readiness"]
