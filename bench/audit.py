"""Audit chain benchmark: appends (one record per transaction, as actions write them; from
concurrent writers on PostgreSQL) and ``verify`` over the whole chain.

PostgreSQL runs each writer count (``--writers 1,32``) in both modes: ``batch`` (pending records,
no lock on the hot path; a sequencer task chains them every 50 ms meanwhile, as ``govflow worker``
does, in the same process — so it competes with the writers for this interpreter's CPU) and
``inline`` (the head row locked in every transaction, the old way). ``drain_s`` is how long the
sequencer needed after the last append to chain what was left. SQLite: one writer, inline.

Prints one JSON document. Usage: ``python bench/audit.py [--n 5000] [--writers 1,32] [--no-postgres]``
(PostgreSQL: ``GOVFLOW_BENCH_PG_URL``, default ``postgres://postgres@127.0.0.1:5432/test``, in a
database of its own that is dropped afterwards; a pool of 40 connections).
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


async def _run(url: str, n: int, writers: int, mode: str = "inline") -> dict[str, float]:
    await init_db(url, generate_schemas=True)
    audit.configure(type("BenchSettings", (), {"AUDIT_SEQUENCING": mode})())
    try:
        per_writer = n // writers
        done = asyncio.Event()

        async def writer(w: int) -> None:
            for i in range(per_writer):
                async with in_transaction() as conn:
                    await audit.append(conn, [audit.AuditEntry("task.complete", actor=f"officer{w}",
                                                               case_no=f"BENCH-{w}-{i}",
                                                               detail={"opinion": "同意", "i": i})])

        async def sequencer() -> None:  # what govflow worker runs every AUDIT_SEQUENCE_INTERVAL_MS
            while not done.is_set():
                await audit.sequence()
                try:
                    await asyncio.wait_for(done.wait(), timeout=0.05)
                except asyncio.TimeoutError:
                    pass

        chainer = asyncio.ensure_future(sequencer())
        start = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(writers)))
        appended = time.perf_counter() - start
        done.set()
        await chainer
        start = time.perf_counter()
        await audit.sequence()
        drained = time.perf_counter() - start
        start = time.perf_counter()
        result = await audit.verify(batch=1000)
        verified = time.perf_counter() - start
        assert result.ok and result.checked == per_writer * writers and not result.pending, result.describe()
        return {"records": result.checked, "writers": writers, "mode": mode,
                "appends_per_s": round(result.checked / appended, 1), "drain_s": round(drained, 3),
                "verify_records_per_s": round(result.checked / verified, 1), "verify_s": round(verified, 3)}
    finally:
        await close_db()


async def _pg(base: str, n: int, writers: int, mode: str) -> dict[str, float]:
    import asyncpg

    name = f"govflow_bench_audit_{os.getpid()}"
    admin = base.replace("postgres://", "postgresql://", 1)
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        return await _run(f"{base.rsplit('/', 1)[0]}/{name}?maxsize=40", n, writers, mode)
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--writers", default="1,32", help="comma-separated writer counts (PostgreSQL)")
    parser.add_argument("--modes", default="batch,inline", help="PostgreSQL sequencing modes to run")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--only", choices=("sqlite", "postgres"), help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="batch", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(asyncio.run(_run(f"sqlite://{Path(tmp) / 'bench.sqlite3'}", args.n, 1))))
        return
    if args.only == "postgres":
        base = os.environ.get("GOVFLOW_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
        print(json.dumps(asyncio.run(_pg(base, args.n, int(args.writers), args.mode))))
        return

    # one interpreter per run: Tortoise caches a model's SQL for the first dialect it meets
    def run(*extra: str) -> dict[str, object]:
        done = subprocess.run([sys.executable, __file__, "--n", str(args.n), *extra],
                              capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    out: dict[str, object] = {"sqlite": run("--only", "sqlite")}
    if not args.no_postgres:
        counts = [int(w) for w in args.writers.split(",") if w.strip()]
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            runs = {str(w): run("--only", "postgres", "--writers", str(w), "--mode", mode) for w in counts}
            rates = [float(r["appends_per_s"]) for r in runs.values()]  # type: ignore[arg-type]
            out[f"postgres_{mode}"] = {"runs": runs, f"scaling_{counts[-1]}_vs_{counts[0]}": round(
                rates[-1] / rates[0], 2) if rates and rates[0] else None}
    out["load_average"] = os.getloadavg()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
