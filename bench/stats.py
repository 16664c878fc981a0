"""Service statistics (``engine.workbench.stats.service_stats``, ``GET /api/v1/stats/services``) at scale,
on PostgreSQL.

Fills a fresh database (committed migrations, dropped afterwards) through each size in ``--sizes``
with cases spread evenly over the last 365 days and over the catalogue's services — 80 % completed
(1 in 13 refused, 1 in 3 decided by rule, some late), the rest running (some past due) — a rating
for every fifth completed case and a 补正 request for every twentieth case; then measures p50/p99 of
the statistics for the last 30 days for an administrator (every service) and for one department's
supervisor, and the JSON → CSV/XLSX export. After each load it runs ``VACUUM ANALYZE`` (what
autovacuum does after bulk inserts): the statistics read indexes alone, which needs the visibility map.

    python bench/stats.py                       # 100 k and 1 M cases
    python bench/stats.py --sizes 100000        # quicker
    python bench/stats.py --sizes 1000000 --keep           # keep the database for EXPLAIN ANALYZE
    python bench/stats.py --sizes 1000000 --reuse URL      # measure it again (no load)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scale import copy_rows  # noqa: E402
from bench.support import load, percentiles, pg_database  # noqa: E402

MINUTES_PER_YEAR = 365 * 24 * 60


class Generator:
    def __init__(self, definition_id: int, now: datetime, services: list[str]) -> None:
        self.definition_id, self.now, self.services = definition_id, now, services

    def created(self, i: int) -> datetime:
        return self.now - timedelta(minutes=(i * 7919) % MINUTES_PER_YEAR)

    def cases(self, ids: range) -> list[tuple[Any, ...]]:
        rows = []
        for i in ids:
            created = self.created(i)
            done = i % 10 < 8
            completed = created + timedelta(hours=1 + i % 190) if done else None
            due = created + timedelta(days=7)
            outcome = ("rejected" if i % 13 == 0 else "approved") if done else None
            decided = ("auto" if i % 3 == 0 else "officer") if done else None
            rows.append((i + 1, f"STAT{i + 1:012d}", self.services[i % len(self.services)], self.definition_id,
                         f"bench-{i % 50_000}", "mobile", "1.0", "completed" if done else "running", due, "{}", 1,
                         created, created, completed, outcome, decided))
        return rows

    def evaluations(self, ids: range) -> list[tuple[Any, ...]]:
        # evaluation k rates case 5k+1 (completed when (5k) % 10 < 8, i.e. always for k even… both kinds)
        return [(k + 1, 5 * k + 1, 1 + (k * 7) % 5, "", "x" * 64, None, self.created(5 * k) + timedelta(days=1))
                for k in ids]

    def events(self, ids: range) -> list[tuple[Any, ...]]:
        return [(k + 1, 20 * k + 1, "supplement_requested", None, "受理核验", "bench", "samr", '{"opinion":"补正"}',
                 True, self.created(20 * k) + timedelta(hours=2)) for k in ids]


CASE_COLUMNS = ["id", "case_no", "service", "definition_id", "applicant", "channel", "item_version", "status",
                "due_at", "state", "version", "created_at", "updated_at", "completed_at", "outcome", "decided_by"]
EVAL_COLUMNS = ["id", "case_id", "level", "comment", "evaluator_hash", "rectification_case_no", "created_at"]
EVENT_COLUMNS = ["id", "case_id", "kind", "task_id", "task_name", "actor", "department", "detail", "published",
                 "created_at"]


async def measure(samples: int, department: str) -> dict[str, Any]:
    from engine.citizen.catalog import Catalog
    from engine.kernel.sla import CST, WorkingCalendar
    from engine.workbench import stats

    catalog = Catalog.load(ROOT / "processes")
    services = {i.slug: stats.ServiceInfo(i.slug, i.name, i.department) for i in catalog.items(include_platform=True)}
    calendar = WorkingCalendar.load(ROOT / "processes" / "calendar.yaml")
    now = datetime.now(timezone.utc)
    start, end = stats.window(None, None, now.astimezone(CST).date())
    figures: dict[str, Any] = {}
    for label, departments in (("admin", None), (department, {department})):
        times = []
        for n in range(samples + 2):
            began = time.perf_counter()
            result = await stats.service_stats(services, {}, departments=departments, start=start, end=end, now=now,
                                               calendar=calendar)
            if n >= 2:
                times.append(time.perf_counter() - began)
        figures[f"{label}_ms"] = percentiles(times)
        figures[f"{label}_received_30d"] = result["totals"]["received"]
    began = time.perf_counter()
    stats.to_xlsx(result["items"], start, end)
    figures["xlsx_ms"] = round((time.perf_counter() - began) * 1000, 1)
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--department", default="samr")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "stats.json"))
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed) for EXPLAIN")
    parser.add_argument("--reuse", metavar="URL", help="measure a database kept by an earlier --keep run (no load)")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]

    import asyncpg
    from tortoise import Tortoise

    from engine.citizen.catalog import Catalog
    from engine.config import Settings
    from engine.store.db import init_db
    from engine.store.models import ProcessDefinition
    from mobile_api.cli import migrate

    services = [i.slug for i in Catalog.load(ROOT / "processes").items(include_platform=True)]
    report: dict[str, Any] = {"bench": "stats", "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                              "services": len(services), "samples": args.samples, "sizes": []}
    async with contextlib.AsyncExitStack() as stack:
        url = args.reuse or await stack.enter_async_context(pg_database("govflow_bench_stats", keep=args.keep))
        if args.keep:
            print(f"database: {url}", file=sys.stderr)
        await migrate(Settings(DATABASE_URL=url), quiet=True)
        await init_db(url)
        conn = await asyncpg.connect(url)
        try:
            definition = await ProcessDefinition.first() or await ProcessDefinition.create(
                process_id="bench", name="bench", version=1, content_hash="0" * 64, files="{}")
            gen = Generator(definition.id, datetime.now(timezone.utc), services)
            have = await conn.fetchval("SELECT count(*) FROM cases")
            for size in sizes:
                seconds = 0.0
                if size > have:
                    seconds = await copy_rows(conn, "cases", CASE_COLUMNS, gen.cases, have, size, "cases")
                    await copy_rows(conn, "evaluations", EVAL_COLUMNS, gen.evaluations, have // 5, size // 5,
                                    "ratings")
                    await copy_rows(conn, "case_events", EVENT_COLUMNS, gen.events, have // 20, size // 20, "events")
                    have = size
                for table in ("cases", "evaluations", "case_events"):
                    # what autovacuum does after bulk inserts: statistics and the visibility map
                    # (without it PostgreSQL cannot answer from an index alone)
                    await conn.execute(f"VACUUM ANALYZE {table}")
                figures = await measure(args.samples, args.department)
                report["sizes"].append({"cases": size, "load_seconds": round(seconds, 1), **figures, "load": load()})
                print(f"{size} cases: admin p50 {figures['admin_ms']['p50']} ms p99 {figures['admin_ms']['p99']} ms; "
                      f"{args.department} p50 {figures[args.department + '_ms']['p50']} ms", file=sys.stderr)
        finally:
            await conn.close()
            await Tortoise.close_connections()
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
