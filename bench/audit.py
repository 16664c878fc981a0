"""Audit chain benchmark: appends (one record per transaction, as actions write them; from
several concurrent writers on PostgreSQL) and ``verify`` over the whole chain.

Prints one JSON document. Usage: ``python bench/audit.py [--n 5000] [--writers 8] [--no-postgres]``
(PostgreSQL: ``GOVFLOW_BENCH_PG_URL``, default ``postgres://postgres@127.0.0.1:5432/test``, in a
database of its own that is dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tortoise.transactions import in_transaction  # noqa: E402

from engine.accountability import audit  # noqa: E402
from engine.store.db import close_db, init_db  # noqa: E402


async def _run(url: str, n: int, writers: int) -> dict[str, float]:
    await init_db(url, generate_schemas=True)
    try:
        per_writer = n // writers

        async def writer(w: int) -> None:
            for i in range(per_writer):
                async with in_transaction() as conn:
                    await audit.append(conn, [audit.AuditEntry("task.complete", actor=f"officer{w}",
                                                               case_no=f"BENCH-{w}-{i}",
                                                               detail={"opinion": "同意", "i": i})])

        start = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(writers)))
        appended = time.perf_counter() - start
        start = time.perf_counter()
        result = await audit.verify(batch=1000)
        verified = time.perf_counter() - start
        assert result.ok and result.checked == per_writer * writers, result.describe()
        return {"records": result.checked, "writers": writers,
                "appends_per_s": round(result.checked / appended, 1),
                "verify_records_per_s": round(result.checked / verified, 1), "verify_s": round(verified, 3)}
    finally:
        await close_db()


async def _pg(base: str, n: int, writers: int) -> dict[str, float]:
    import asyncpg

    name = f"govflow_bench_audit_{os.getpid()}"
    admin = base.replace("postgres://", "postgresql://", 1)
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        return await _run(f"{base.rsplit('/', 1)[0]}/{name}", n, writers)
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--only", choices=("sqlite", "postgres"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(asyncio.run(_run(f"sqlite://{Path(tmp) / 'bench.sqlite3'}", args.n, 1))))
        return
    if args.only == "postgres":
        base = os.environ.get("GOVFLOW_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
        print(json.dumps(asyncio.run(_pg(base, args.n, args.writers))))
        return
    # one interpreter per dialect: Tortoise caches a model's SQL for the first dialect it meets
    out: dict[str, object] = {}
    for db in ("sqlite",) if args.no_postgres else ("sqlite", "postgres"):
        done = subprocess.run([sys.executable, __file__, "--only", db, "--n", str(args.n), "--writers",
                               str(args.writers)], capture_output=True, text=True, check=True)
        out[db] = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
