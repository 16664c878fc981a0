"""Shared fixtures. The suite runs twice (see Makefile): ``GOVFLOW_TEST_DB=sqlite`` and
``GOVFLOW_TEST_DB=postgres`` with ``GOVFLOW_TEST_REDIS`` set. Each test gets a clean schema.

Tests marked ``postgres`` need real server concurrency; the SQLite pass deselects them (they
run in the PostgreSQL pass). Tests marked ``sqlite_only`` use their own SQLite files whatever
the pass, so the PostgreSQL pass deselects them. Nothing is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import AsyncIterator

import pytest

from engine.config import PROJECT_ROOT, Settings
from engine.store.db import close_db, init_db

TEST_DB = os.environ.get("GOVFLOW_TEST_DB", "sqlite")
PG_SERVER_URL = os.environ.get("GOVFLOW_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
# Each test session works in a database of its own, created through the server's `test`
# database and dropped at the end, so parallel runs on one machine never reset each other.
PG_URL = f"{PG_SERVER_URL.rsplit('/', 1)[0]}/govflow_test_{os.getpid()}"
REDIS_URL = os.environ.get("GOVFLOW_TEST_REDIS", "")
FIXTURES = Path(__file__).parent / "fixtures"


def pytest_report_header(config: pytest.Config) -> str:
    return f"govflow test database: {TEST_DB}" + (f", redis: {REDIS_URL}" if REDIS_URL else ", redis: in-process")


async def _admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_SERVER_URL.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def pytest_configure(config: pytest.Config) -> None:
    if TEST_DB == "postgres":
        import asyncio

        name = PG_URL.rsplit("/", 1)[1]
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}"'))
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))


def pytest_unconfigure(config: pytest.Config) -> None:
    if TEST_DB == "postgres":
        import asyncio

        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{PG_URL.rsplit("/", 1)[1]}" WITH (FORCE)'))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    other = "sqlite_only" if TEST_DB == "postgres" else "postgres"
    selected, deselected = [], []
    for item in items:
        (deselected if item.get_closest_marker(other) else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


async def _reset_postgres(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    if TEST_DB == "postgres":
        return PG_URL
    return f"sqlite://{tmp_path / 'govflow-test.sqlite3'}"


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[str]:
    """A clean, initialised database for one test; yields its URL."""
    if TEST_DB == "postgres":
        await _reset_postgres(db_url)
    await init_db(db_url, generate_schemas=True)
    try:
        yield db_url
    finally:
        await close_db()
        from engine.accountability import audit

        # build_engine configures the process's audit sequencing from its settings; the next test
        # starts from the library default (inline) unless it builds an engine too
        audit.configure(None)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(DATABASE_URL=db_url, REDIS_URL=REDIS_URL, PROCESSES_DIR=PROJECT_ROOT / "processes")


@pytest.fixture
def engine(db: str, settings: Settings):  # noqa: ANN201 - CaseEngine
    from engine import build_engine

    return build_engine(settings)


def model_files(name: str) -> dict[str, str]:
    """Files of a fixture model folder (or the approval model at the top of models/)."""
    from engine.bpmn.parser import files_for_model, read_folder

    base = FIXTURES / "models"
    if (base / name).is_dir():
        return read_folder(base / name)
    return files_for_model(base / f"{name}.bpmn")
