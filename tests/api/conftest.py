"""Fixtures for API tests: a real server on a free port, called over HTTP with httpx.

The database comes from the shared ``settings``/``db_url`` fixtures (SQLite file or the
PostgreSQL of the second pass); the app's own listener initialises it, as in production.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sanic import Sanic

from engine.config import Settings
from mobile_api.app import create_app
from tests.conftest import TEST_DB, _reset_postgres

# As sanic-testing does: lets Sanic's start-up rewrite (TouchUp) run again for every app built
# in this process instead of failing on the second one.
Sanic.test_mode = True

REDIS_TEST_URL = os.environ.get("GOVFLOW_TEST_REDIS") or "redis://127.0.0.1:6379/15"
CLOSED_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
async def fresh_db(db_url: str) -> str:
    """An empty database for the app to create its schema in."""
    if TEST_DB == "postgres":
        await _reset_postgres(db_url)
    return db_url


@pytest.fixture
def make_app(settings: Settings, fresh_db: str) -> Callable[..., Sanic]:
    """Build a fresh app; keyword arguments override settings fields (e.g. ``REDIS_URL``)."""
    def build(**overrides: Any) -> Sanic:
        return create_app(dataclasses.replace(settings, **overrides), generate_schemas=True)
    return build


@asynccontextmanager
async def serving(app: Sanic) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app`` on a free local port with its full listener lifecycle; yield a client for it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = await app.create_server(sock=sock, return_asyncio_server=True)
    assert server is not None
    await server.startup()
    try:
        await server.before_start()
    except BaseException:
        # a failing start-up listener must not leave the database open (pytest would hang at exit)
        await server.after_stop()
        sock.close()
        raise
    await server.after_start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()
        sock.close()


@pytest.fixture
async def client(make_app: Callable[..., Sanic]) -> AsyncIterator[httpx.AsyncClient]:
    """A running app without Redis (in-process kv)."""
    async with serving(make_app(REDIS_URL="")) as c:
        yield c
