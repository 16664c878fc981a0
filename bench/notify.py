"""Outbox benchmark: the latency of a 秒批 application (senior-card, approved in one step with a
signed e-certificate) with the notification outbox off, on (message centre only) and on with both
outside channels configured (a WeChat and an SMS delivery queued per step, the phone encrypted).

The three modes run interleaved in rounds of 20 applies on the same database, so drift (cache
warm-up, table growth, the machine's other load) falls on all three alike. SQLite, then
PostgreSQL (``GOVFLOW_BENCH_PG_URL``), each in a fresh interpreter and a fresh database.

Prints one JSON document. Usage: ``python bench/notify.py [--n 300] [--no-postgres]``
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.config import PROJECT_ROOT, Settings  # noqa: E402

PG_URL = os.environ.get("GOVFLOW_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/govflow_bench_notify")
ROUND = 20
FORM = {"phone": "13816612345", "address": {"region_code": "310104", "detail": "漕溪北路88弄3号602室"},
        "delivery": "mail"}
MODES = {
    "off": {"NOTIFY_OUTBOX": False},
    "on": {"NOTIFY_OUTBOX": True, "NOTIFY_CHANNELS": ""},
    "on_with_channels": {"NOTIFY_OUTBOX": True, "WECHAT_APPID": "wx-bench", "WECHAT_SECRET": "bench-secret",
                         "SMS_SECRET_ID": "id", "SMS_SECRET_KEY": "key", "SMS_SDK_APP_ID": "1400000000"},
}


async def bench(url: str, n: int) -> dict[str, dict[str, float]]:
    from engine import build_engine
    from engine.accountability.privacy import PiiKeys
    from engine.citizen.applications import Applicant, ApplicationService
    from engine.citizen.catalog import Catalog
    from engine.store.db import close_db, init_db
    from engine.store.notify_models import Notification, NotificationDelivery
    from mobile_api.cli import migrate

    base = Settings(DATABASE_URL=url, PROCESSES_DIR=PROJECT_ROOT / "processes")
    await migrate(base, quiet=True)
    await init_db(url)
    try:
        services = {}
        hook_s: dict[str, list[float]] = {mode: [] for mode in MODES}
        for mode, overrides in MODES.items():
            settings = dataclasses.replace(base, **overrides)
            engine = build_engine(settings)
            engine.deps.step_hooks[:] = [_timed(h, hook_s[mode]) for h in engine.deps.step_hooks]
            services[mode] = ApplicationService(engine, Catalog.load(settings.PROCESSES_DIR),
                                                pii_key=PiiKeys.from_settings(settings).blind_index_key)
        wang = Applicant(id_number="310104196103150273", name="王建国", openid="openid-bench", phone="13816612345")
        for service in services.values():  # warm caches (bundle parse, compiled scripts, certificate keys)
            for _ in range(5):
                await service.apply("senior-card", FORM, applicant=wang)
        latencies: dict[str, list[float]] = {mode: [] for mode in MODES}
        for values in hook_s.values():
            values.clear()
        rounds = max(1, n // ROUND)
        for r in range(rounds):
            order = list(MODES) if r % 2 == 0 else list(reversed(MODES))
            for mode in order:
                for _ in range(ROUND):
                    t0 = time.perf_counter()
                    result = await services[mode].apply("senior-card", FORM, applicant=wang)
                    latencies[mode].append(time.perf_counter() - t0)
                    assert result.status == "completed"
        out: dict[str, dict[str, float]] = {}
        for mode, values in latencies.items():
            values.sort()
            out[mode] = {"n": len(values), "mean_ms": round(statistics.mean(values) * 1000, 2),
                         "p50_ms": round(statistics.median(values) * 1000, 2),
                         "p95_ms": round(values[int(len(values) * 0.95) - 1] * 1000, 2),
                         "p99_ms": round(values[int(len(values) * 0.99) - 1] * 1000, 2)}
            if hook_s[mode]:  # the outbox hook's own time inside the step's transaction
                out[mode]["outbox_hook_mean_ms"] = round(statistics.mean(hook_s[mode]) * 1000, 2)
                out[mode]["outbox_hook_p50_ms"] = round(statistics.median(hook_s[mode]) * 1000, 2)
        out["rows"] = {"notifications": await Notification.all().count(),
                       "deliveries": await NotificationDelivery.all().count()}
        return out
    finally:
        await close_db()


def _timed(hook, sink: list[float]):  # noqa: ANN001, ANN202 - a step hook and its wrapper
    async def timed(conn, writes, now):  # noqa: ANN001, ANN202
        t0 = time.perf_counter()
        await hook(conn, writes, now)
        sink.append(time.perf_counter() - t0)

    return timed


def _run(url: str, n: int) -> dict[str, dict[str, float]]:
    return asyncio.run(bench(url, n))


def in_fresh_process(url: str, n: int) -> dict[str, dict[str, float]]:
    """Each database gets its own interpreter: Tortoise caches per-dialect queries on models."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_run, url, n).result()


async def _reset_pg_database(url: str) -> None:
    import asyncpg

    base, name = url.rsplit("/", 1)
    conn = await asyncpg.connect(base.replace("postgres://", "postgresql://", 1) + "/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="applies per mode")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    report: dict[str, object] = {"n_per_mode": args.n, "process": "senior-card 秒批 (one step, certificate signed)"}
    with tempfile.TemporaryDirectory() as tmp:
        report["sqlite"] = in_fresh_process(f"sqlite://{Path(tmp) / 'bench.sqlite3'}", args.n)
    if not args.no_postgres:
        asyncio.run(_reset_pg_database(PG_URL))
        try:
            report["postgres"] = in_fresh_process(PG_URL, args.n)
        finally:
            async def drop() -> None:
                import asyncpg

                base, name = PG_URL.rsplit("/", 1)
                conn = await asyncpg.connect(base.replace("postgres://", "postgresql://", 1) + "/postgres")
                try:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                finally:
                    await conn.close()

            asyncio.run(drop())
    text = json.dumps(report, ensure_ascii=False, indent=2)
    (ROOT / "bench" / "results" / "notify.json").write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
