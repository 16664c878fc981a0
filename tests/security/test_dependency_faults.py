"""Dependency faults against a real ``govflow serve`` whose Redis and PostgreSQL are private to the
test (a ``redis-server`` and an ``initdb`` cluster on free ports), so stopping them never
disturbs the machine's shared servers.

- Redis stops: what does not need Redis keeps answering (the catalogue, public keys, health);
  what does (tokens, rate limits, readiness) answers 503 ``dependency_unavailable``; when Redis
  is back the same process serves everything again.
- PostgreSQL drops the server's connections, and later stops altogether: 503 with a stable code
  (never a 500 with a traceback), then recovery without restarting the API process.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.security.stack import (
    WANG,
    bearer,
    citizen_token,
    pg_bin,
    private_postgres,
    private_redis,
    stack,
    wait_for,
)

pytestmark = [pytest.mark.postgres, pytest.mark.skipif(pg_bin() is None, reason="no PostgreSQL server binaries")]
UNAVAILABLE = {"dependency_unavailable", "database_unavailable"}


def _get(base: str, path: str, token: str | None = None) -> httpx.Response:
    return httpx.get(f"{base}{path}", headers=bearer(token) if token else {}, timeout=30)


def _unavailable(response: httpx.Response) -> str:
    assert response.status_code == 503, (response.request.url, response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] in UNAVAILABLE and not error["message"].isascii(), error
    return str(error["code"])


async def _terminate_backends(server_url: str, database: str) -> int:
    conn = await asyncpg.connect(server_url.replace("postgres://", "postgresql://", 1))
    try:
        return int(await conn.fetchval("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                       "WHERE datname = $1 AND pid <> pg_backend_pid()", database))
    finally:
        await conn.close()


@pytest.fixture
def served(tmp_path: Path):  # noqa: ANN201 - (stack, base, redis, pg, token)
    with ExitStack() as resources:
        pg = resources.enter_context(private_postgres(tmp_path))
        redis = resources.enter_context(private_redis(tmp_path))
        s = resources.enter_context(stack(tmp_path, redis_url=redis.url, pg_server_url=pg.server_url))
        proc, base = s.serve()
        token = citizen_token(base, "dev-wang", WANG)
        yield s, proc, base, redis, pg, token


def test_redis_down_serves_what_does_not_need_it_and_recovers(served) -> None:  # noqa: ANN001
    _, proc, base, redis, _, token = served
    assert _get(base, "/api/v1/me", token).status_code == 200
    redis.stop()
    for path in ("/health", "/api/v1/services", "/api/v1/services/senior-card", "/api/v1/certificates/keys"):
        assert _get(base, path).status_code == 200, path
    ready = _get(base, "/ready")
    assert ready.status_code == 503 and "redis" in ready.text
    _unavailable(_get(base, "/api/v1/me", token))  # the token's revocation cannot be checked
    _unavailable(httpx.post(f"{base}/api/v1/auth/miniprogram", json={"code": "dev-li"}, timeout=30))
    _unavailable(httpx.post(f"{base}/api/v1/staff/login", json={"username": "samr01", "password": "x"}, timeout=30))
    redis.start()  # same port, empty: access tokens still verify, nothing was revoked
    wait_for(lambda: _get(base, "/ready").status_code == 200, 30, "readiness after Redis returned")
    assert _get(base, "/api/v1/me", token).status_code == 200
    assert citizen_token(base, "dev-li")
    assert proc.alive()


def test_postgres_connection_drop_and_outage_are_503_then_recover_without_restart(served) -> None:  # noqa: ANN001
    s, proc, base, _, pg, token = served
    database = s.database_url.rsplit("/", 1)[1]
    assert _get(base, "/api/v1/applications", token).status_code == 200
    # 1. every connection of the API is cut (a failover, an idle-connection killer)
    assert asyncio.run(_terminate_backends(pg.server_url, database)) >= 1
    answers = [_get(base, "/api/v1/applications", token) for _ in range(3)]
    assert all(r.status_code in (200, 503) for r in answers), [(r.status_code, r.text) for r in answers]
    for r in answers:
        if r.status_code == 503:
            _unavailable(r)
    wait_for(lambda: _get(base, "/api/v1/applications", token).status_code == 200, 30, "reconnection")
    # 2. the server is down for a while
    pg.stop("fast")
    _unavailable(_get(base, "/api/v1/applications", token))
    _unavailable(_get(base, "/api/v1/me", token))
    ready = _get(base, "/ready")
    assert ready.status_code == 503 and "database" in ready.text
    assert _get(base, "/health").status_code == 200
    assert _get(base, "/api/v1/services").status_code == 200  # the catalogue is in memory
    pg.start()
    wait_for(lambda: _get(base, "/ready").status_code == 200, 60, "readiness after PostgreSQL returned")
    wait_for(lambda: _get(base, "/api/v1/applications", token).status_code == 200, 30, "queries after restart")
    assert _get(base, "/api/v1/me", token).status_code == 200
    assert proc.alive()
    assert "unhandled_exception" not in proc.output()  # every failure was a known 503, none a 500
