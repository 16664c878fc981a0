"""The committed migrations build every table and column the models declare, on both databases."""

from __future__ import annotations

import asyncio

from tortoise import Tortoise

from engine.config import Settings
from engine.store.db import close_db, db_connection, init_db
from mobile_api.cli import migrate
from tests.conftest import TEST_DB, _reset_postgres


async def _columns(table: str) -> set[str]:
    conn = db_connection()
    if TEST_DB == "postgres":
        rows = await conn.execute_query_dict(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1", [table])
        return {row["column_name"] for row in rows}
    rows = await conn.execute_query_dict(f'PRAGMA table_info("{table}")')
    return {row["name"] for row in rows}


async def test_migrations_match_the_models(db_url: str) -> None:
    if TEST_DB == "postgres":
        await _reset_postgres(db_url)
    # each run in a task of its own: aerich enters a Tortoise context that must not leak into ours
    applied = await asyncio.create_task(migrate(Settings(DATABASE_URL=db_url), quiet=True))
    assert applied, "no migration applied to a fresh database"
    assert await asyncio.create_task(migrate(Settings(DATABASE_URL=db_url), quiet=True)) == []
    await init_db(db_url)
    try:
        missing = {}
        for model in Tortoise.apps["models"].values():
            if model._meta.db_table == "aerich":
                continue
            expected = set(model._meta.fields_db_projection.values())
            lacking = expected - await _columns(model._meta.db_table)
            if lacking:
                missing[model._meta.db_table] = sorted(lacking)
        assert not missing, f"models changed without a migration (run tools/make_migration.py): {missing}"
    finally:
        await close_db()
