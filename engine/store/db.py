"""Database set-up: SQLite file by default, PostgreSQL when the URL says so.

Nothing connects at import time: ``init_db`` is called by the app factory, the CLI and tests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url

MODEL_MODULES = ["engine.store.models", "engine.store.certificate_models", "engine.store.shared_models", "engine.store.identity_models",
                 "engine.store.designer_models", "engine.store.audit_models", "engine.store.notify_models"]
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled PostgreSQL connection returned to the pool without asyncpg's reset query.

    asyncpg runs ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` on every
    release: a second round trip for each query Tortoise runs outside a transaction (it takes a
    pooled connection per query), about an eighth of a case-detail read's server CPU. govflow
    leaves no session state on pooled connections: advisory locks are transaction-scoped
    (``pg_advisory_xact_lock``), no ``LISTEN`` (live status is Redis pub/sub), no ``SET`` beyond the
    start-up ``server_settings``, cursors only inside transactions; the migration lock
    (``govflow migrate``) holds a connection of its own. Open transactions are still rolled back
    on release (asyncpg does that whatever the reset query)."""

    def get_reset_query(self) -> str:
        return ""


def is_postgres(url: str) -> bool:
    return urlparse(url).scheme in {"postgres", "postgresql", "asyncpg"}


def tortoise_config(url: str, *, with_aerich: bool = False) -> dict[str, Any]:
    """Tortoise config for a database URL; SQLite gets WAL and relaxed fsync for speed."""
    parsed = urlparse(url)
    connection: Any
    if parsed.scheme == "sqlite":
        path = url[len("sqlite://"):]
        if path not in {":memory:", ""}:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connection = {
            "engine": "tortoise.backends.sqlite",
            "credentials": {
                "file_path": path, "journal_mode": "WAL", "synchronous": "NORMAL",
                "busy_timeout": 10000,
            },
        }
    elif is_postgres(url):
        connection = expand_db_url(url.replace("postgresql://", "postgres://", 1))
        connection["credentials"]["connection_class"] = PooledConnection
    else:
        raise ValueError(f"GOVFLOW_DATABASE_URL: unsupported database scheme {parsed.scheme!r}")
    models = list(MODEL_MODULES)
    if with_aerich:
        models.append("aerich.models")
    return {
        "connections": {"default": connection},
        "apps": {"models": {"models": models, "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }


async def init_db(url: str, *, generate_schemas: bool = False) -> None:
    """Open the connection for this process. ``generate_schemas`` is for tests only;
    real databases get their schema from the committed migrations (``govflow migrate``)."""
    await Tortoise.init(config=tortoise_config(url, with_aerich=True), _enable_global_fallback=True)
    if generate_schemas:
        await Tortoise.generate_schemas(safe=True)


async def close_db() -> None:
    """Close this process's connections and forget the global context, so it can init again."""
    await Tortoise.close_connections()


_INSERT_SQL: dict[tuple[Any, tuple[str, ...], int, bool, str | None], str] = {}


def insert_sql(model: Any, columns: tuple[str, ...], count: int, postgres: bool, returning: str | None = None) -> str:
    """The text of one multi-row ``INSERT`` of ``count`` rows into ``model``'s table (``columns``:
    field names; ``$n`` placeholders on PostgreSQL, ``?`` on SQLite; ``returning``: a field whose
    values come back). The same text for the same shape, so asyncpg reuses its prepared statement."""
    key = (model, columns, count, postgres, returning)
    sql = _INSERT_SQL.get(key)
    if sql is None:
        meta = model._meta
        names = ", ".join(f'"{meta.fields_db_projection[name]}"' for name in columns)
        width = len(columns)
        if postgres:
            groups = ("(" + ", ".join(f"${r * width + i + 1}" for i in range(width)) + ")" for r in range(count))
        else:
            groups = ("(" + ", ".join("?" * width) + ")" for _ in range(count))
        sql = f'INSERT INTO "{meta.db_table}" ({names}) VALUES {", ".join(groups)}'
        if returning is not None:
            sql += f' RETURNING "{meta.fields_db_projection[returning]}"'
        if len(_INSERT_SQL) < 512:
            _INSERT_SQL[key] = sql
    return sql


async def insert_rows(conn: Any, model: Any, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """One plain multi-row ``INSERT`` of ``rows`` (values in ``columns`` order, field names) into
    ``model``'s table, in the caller's transaction ``conn``: for the hot write paths, where the ORM
    would build a model instance per row and (on SQLite) run one ``INSERT`` per row. Values are
    converted by each field's own ``to_db_value``, so the stored text is what the ORM stores.
    No ids come back; use the ORM where the caller needs them."""
    step = 30000 // max(1, len(columns))  # SQLite and PostgreSQL take up to 32 766 parameters
    if len(rows) > step:
        for start in range(0, len(rows), step):
            await insert_rows(conn, model, columns, rows[start:start + step])
        return
    if not rows:
        return
    fields = [model._meta.fields_map[name] for name in columns]
    sql = insert_sql(model, columns, len(rows), getattr(conn.capabilities, "dialect", "") == "postgres")
    params = [field.to_db_value(value, model) for row in rows for field, value in zip(fields, row, strict=True)]
    await conn.execute_query(sql, params)


def db_connection() -> Any:
    return connections.get("default")


async def ping() -> None:
    """Round-trip to the database; raises when it is unreachable."""
    await db_connection().execute_query("SELECT 1")


# aerich reads this (see [tool.aerich] in pyproject.toml).
AERICH_CONFIG = tortoise_config(
    os.environ.get("GOVFLOW_DATABASE_URL")
    or f"sqlite://{Path(__file__).resolve().parents[2] / 'var' / 'govflow.sqlite3'}",
    with_aerich=True,
)
