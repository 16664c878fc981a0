"""Ops endpoints: /health, /ready against SQLite and Redis (up and down), /metrics, request ids."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from sanic import Sanic

from mobile_api import ops
from mobile_api.app import create_app
from tests.api.conftest import CLOSED_REDIS_URL, REDIS_TEST_URL, serving


async def test_health_is_ok_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok"}


async def test_ready_without_redis(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "redis": "not_configured"}}


async def test_ready_reports_redis_ok(make_app: Callable[..., Sanic]) -> None:
    app = make_app(REDIS_URL=REDIS_TEST_URL)
    async with serving(app) as client:
        assert app.ctx.kv.kind == "redis"
        response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_ready_is_503_when_redis_is_down(monkeypatch: pytest.MonkeyPatch, fresh_db: str) -> None:
    monkeypatch.setenv("GOVFLOW_DATABASE_URL", fresh_db)
    monkeypatch.setenv("GOVFLOW_REDIS_URL", CLOSED_REDIS_URL)
    async with serving(create_app(generate_schemas=True)) as client:
        health = await client.get("/health")
        response = await client.get("/ready")
    assert health.status_code == 200  # liveness never depends on Redis
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "dependency_unavailable"
    assert "redis" in error["message"]
    assert set(error["fields"]) == {"redis"}


@pytest.mark.parametrize("failure", ["refused", "timeout"])
async def test_ready_is_503_when_database_is_down(make_app: Callable[..., Sanic],
                                                  monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    async def broken_ping() -> None:
        if failure == "timeout":
            await asyncio.sleep(10)
        raise ConnectionRefusedError("database is down")

    monkeypatch.setattr(ops, "CHECK_TIMEOUT_S", 0.1)
    async with serving(make_app(REDIS_URL="")) as client:
        monkeypatch.setattr(ops, "ping_database", broken_ping)
        response = await client.get("/ready")
        health = await client.get("/health")
    assert response.status_code == 503 and health.status_code == 200
    error = response.json()["error"]
    assert error["code"] == "dependency_unavailable"
    assert set(error["fields"]) == {"database"} and "database" in error["message"]
    assert ("超时" in error["fields"]["database"]) == (failure == "timeout")


async def test_metrics_count_requests_per_route(client: httpx.AsyncClient) -> None:
    await client.get("/health")
    await client.get("/no/such/page")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'govflow_http_requests_total{method="GET",route="/health",status="200"} 1.0' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "govflow_http_request_duration_seconds_bucket" in text


async def test_metrics_are_per_app(make_app: Callable[..., Sanic]) -> None:
    async with serving(make_app(REDIS_URL="")) as first:
        await first.get("/health")
    async with serving(make_app(REDIS_URL="")) as second:
        text = (await second.get("/metrics")).text
    assert 'route="/health"' not in text


async def test_request_id_is_echoed_when_well_formed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "mp-2026.11.29-abc123"})
    assert response.headers["X-Request-ID"] == "mp-2026.11.29-abc123"


async def test_request_id_is_generated_when_missing_or_malformed(client: httpx.AsyncClient) -> None:
    generated = (await client.get("/health")).headers["X-Request-ID"]
    replaced = (await client.get("/health", headers={"X-Request-ID": "bad id\twith<junk>"})).headers["X-Request-ID"]
    assert len(generated) == 32 and generated != replaced
    assert replaced != "bad id\twith<junk>" and len(replaced) == 32


async def test_error_responses_carry_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere", headers={"X-Request-ID": "trace-0001"})
    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "trace-0001"
