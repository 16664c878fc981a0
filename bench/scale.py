"""Staff inbox and certificate verification at scale, on PostgreSQL.

A bulk-load generator (PostgreSQL ``COPY`` through asyncpg, with a progress bar) fills a fresh
database — made with the committed migrations, dropped afterwards — with open human tasks (one
case each, spread over the departments of processes/departments.yaml) and issued certificates.
It grows the same database through each size in ``--sizes`` and, at each, measures p50/p99 of:

* the staff inbox of one department: ``engine.workbench.staff.inbox`` as ``GET /api/v1/staff/tasks`` calls it
  (working set, page 1, with the per-filter counts for the badges);
* certificate verification: what ``POST /api/v1/certificates/verify`` does — check the QR token's
  signature (``engine.certificates.signing.verify_qr_token``), look the certificate up by identifier, work
  out its effective state and write the personal-data access log row.

The output shows each figure's ratio to the smallest size: index lookups keep it flat.

    python bench/scale.py                                   # default: 100 k and 300 k tasks
    python bench/scale.py --sizes 100000:100000,1000000:10000000   # the issue's full size
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from tqdm import tqdm  # noqa: E402

from bench.support import load, percentiles, pg_database  # noqa: E402
from engine.certificates.ids import IDENTIFIER_PREFIX, make_identifier  # noqa: E402

CHUNK = 20_000
CERT_TYPE, ISSUER, ISSUER_NAME = "11310000612852669L001", "11310000612852669L", "上海市民政局"


def departments() -> list[str]:
    rows = yaml.safe_load((ROOT / "processes" / "departments.yaml").read_text(encoding="utf-8"))
    return [row["code"] for row in rows if row["code"] != "supervisor"]


async def copy_rows(conn: Any, table: str, columns: list[str], rows_for: Any, start: int, stop: int,
                    label: str) -> float:
    """COPY rows ``start``..``stop`` (made by ``rows_for(range)``) into ``table``; seconds taken."""
    began = time.perf_counter()
    with tqdm(total=stop - start, desc=label, unit="rows", unit_scale=True, file=sys.stderr,
              mininterval=1.0) as bar:
        for low in range(start, stop, CHUNK):
            chunk = range(low, min(stop, low + CHUNK))
            await conn.copy_records_to_table(table, records=rows_for(chunk), columns=columns)
            bar.update(len(chunk))
    return time.perf_counter() - began


_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _mod_37_36_state(text: str, check: int = 18) -> int:
    for char in text:
        check = (((check or 36) * 2) % 37 + _ALPHABET.index(char)) % 36
    return check


_PREFIX_STATE = _mod_37_36_state(CERT_TYPE + ISSUER)


def fast_identifier(serial: int) -> str:
    """``make_identifier(CERT_TYPE, ISSUER, serial)``, with the check state of the fixed prefix
    computed once (ISO 7064 MOD 37,36 runs left to right): 10 M identifiers in minutes, not an hour.
    ``main`` checks it against ``make_identifier``."""
    text = f"{serial}001"
    check = _mod_37_36_state(text, _PREFIX_STATE)
    char = _ALPHABET[(1 - ((check or 36) * 2) % 37) % 36]
    return f"{IDENTIFIER_PREFIX}.{CERT_TYPE}.{ISSUER}.{text[:-3]}.001.{char}"


class Generator:
    """Deterministic rows: row ``i`` is the same whatever the chunking."""

    def __init__(self, definition_id: int, now: datetime) -> None:
        self.definition_id, self.now = definition_id, now
        self.departments = departments()

    def cases(self, ids: range) -> list[tuple[Any, ...]]:
        now = self.now
        return [(i + 1, f"BENCH{i + 1:012d}", "senior-card", self.definition_id, f"bench-{i % 50_000}", None,
                 "mobile", "1.0", "running", now + timedelta(days=5), None, "{}", 1, None, now, now, None)
                for i in ids]

    def tasks(self, ids: range) -> list[tuple[Any, ...]]:
        rows = []
        for i in ids:
            rng = random.Random(i)
            department = self.departments[i % len(self.departments)]
            claimed = rng.random() < 0.1
            due = None if rng.random() < 0.1 else self.now + timedelta(minutes=rng.randrange(-14_400, 43_200))
            rows.append((uuid.UUID(int=rng.getrandbits(128)), i + 1, "bpmn", "review", "审核申请材料", department,
                         department, "review.json", f"{department}01" if claimed else None,
                         "claimed" if claimed else "ready", self.now - timedelta(seconds=i), due, None, None))
        return rows

    def certificates(self, ids: range) -> list[tuple[Any, ...]]:
        rows = []
        for i in ids:
            issued = date(2020, 1, 1) + timedelta(days=i % 2500)
            holder = f"{(i * 2654435761) % 2**64:016x}" * 4
            data = json.dumps({"extra": {"serial": i}}, separators=(",", ":"))
            rows.append((i + 1, fast_identifier(i + 1), CERT_TYPE, f"LY{i + 1:010d}",
                         "老年人优待证", ISSUER_NAME, ISSUER, "王某某", holder, "310***********0000", None, "111",
                         issued, issued, None, "310000", "01", data, "x" * 96, "bench-2026", "SM2-SM3", None,
                         self.now, self.now))
        return rows


CASE_COLUMNS = ["id", "case_no", "service", "definition_id", "applicant", "agent", "channel", "item_version",
                "status", "due_at", "paused_at", "state", "version", "error", "created_at", "updated_at",
                "completed_at"]
TASK_COLUMNS = ["id", "case_id", "kind", "task_spec", "name", "lane", "department", "form_key", "assignee",
                "state", "created_at", "due_at", "completed_at", "completed_by"]
CERT_COLUMNS = ["id", "identifier", "type_code", "number", "name", "issuer_name", "issuer_code", "holder_name",
                "holder_code_hash", "holder_code_masked", "holder_code_enc", "holder_code_type", "issue_date",
                "valid_from", "valid_to", "jurisdiction_code", "state", "data", "signature", "key_id", "algorithm",
                "case_id", "created_at", "updated_at"]


async def grow(conn: Any, gen: Generator, have: dict[str, int], tasks: int, certificates: int) -> dict[str, float]:
    """Load rows up to ``tasks`` open tasks (and as many cases) and ``certificates``; seconds per table."""
    seconds: dict[str, float] = {}
    if tasks > have["tasks"]:
        seconds["cases"] = await copy_rows(conn, "cases", CASE_COLUMNS, gen.cases, have["tasks"], tasks, "cases")
        seconds["human_tasks"] = await copy_rows(conn, "human_tasks", TASK_COLUMNS, gen.tasks, have["tasks"],
                                                 tasks, "tasks")
        have["tasks"] = tasks
    if certificates > have["certificates"]:
        seconds["certificates"] = await copy_rows(conn, "certificates", CERT_COLUMNS, gen.certificates,
                                                  have["certificates"], certificates, "certificates")
        have["certificates"] = certificates
    began = time.perf_counter()
    for table in ("cases", "certificates"):  # ids were given explicitly: move the sequences past them
        await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT COALESCE(MAX(id), 1) FROM {table}))")
    for table in ("cases", "human_tasks", "certificates"):
        await conn.execute(f"ANALYZE {table}")
    seconds["analyze"] = time.perf_counter() - began
    return {k: round(v, 1) for k, v in seconds.items()}


async def measure(samples: int, have: dict[str, int], department: str) -> dict[str, Any]:
    from engine.certificates.keys import KeyRing, SM2Signer
    from engine.certificates.signing import CertState, effective_state, make_qr_token, verify_qr_token
    from engine.store.certificate_models import Certificate
    from engine.store.models import StaffUser
    from engine.store.shared_models import DataAccessLog
    from engine.workbench.staff import inbox
    from mobile_api.api.certificates import VERIFIED_FIELDS, VERIFY_PURPOSE, certificate_view

    staff = StaffUser(username=f"{department}01", name="王科员", departments=[department], roles=["officer"])
    for _ in range(3):  # warm the connection and caches
        await inbox(staff)
    inbox_times = []
    for _ in range(samples):
        began = time.perf_counter()
        page = await inbox(staff)
        inbox_times.append(time.perf_counter() - began)
    assert page["items"] and page["total"] > 0

    ring = KeyRing()
    signer = ring.add(SM2Signer.generate("bench-2026"))
    verifier = ring.verifier()
    rng = random.Random(42)
    now = datetime.now(timezone.utc)
    tokens = [make_qr_token(make_identifier(CERT_TYPE, ISSUER, rng.randrange(have["certificates"]) + 1),
                            CertState.VALID, ISSUER, date(2024, 1, 1), 180, signer, now=now)
              for _ in range(samples + 3)]
    verify_times = []
    for n, token in enumerate(tokens):
        began = time.perf_counter()
        claims = verify_qr_token(token, verifier, now)
        row = await Certificate.get_or_none(identifier=claims.identifier)
        assert row is not None
        state = effective_state(row, now.date())
        await DataAccessLog.create(actor="anonymous", subject_hash=row.holder_code_hash,
                                   subject_masked=row.holder_code_masked, dataset="certificate",
                                   fields_read=[*VERIFIED_FIELDS, "state"], case_id=row.case_id,
                                   purpose=VERIFY_PURPOSE)
        view = certificate_view(row, state)
        assert view["identifier"] == claims.identifier and state is CertState.VALID
        if n >= 3:
            verify_times.append(time.perf_counter() - began)
    return {"inbox_ms": percentiles(inbox_times), "inbox_total": page["total"],
            "verify_ms": percentiles(verify_times)}


async def explain(conn: Any, department: str) -> list[str]:
    """The plans of the inbox's page query (one lane: ready tasks with a due time) and of a capped
    count, to show they read an index range, not the department's whole backlog."""
    page = await conn.fetch(
        "EXPLAIN ANALYZE SELECT * FROM human_tasks t JOIN cases c ON c.id = t.case_id WHERE t.department = $1 "
        "AND t.state = 'ready' AND t.due_at IS NOT NULL ORDER BY t.due_at, t.created_at, t.id LIMIT 20", department)
    count = await conn.fetch(
        "EXPLAIN ANALYZE SELECT id FROM human_tasks WHERE department = $1 AND "
        "(state = 'ready' OR (state = 'claimed' AND assignee = $2)) LIMIT 1000", department, f"{department}01")
    return [r[0] for r in page] + [""] + [r[0] for r in count]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000:100000,300000:1000000",
                        help="TASKS:CERTIFICATES pairs, ascending (default 100000:100000,300000:1000000)")
    parser.add_argument("--samples", type=int, default=300, help="queries per figure (default 300)")
    parser.add_argument("--department", default="mca")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--reuse", metavar="URL", help="measure (and grow) a database kept by an earlier --keep run")
    parser.add_argument("--baseline", metavar="JSON", help="an earlier run's output whose sizes come first")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "scale.json"))
    args = parser.parse_args()
    sizes = [tuple(int(x) for x in pair.split(":")) for pair in args.sizes.split(",")]
    for serial in [*range(1, 2000), *random.Random(1).sample(range(2000, 20_000_000), 2000)]:
        assert fast_identifier(serial) == make_identifier(CERT_TYPE, ISSUER, serial), serial

    import asyncpg
    from tortoise import Tortoise

    from engine.config import Settings
    from engine.store.db import init_db
    from engine.store.models import ProcessDefinition
    from mobile_api.cli import migrate

    report: dict[str, Any] = {"bench": "scale", "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                              "department": args.department, "departments": len(departments()),
                              "samples": args.samples, "sizes": []}
    async with contextlib.AsyncExitStack() as stack:
        url = args.reuse or await stack.enter_async_context(pg_database("govflow_bench_scale", keep=args.keep))
        if args.keep:
            print(f"database: {url}", file=sys.stderr)
        await migrate(Settings(DATABASE_URL=url), quiet=True)
        await init_db(url)
        conn = await asyncpg.connect(url)
        try:
            definition = await ProcessDefinition.first() or await ProcessDefinition.create(
                process_id="senior_card", name="老年人优待证办理", version=1, content_hash="0" * 64, files="{}")
            gen = Generator(definition.id, datetime.now(timezone.utc))
            have = {"tasks": await conn.fetchval("SELECT count(*) FROM human_tasks"),
                    "certificates": await conn.fetchval("SELECT count(*) FROM certificates")}
            for tasks, certificates in sizes:
                load_seconds = await grow(conn, gen, have, tasks, certificates)
                figures = await measure(args.samples, have, args.department)
                entry = {"tasks": have["tasks"], "certificates": have["certificates"],
                         "load_seconds": load_seconds, **figures, "load": load()}
                report["sizes"].append(entry)
                print(f"{tasks} tasks / {certificates} certificates: inbox p99 {figures['inbox_ms']['p99']} ms, "
                      f"verify p99 {figures['verify_ms']['p99']} ms", file=sys.stderr)
            report["inbox_plan"] = await explain(conn, args.department)
            size = await conn.fetchval("SELECT pg_database_size(current_database())")
            report["database_bytes"] = int(size)
        finally:
            await conn.close()
            await Tortoise.close_connections()
    if args.baseline:
        report["sizes"] = json.loads(Path(args.baseline).read_text(encoding="utf-8"))["sizes"] + report["sizes"]
    base = report["sizes"][0]
    for entry in report["sizes"]:
        entry["vs_smallest"] = {
            f"{kind}_{q}": round(entry[f"{kind}_ms"][q] / base[f"{kind}_ms"][q], 2)
            for kind in ("inbox", "verify") for q in ("p50", "p99") if base[f"{kind}_ms"][q]}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
