"""Audit chain benchmark: appends (one record per transaction, as actions write them; from
concurrent writers on PostgreSQL) and ``verify`` over the whole chain.

Laid out as production runs it: the writers are spread over ``--procs`` OS processes (API workers),
each with its own connection pool and its share of the asyncio writers (``--writers 32 --procs 4``:
8 writers and 8 pooled connections per process); in ``batch`` mode the sequencer is a real
``govflow worker`` process (it chains the pending records every ``AUDIT_SEQUENCE_INTERVAL_MS``, the
production default 200 ms, one leader by advisory lock). ``inline`` mode (the head row locked in
every transaction, the old way) needs no sequencer. Every writer process connects and warms its pool
first; then all start together and ``appends_per_s`` is the records over the wall time from the
first writer's start to the last writer's end.

Per run: ``lag_max_s`` (the oldest pending record's age, sampled every 50 ms while the writers run),
``drain_s`` (from the last append until no record is pending: what the sequencer still had to do),
``verify_records_per_s``, and ``cpu_ms_per_append`` from /proc over the window from the start to the
drained chain: the writer processes, the sequencer (``govflow worker``), this database's PostgreSQL
backends, and PostgreSQL's shared background processes (WAL writer, checkpointer: shared with
anything else running on the server). SQLite: one writer, inline, in this process.

Prints one JSON document (also ``bench/results/audit.json``). Usage:
``python bench/audit.py [--n 10000] [--writers 1,32] [--procs 4] [--modes batch,inline] [--no-postgres]``
(PostgreSQL: ``GOVFLOW_BENCH_PG_URL``, default ``postgres://postgres@127.0.0.1:5432/test``, a
database of its own per run, dropped afterwards; Redis for the worker: ``GOVFLOW_BENCH_REDIS_URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after the project root: bench/engine.py is not the engine package

from support import REDIS_URL, load, pg_database  # noqa: E402
from tortoise.transactions import in_transaction  # noqa: E402

from engine.accountability import audit  # noqa: E402
from engine.store.db import close_db, init_db  # noqa: E402


def _configure(mode: str) -> None:
    audit.configure(type("BenchSettings", (), {"AUDIT_SEQUENCING": mode})())


def _entry(w: int, i: int) -> audit.AuditEntry:
    return audit.AuditEntry("task.complete", actor=f"officer{w}", case_no=f"BENCH-{w}-{i}",
                            detail={"opinion": "同意", "i": i})


async def _write(first: int, writers: int, per_writer: int) -> None:
    async def writer(w: int) -> None:
        for i in range(per_writer):
            async with in_transaction() as conn:
                await audit.append(conn, [_entry(w, i)])

    await asyncio.gather(*(writer(first + w) for w in range(writers)))


async def _write_bare(first: int, writers: int, per_writer: int) -> None:
    """The floor (mode ``bare``): the same one-row transactions (BEGIN, the INSERT, COMMIT) from bare
    asyncpg on Tortoise's pool: no ORM, no audit code. What Python + asyncpg + PostgreSQL cost on
    this machine for one committed row, whatever govflow does."""
    from tortoise import connections

    pool = connections.get("default")._pool
    sql = audit._pending_insert_sql(1)

    async def writer(w: int) -> None:
        for i in range(per_writer):
            entry = _entry(w, i)
            async with pool.acquire() as raw, raw.transaction():
                now = datetime.now(timezone.utc)
                await raw.fetchval(sql, now, entry.kind, entry.actor, None, entry.case_no, None,
                                   audit.canonical_detail(entry.detail), now)

    await asyncio.gather(*(writer(first + w) for w in range(writers)))


# ------------------------------------------------------------------ SQLite: one writer, inline
async def _sqlite(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        await init_db(f"sqlite://{Path(tmp) / 'bench.sqlite3'}", generate_schemas=True)
        _configure("inline")
        try:
            start = time.perf_counter()
            await _write(0, 1, n)
            appended = time.perf_counter() - start
            start = time.perf_counter()
            result = await audit.verify(batch=1000)
            verified = time.perf_counter() - start
            assert result.ok and result.checked == n, result.describe()
            return {"records": n, "writers": 1, "mode": "inline", "appends_per_s": round(n / appended, 1),
                    "verify_records_per_s": round(n / verified, 1), "verify_s": round(verified, 3)}
        finally:
            await close_db()


# ------------------------------------------------------------------ a writer process (an API worker)
async def _writer_process(url: str, first: int, writers: int, per_writer: int, mode: str) -> None:
    await init_db(f"{url}?minsize={writers}&maxsize={writers}")
    _configure(mode)
    loop = asyncio.get_running_loop()
    try:
        async def warm() -> None:  # every pooled connection open before the start
            async with in_transaction() as conn:
                await conn.execute_query("SELECT 1")
                await asyncio.sleep(0.05)

        await asyncio.gather(*(warm() for _ in range(writers)))
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)  # "go"
        start = time.monotonic()  # CLOCK_MONOTONIC: one clock for all processes on this machine
        await (_write_bare if mode == "bare" else _write)(first, writers, per_writer)
        end = time.monotonic()
        print(json.dumps({"start": start, "end": end, "records": writers * per_writer}), flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)  # stay (and keep the backends) until measured
    finally:
        await close_db()


# ------------------------------------------------------------------ CPU from /proc
def _cpu(pids: set[int], database: str, skip: int = 0) -> dict[str, float]:
    """CPU seconds so far of ``pids`` (each alone), this database's PostgreSQL backends (but ``skip``:
    the bench's own watching connection), and PostgreSQL's shared background processes."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {"postgres_backends": 0.0, "postgres_shared": 0.0}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        used = (int(fields[11]) + int(fields[12])) / tick
        if int(entry) in pids:
            out[entry] = used
        elif int(entry) == skip:
            continue
        elif cmd.startswith("postgres:"):
            if f" {database} " in cmd:
                out["postgres_backends"] += used
            elif any(k in cmd for k in ("walwriter", "checkpointer", "background writer", "autovacuum launcher",
                                        "walsender", "stats")):
                out["postgres_shared"] += used
    return out


