"""The app factory: fresh apps, nothing connected before start, typed ctx filled by listeners."""

from __future__ import annotations

import json as jsonlib
from collections.abc import Callable
from pathlib import Path

import pytest
from sanic import Blueprint, Sanic
from sanic.response import json

from engine.config import PROJECT_ROOT, Settings
from engine.kernel.cases import CaseEngine
from mobile_api import app as app_module
from mobile_api.app import create_app
from mobile_api.context import AppContext
from tests.api.conftest import CLOSED_REDIS_URL, serving


def test_each_call_builds_a_fresh_app_with_a_unique_name(tmp_path: Path) -> None:
    settings = Settings(DATABASE_URL=f"sqlite://{tmp_path / 'never-opened' / 'db.sqlite3'}",
                        REDIS_URL=CLOSED_REDIS_URL)
    first, second = create_app(settings), create_app(settings)
    assert first is not second and first.name != second.name
    assert isinstance(first.ctx, AppContext) and first.ctx.settings is settings
    assert first.config.REQUEST_MAX_SIZE == settings.MAX_BODY_BYTES
    assert not (tmp_path / "never-opened").exists()  # building connects to nothing
    with pytest.raises(RuntimeError):
        _ = first.ctx.kv
    with pytest.raises(RuntimeError):
        _ = first.ctx.engine


async def test_listeners_fill_the_context_and_close_it(make_app: Callable[..., Sanic]) -> None:
    app = make_app(REDIS_URL="", PROCESSES_DIR=PROJECT_ROOT / "processes")
    async with serving(app) as client:
        assert (await client.get("/health")).status_code == 200
        assert isinstance(app.ctx.engine, CaseEngine)
        assert app.ctx.kv.kind == "memory"
        assert app.ctx.departments["mca"] == "民政局"
        assert app.ctx.engine.deps.departments == app.ctx.departments
        await app.ctx.kv.set("probe", "1")
    assert await app.ctx.kv.get("probe") is None  # the in-process store was closed with the app


async def test_api_v1_blueprints_are_served_under_api_v1(make_app: Callable[..., Sanic],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def blueprints(app: Sanic) -> list[Blueprint]:
        bp = Blueprint("probe")
        bp.add_route(lambda request: json({"pong": True}), "/ping", name="ping")
        return [bp]

    monkeypatch.setattr(app_module, "api_v1_blueprints", blueprints)
    async with serving(make_app(REDIS_URL="")) as client:
        assert (await client.get("/api/v1/ping")).json() == {"pong": True}
        assert (await client.get("/ping")).status_code == 404


async def test_logs_are_json_lines_with_the_request_id(client, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    await client.get("/health", headers={"X-Request-ID": "log-trace-42"})
    lines = [jsonlib.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    request_lines = [line for line in lines if line.get("event") == "request"]
    assert request_lines, lines
    entry = request_lines[-1]
    assert entry["request_id"] == "log-trace-42" and entry["route"] == "/health" and entry["status"] == 200
    assert {"timestamp", "level", "duration_ms"} <= set(entry)



async def test_log_lines_mask_id_and_phone_numbers(client, capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    import structlog

    capsys.readouterr()
    structlog.get_logger("govflow.test").info("lookup 310104196103150273", phone="13812345678",
                                              nested={"ids": ["32010219930908143X"]})
    logging.getLogger("some.library").warning("GET /records/310104196103150273?m=13812345678")
    out = capsys.readouterr().out
    for clear in ("310104196103150273", "13812345678", "32010219930908143X"):
        assert clear not in out
    assert "310***********0273" in out and "138****5678" in out


async def test_cors_only_for_configured_origins(make_app) -> None:
    from tests.api.conftest import serving

    async with serving(make_app(REDIS_URL="", CORS_ORIGINS="https://h5.example.gov.cn")) as c:
        pre = await c.options("/api/v1/services", headers={
            "Origin": "https://h5.example.gov.cn", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})
        assert pre.status_code in (200, 204)
        assert pre.headers["access-control-allow-origin"] == "https://h5.example.gov.cn"
        other = await c.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    async with serving(make_app(REDIS_URL="")) as c:
        plain = await c.get("/health", headers={"Origin": "https://h5.example.gov.cn"})
        assert "access-control-allow-origin" not in plain.headers