async def _pending(conn: Any) -> tuple[int, float]:
    row = await conn.fetchrow('SELECT count(*) AS n, EXTRACT(EPOCH FROM clock_timestamp() - min("created_at")) AS age '
                              'FROM "audit_log" WHERE "seq" IS NULL')
    return int(row["n"]), float(row["age"] or 0.0)


async def _spawn(*argv: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                env=env, cwd=str(ROOT), start_new_session=True)


async def _wait_for_line(proc: asyncio.subprocess.Process, wanted: str, timeout: float = 120) -> str:
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode()
        if not line:
            raise RuntimeError(f"process {proc.pid} ended before {wanted!r}")
        if line.startswith(wanted) or (wanted == "{" and line.lstrip().startswith("{")):
            return line


def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: its group id is its pid
        except ProcessLookupError:
            pass


async def _pg_run(n: int, writers: int, procs: int, mode: str, interval_ms: int) -> dict[str, Any]:
    import asyncpg

    procs = max(1, min(procs, writers))
    per_writer = n // writers
    shares = [writers // procs + (1 if p < writers % procs else 0) for p in range(procs)]
    async with pg_database("govflow_bench_audit") as url:
        database = url.rsplit("/", 1)[1]
        await init_db(url, generate_schemas=True)
        _configure(mode)
        await audit.sequence()  # the head row, as `govflow migrate` and the first pass leave it
        await close_db()
        spawned: list[asyncio.subprocess.Process] = []
        try:
            sequencer = None
            if mode == "batch":
                env = {**os.environ, "GOVFLOW_ENV": "development", "GOVFLOW_DATABASE_URL": url,
                       "GOVFLOW_REDIS_URL": REDIS_URL, "GOVFLOW_AUDIT_SEQUENCING": "batch",
                       "GOVFLOW_AUDIT_SEQUENCE_INTERVAL_MS": str(interval_ms)}
                sequencer = await _spawn(str(Path(sys.executable).parent / "govflow"), "worker", env=env)
                spawned.append(sequencer)
            first = 0
            for share in shares:
                spawned.append(await _spawn(sys.executable, __file__, "--role", "writer", "--url", url, "--first",
                                            str(first), "--writers", str(share), "--per-writer", str(per_writer),
                                            "--mode", mode))
                first += share
            writer_procs = spawned[1:] if sequencer else spawned
            if sequencer:
                await _wait_for_line(sequencer, "govflow worker: polling")
            for proc in writer_procs:
                await _wait_for_line(proc, "ready")
            watch = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
            pids = {p.pid for p in spawned}
            watcher = int(await watch.fetchval("SELECT pg_backend_pid()"))
            before = _cpu(pids, database, watcher)
            began = time.monotonic()
            for proc in writer_procs:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            reports = [asyncio.ensure_future(_wait_for_line(p, "{", timeout=3600)) for p in writer_procs]
            lag_max = 0.0
            while not all(r.done() for r in reports):
                if mode == "batch":
                    lag_max = max(lag_max, (await _pending(watch))[1])
                await asyncio.wait(reports, timeout=0.05)
            got = [json.loads(r.result()) for r in reports]
            start, end = min(g["start"] for g in got), max(g["end"] for g in got)
            records = sum(g["records"] for g in got)
            left = (await _pending(watch))[0]
            while mode != "bare" and (await _pending(watch))[0]:
                await asyncio.sleep(0.005)
            drained = time.monotonic() - end
            after = _cpu(pids, database, watcher)
            window = time.monotonic() - began
            await watch.close()
            for proc in writer_procs:
                assert proc.stdin is not None
                proc.stdin.write(b"exit\n")
                await proc.stdin.drain()
            for proc in writer_procs:
                await asyncio.wait_for(proc.wait(), 60)
            if sequencer:
                _stop(sequencer)
                await asyncio.wait_for(sequencer.wait(), 60)
        finally:
            for proc in spawned:
                _stop(proc)
        used = {k: after[k] - before.get(k, 0.0) for k in after}
        cpu = {"writers": sum(used[str(p.pid)] for p in writer_procs),
               "sequencer_worker": used[str(sequencer.pid)] if sequencer else 0.0,
               "postgres_backends": used["postgres_backends"], "postgres_shared": used["postgres_shared"]}
        verify: dict[str, Any] = {}
        if mode != "bare":
            await init_db(url)
            try:
                t0 = time.perf_counter()
                result = await audit.verify(batch=1000)
                verified = time.perf_counter() - t0
            finally:
                await close_db()
            # the worker's hourly anchor pass runs once at its start: it may add an anchor once records exist
            assert result.ok and result.checked == records + result.anchors and not result.pending, result.describe()
            verify = {"verify_records_per_s": round(records / verified, 1), "verify_s": round(verified, 3)}
        return {"records": records, "writers": writers, "procs": procs, "mode": mode,
                "appends_per_s": round(records / (end - start), 1), "wall_s": round(end - start, 3),
                "pending_at_end": left, "lag_max_s": round(lag_max, 3) if mode == "batch" else None,
                "drain_s": round(drained, 3), **verify,
                "cpu_ms_per_append": {**{k: round(v * 1000 / records, 3) for k, v in cpu.items()},
                                      "total": round(sum(cpu.values()) * 1000 / records, 3)},
                "cores_busy": round(sum(cpu.values()) / window, 2), "load": load()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10000, help="records per run")
    parser.add_argument("--writers", default="1,32", help="comma-separated writer counts (PostgreSQL)")
    parser.add_argument("--procs", type=int, default=4, help="writer processes (API workers) per run")
    parser.add_argument("--modes", default="batch,inline,bare",
                        help="PostgreSQL modes: batch, inline (sequencing) and bare (the asyncpg floor)")
    parser.add_argument("--interval-ms", type=int, default=200, help="the worker's AUDIT_SEQUENCE_INTERVAL_MS")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "audit.json"))
    parser.add_argument("--role", choices=("sqlite", "postgres", "writer"), help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="batch", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--per-writer", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "writer":
        asyncio.run(_writer_process(args.url, args.first, int(args.writers), args.per_writer, args.mode))
        return
    if args.role == "sqlite":
        print(json.dumps(asyncio.run(_sqlite(args.n))))
        return
    if args.role == "postgres":
        print(json.dumps(asyncio.run(_pg_run(args.n, int(args.writers), args.procs, args.mode, args.interval_ms))))
        return

    # one interpreter per run: Tortoise caches a model's SQL for the first dialect it meets
    def run(*extra: str) -> dict[str, Any]:
        done = subprocess.run([sys.executable, __file__, "--n", str(args.n), *extra],
                              capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    out: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_start": load(),
                           "sqlite": run("--role", "sqlite")}
    if not args.no_postgres:
        counts = [int(w) for w in args.writers.split(",") if w.strip()]
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            runs = {str(w): run("--role", "postgres", "--writers", str(w), "--procs", str(args.procs), "--mode", mode,
                                "--interval-ms", str(args.interval_ms)) for w in counts}
            rates = [float(r["appends_per_s"]) for r in runs.values()]
            out[f"postgres_{mode}"] = {"runs": runs, f"scaling_{counts[-1]}_vs_{counts[0]}": round(
                rates[-1] / rates[0], 2) if rates and rates[0] else None}
    out["load_average"] = os.getloadavg()
    text = json.dumps(out, indent=2)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
