"""The ``govflow`` command: serve, worker, migrate, seed-demo, validate, run.

Wiring lives here and in the app factory only. Every command turns expected failures into one
clear line and an exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Sequence

from engine.config import Settings
from engine.errors import GovflowError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _print_err(message: str) -> None:
    print(message, file=sys.stderr)


# ---------------------------------------------------------------------------- migrate
MIGRATION_LOCK_KEY = 7_281_950  # pg_advisory_lock key: one `govflow migrate` at a time per database


@asynccontextmanager
async def _migration_lock(url: str) -> AsyncIterator[None]:
    """On PostgreSQL, hold a session advisory lock while migrating: containers that start together
    (two API replicas, a worker) each run ``govflow migrate``; the first applies, the others wait
    and then find nothing to do. SQLite serves one process and needs none."""
    from engine.store.db import is_postgres

    if not is_postgres(url):
        yield
        return
    import asyncpg

    conn = await asyncpg.connect("postgresql://" + url.split("://", 1)[1])
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        yield
    finally:
        await conn.close()  # ends the session, which releases the lock


async def migrate(settings: Settings, *, quiet: bool = False) -> list[str]:
    """Apply the committed aerich migrations to the configured database."""
    from aerich import Command

    from engine.store.db import MIGRATIONS_DIR, tortoise_config

    config = tortoise_config(settings.DATABASE_URL, with_aerich=True)
    async with _migration_lock(settings.DATABASE_URL), \
            Command(tortoise_config=config, app="models", location=str(MIGRATIONS_DIR)) as command:
        await command.init()
        applied = await command.upgrade(run_in_transaction=True)
    if not quiet:
        print("数据库已是最新 (database up to date)" if not applied else
              "\n".join(f"applied {name}" for name in applied))
    return applied


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(migrate(settings))
    return EXIT_OK


# ---------------------------------------------------------------------------- seed-demo
def cmd_seed_demo(args: argparse.Namespace, settings: Settings) -> int:
    if settings.is_production:
        _print_err("seed-demo is disabled when GOVFLOW_ENV=production")
        return EXIT_FAIL
    from engine.platform import seed_demo

    password = settings.DEMO_PASSWORD or None
    report = asyncio.run(seed_demo(settings, password=password))
    print(report)
    return EXIT_OK


# ---------------------------------------------------------------------------- staff-identity
def cmd_staff_identity(args: argparse.Namespace, settings: Settings) -> int:
    """Link a staff account to its officer's own ID number (or unlink it): the officer is then
    recused from every case that names them (409 own_case_recusal)."""
    from engine.accountability import PiiKeys
    from engine.store.db import close_db, init_db
    from engine.workbench import link_identity

    async def link() -> str:
        await init_db(settings.DATABASE_URL)
        try:
            user = await link_identity(args.username, None if args.clear else args.id_number,
                                       pii_key=PiiKeys.from_settings(settings).blind_index_key)
        finally:
            await close_db()
        return f"{user.username}: " + ("已关联本人身份证号（回避本人办件）" if user.id_hash else "已取消身份关联")

    if not args.clear and not args.id_number:
        _print_err("give ID_NUMBER or --clear")
        return EXIT_FAIL
    try:
        print(asyncio.run(link()))
    except GovflowError as exc:
        _print_err(exc.message)
        return EXIT_FAIL
    return EXIT_OK


# ---------------------------------------------------------------------------- validate
def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bpmn import exit_code, load_departments, validate_paths

    departments = _departments(settings, load_departments)
    lines = validate_paths(args.files, departments=departments)
    for line in lines:
        print(line.text)
    return exit_code(lines)


def _departments(settings: Settings, loader: Any) -> dict[str, str] | None:
    path = settings.PROCESSES_DIR / "departments.yaml"
    try:
        return loader(path) if path.exists() else None
    except Exception as exc:  # a broken departments file must not hide the model results
        _print_err(f"warning: cannot read {path}: {exc}")
        return None


# ---------------------------------------------------------------------------- run
def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from engine.bpmn import SandboxScriptEngine, build_bundle, files_for_model, run_in_memory

    try:
        data = _json_arg(args.data, "--data")
        task_data = _json_arg(args.task_data, "--task-data")
    except ValueError as exc:
        _print_err(f"ERROR {exc}")
        return EXIT_USAGE
    try:
        files = files_for_model(Path(args.file))
        bundle = build_bundle(files, args.process)
        context, handler = _run_connectors(settings, Path(args.file))
        engine = SandboxScriptEngine(timeout_ms=settings.SCRIPT_TIMEOUT_MS, service_handler=handler)
        result = run_in_memory(bundle, engine, data=data, task_data=task_data)
    except GovflowError as exc:
        _print_err(f"ERROR {args.file}: {exc.message}")
        return EXIT_FAIL
    except OSError as exc:
        _print_err(f"ERROR {args.file}: {exc.strerror or exc}")
        return EXIT_FAIL
    except UnicodeDecodeError:
        _print_err(f"ERROR {args.file}: not UTF-8 text")
        return EXIT_FAIL
    print(json.dumps(result.data, ensure_ascii=False, indent=2, sort_keys=True, default=str))
    if context.records:  # kept in memory only: nothing is written to a database
        kinds: dict[str, int] = {}
        for kind, _payload in context.records:
            kinds[kind] = kinds.get(kind, 0) + 1
        _print_err("records (in memory, not stored): " + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())))
    if not result.completed:
        waiting = ", ".join(result.waiting) or "nothing it can run"
        _print_err(f"NOT COMPLETED {args.file}: waiting at {waiting}")
        return EXIT_FAIL
    return EXIT_OK


def _run_connectors(settings: Settings, model: Path) -> tuple[Any, Any]:
    """The engine's connectors (shared data, certificates) for an in-memory run, without a
    database: what they record (access logs, issued certificates) stays in the context."""
    from functools import partial

    from engine.bpmn import SandboxScriptEngine
    from engine.certificates import install_certificates
    from engine.kernel import ConnectorContext, EngineDeps
    from engine.platform import install_shared_data

    deps = EngineDeps(script_engine_factory=partial(SandboxScriptEngine, timeout_ms=settings.SCRIPT_TIMEOUT_MS))
    try:
        install_shared_data(deps, settings)
        install_certificates(deps, settings)
    except ValueError as exc:  # e.g. no PII key in production
        raise GovflowError(f"connectors: {exc}") from None
    service = (model if model.is_dir() else model.parent).name
    context = ConnectorContext(case_no=f"RUN-{service.upper()[:20]}", service=service, actor="cli",
                               purpose=f"govflow run {service}")

    def handler(name: str, params: dict[str, Any], _data: dict[str, Any]) -> Any:
        return deps.connectors.call(name, params, context)

    return context, handler


def _json_arg(text: str | None, flag: str) -> dict[str, Any]:
    if not text:
        return {}
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{flag}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{flag}: must be a JSON object")
    return value


# ---------------------------------------------------------------------------- audit / purge
PROGRESS_MIN_RECORDS = 5000  # `audit verify` draws a progress bar on chains at least this long


def _progress_bar(stream: Any, *, always: bool) -> Any:
    def show(done: int, total: int) -> None:
        if total <= 0 or not (always or total >= PROGRESS_MIN_RECORDS):
            return
        width = 30
        filled = min(width, width * done // total)
        stream.write(f"\r校验审计链 [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_audit(args, settings))


async def _audit(args: argparse.Namespace, settings: Settings) -> int:
    from engine.accountability import PiiKeys, audit
    from engine.store.db import close_db, init_db

    key = PiiKeys.from_settings(settings).audit_key
    audit.configure(settings)  # the bound on pending records that verify enforces
    await init_db(settings.DATABASE_URL)
    try:
        if args.audit_command == "sequence":
            print(f"sequenced {await audit.sequence()} pending record(s)")
            return EXIT_OK
        if args.audit_command == "anchor":
            row = await audit.anchor(key, actor="cli")
            assert row is not None
            print(f"anchor #{row.seq}: {row.subject} (keep this line outside the database to detect a rewritten chain)")
            return EXIT_OK
        result = await audit.verify(key=key, batch=max(1, args.batch),
                                    progress=None if args.no_progress else _progress_bar(sys.stderr, always=args.progress))
        print(result.describe())
        if args.expect_anchor:
            seq, _, digest = args.expect_anchor.partition(":")
            row = await audit.AuditRecord.get_or_none(seq=int(seq)) if seq.isdigit() else None
            if row is None or row.hash != digest:
                print(f"BROKEN 外部保存的锚点 {args.expect_anchor[:80]} 与审计链不符")
                return EXIT_FAIL
        return EXIT_OK if result.ok else EXIT_FAIL
    finally:
        await close_db()


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_purge(args, settings))


async def _purge(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime, timezone

    from engine import build_engine
    from engine.accountability import RetentionPolicy, purge
    from engine.store.db import close_db, init_db

    try:
        policy = RetentionPolicy.from_settings(settings)
        now = datetime.fromisoformat(args.now) if args.now else None
    except ValueError as exc:
        _print_err(f"error: {exc}")
        return EXIT_USAGE
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    await init_db(settings.DATABASE_URL)
    try:
        from engine.platform import delete_case_files, store_from_settings

        store = store_from_settings(settings)
        report = await purge(build_engine(settings), policy, now=now, dry_run=args.dry_run, actor="cli",
                             remove_files=lambda case_id: delete_case_files(store, case_id))
    finally:
        await close_db()
    print(report.describe())
    for case_no in report.cases:
        print(f"  {case_no}")
    return EXIT_OK


def cmd_certificates(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_certificates(args, settings))


async def _certificates(args: argparse.Namespace, settings: Settings) -> int:
    """``govflow certificates suspend|revoke|restore ID --reason``: the operator acts for the
    issuing department (audited as ``cli:<login>``); ID is the id or the 证照标识."""
    import getpass

    from engine.certificates import STATE_CACHE, lifecycle
    from engine.platform import create_kv
    from engine.store.db import close_db, init_db

    operator = lifecycle.Manager(f"cli:{getpass.getuser()}"[:64], [], [], system=True)
    await init_db(settings.DATABASE_URL)
    kv = create_kv(settings.REDIS_URL, prefix=settings.REDIS_PREFIX)
    STATE_CACHE.install(kv)  # the change tells every API process's verification cache (Redis)
    try:
        row = await lifecycle.change_state(args.certificate, args.certificates_command, operator, args.reason,
                                           lifecycle.certificate_types(settings.PROCESSES_DIR))
    finally:
        await kv.close()
        await close_db()
    print(f"{row.identifier} {row.name}: {row.state} ({args.certificates_command}, {args.reason.strip()})")
    return EXIT_OK


# ---------------------------------------------------------------------------- serve / worker
def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from functools import partial

    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from mobile_api.app import create_app

    overrides = {k: v for k, v in {"HOST": args.host, "PORT": args.port, "WORKERS": args.workers}.items()
                 if v is not None}
    settings = Settings.from_env(**overrides)
    problem = multi_process_problem(settings)
    problems = [problem] if problem else secret_problems(settings)
    if problems:
        for problem in problems:
            _print_err(f"configuration error: {problem}")
        return EXIT_USAGE
    loader = AppLoader(factory=partial(create_app, settings, name="govflow"))
    app = loader.load()
    app.prepare(host=settings.HOST, port=settings.PORT, workers=max(1, settings.WORKERS),
                single_process=settings.WORKERS <= 1, access_log=False, motd=False)
    print(f"govflow serving on http://{settings.HOST}:{settings.PORT} "
          f"({settings.WORKERS} worker(s), database {_redact(settings.DATABASE_URL)})", flush=True)
    if settings.WORKERS <= 1:
        Sanic.serve_single(primary=app)
    else:
        Sanic.serve(primary=app, app_loader=loader)
    return EXIT_OK


def multi_process_problem(settings: Settings) -> str | None:
    """Why ``settings.WORKERS`` API processes cannot share their state, or None.

    Each process has its own memory: rate limits, idempotency keys, token revocation and live
    status (SSE) are shared only through Redis, and only PostgreSQL takes concurrent writers
    and locks jobs (``FOR UPDATE SKIP LOCKED``)."""
    if settings.WORKERS <= 1:
        return None
    if not settings.REDIS_URL:
        return (f"--workers {settings.WORKERS} needs GOVFLOW_REDIS_URL: without Redis, rate limits, "
                "idempotency keys, token revocation and live status stay inside each process")
    from engine.store.db import is_postgres

    if not is_postgres(settings.DATABASE_URL):
        return (f"--workers {settings.WORKERS} needs PostgreSQL (GOVFLOW_DATABASE_URL=postgres://...): "
                "SQLite serves one process")
    return None


def secret_problems(settings: Settings) -> list[str]:
    """Why the keys every request needs cannot be had, checked before anything listens: in
    production there is no development fallback, and the public development JWT secret, PII key
    and certificate signing key are refused even when copied into the configuration."""
    from engine.accountability import PiiKeys
    from engine.certificates import keyring_from_settings
    from mobile_api.auth import jwt_secret_from_settings

    problems = []
    for check in (jwt_secret_from_settings, PiiKeys.from_settings, keyring_from_settings):
        try:
            check(settings)
        except GovflowError as exc:
            problems.append(exc.message)
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    problems = secret_problems(settings)
    if problems:
        for problem in problems:
            _print_err(f"configuration error: {problem}")
        return EXIT_USAGE
    asyncio.run(_worker(settings))
    return EXIT_OK


async def _worker(settings: Settings) -> None:
    from engine import build_engine
    from engine.kernel import JobRunner
    from engine.platform import create_kv, kv_publisher
    from engine.store.db import close_db, init_db

    await init_db(settings.DATABASE_URL)
    kv = create_kv(settings.REDIS_URL, prefix=settings.REDIS_PREFIX)
    engine = build_engine(settings, deps_overrides={"publish": kv_publisher(kv)})
    from engine.certificates import STATE_CACHE

    STATE_CACHE.install(kv)
    runner = JobRunner(engine, poll_interval=settings.JOB_POLL_MS / 1000)
    from engine.platform import deliverer_from_settings

    deliverer = deliverer_from_settings(settings, clock=engine.deps.clock, pii_keys=engine.deps.pii_keys)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"govflow worker: polling every {settings.JOB_POLL_MS} ms on {_redact(settings.DATABASE_URL)}",
          flush=True)
    for name, why in (("wechat", "GOVFLOW_WECHAT_APPID/_SECRET not set"),
                      ("sms", "GOVFLOW_SMS_SECRET_ID/_SECRET_KEY/_SDK_APP_ID not set")):
        state = "on" if name in deliverer.channels else f"off ({why} or not in GOVFLOW_NOTIFY_CHANNELS)"
        print(f"govflow worker: notifications via {name}: {state}; the message centre gets every message",
              flush=True)
    anchors = asyncio.ensure_future(_anchor_periodically(engine, settings, stop))
    sequencer = asyncio.ensure_future(_sequence_periodically(settings, stop))
    sweeps = asyncio.ensure_future(_sweep_uploads_periodically(engine, settings, stop))
    deliveries = asyncio.ensure_future(deliverer.run_forever(stop, poll_s=settings.JOB_POLL_MS / 1000))
    try:
        await runner.run_forever(stop)
    finally:
        stop.set()
        await anchors
        await sequencer
        await sweeps
        await deliveries
        await deliverer.aclose()
        await kv.close()
        await close_db()


async def _sequence_periodically(settings: Settings, stop: asyncio.Event) -> None:
    """Batch audit mode: chain the pending audit records every ``AUDIT_SEQUENCE_INTERVAL_MS``. Every
    worker runs this; a PostgreSQL advisory lock lets one lead at a time (the others' passes are no-ops)."""
    import logging

    from engine.accountability import audit

    if not audit.SEQUENCING.batch or not settings.DATABASE_URL.startswith("postgres"):
        return  # inline: every append is chained in its own transaction
    interval = max(0.01, settings.AUDIT_SEQUENCE_INTERVAL_MS / 1000)
    while not stop.is_set():
        try:
            await audit.sequence()
        except Exception:  # noqa: BLE001 - the next pass tries again; verify flags records left too long
            logging.getLogger("govflow.audit").warning("audit sequencing failed", exc_info=True)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass


async def _anchor_periodically(engine: Any, settings: Settings, stop: asyncio.Event) -> None:
    """Append an audit anchor every ``AUDIT_ANCHOR_INTERVAL_S`` when the chain moved (0: never)."""
    import logging

    from engine.accountability import audit

    interval = settings.AUDIT_ANCHOR_INTERVAL_S
    if interval <= 0 or engine.deps.pii_keys is None:
        return
    while not stop.is_set():
        try:
            await audit.anchor(engine.deps.pii_keys.audit_key, now=engine.deps.clock(), only_if_moved=True)
        except Exception:  # noqa: BLE001 - the next interval tries again; jobs keep running
            logging.getLogger("govflow.audit").warning("audit anchor failed", exc_info=True)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass


UPLOAD_SWEEP_INTERVAL_S = 600


async def _sweep_uploads_periodically(engine: Any, settings: Settings, stop: asyncio.Event) -> None:
    """Delete expired unattached uploads (engine.platform.files.sweep_expired) every 10 minutes."""
    import logging

    from engine.platform import store_from_settings, sweep_expired

    while not stop.is_set():
        try:
            removed = await sweep_expired(store_from_settings(settings), engine.deps.clock())
            if removed:
                logging.getLogger("govflow.files").info("expired uploads deleted: %d", removed)
        except Exception:  # noqa: BLE001 - the next interval tries again; jobs keep running
            logging.getLogger("govflow.files").warning("upload sweep failed", exc_info=True)
        try:
            await asyncio.wait_for(stop.wait(), timeout=UPLOAD_SWEEP_INTERVAL_S)
        except asyncio.TimeoutError:
            pass


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


# ---------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="govflow", description="govflow government service platform")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="serve the HTTP API")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int)
    p.set_defaults(func=cmd_serve)

    sub.add_parser("worker", help="run durable jobs (timers, SLA) and deliver notifications").set_defaults(func=cmd_worker)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("seed-demo", help="load demo departments, staff and data").set_defaults(func=cmd_seed_demo)

    p = sub.add_parser("staff-identity", help="link a staff account to its officer's ID number (回避本人办件)")
    p.add_argument("username")
    p.add_argument("id_number", nargs="?")
    p.add_argument("--clear", action="store_true", help="remove the link")
    p.set_defaults(func=cmd_staff_identity)

    p = sub.add_parser("validate", help="lint BPMN/DMN files or folders")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("audit", help="tamper-evident audit log: verify the chain, append an anchor")
    audit_sub = p.add_subparsers(dest="audit_command", required=True)
    v = audit_sub.add_parser("verify", help="check every record in order; exit 1 and name the first broken one")
    v.add_argument("--batch", type=int, default=1000, help="records read per query")
    v.add_argument("--progress", action="store_true", help="always draw the progress bar")
    v.add_argument("--no-progress", action="store_true", help="never draw the progress bar")
    v.add_argument("--expect-anchor", metavar="SEQ:HASH", help="an anchor line kept outside the database")
    audit_sub.add_parser("anchor", help="append an anchor of the chain head and print it")
    audit_sub.add_parser("sequence", help="chain the pending records now (batch mode; the worker does it)")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("certificates", help="suspend, revoke or restore an e-certificate")
    cert_sub = p.add_subparsers(dest="certificates_command", required=True)
    for action, text in (("suspend", "暂停 (01 → 02)"), ("revoke", "吊销 (→ 03, final)"), ("restore", "恢复 (02 → 01)")):
        c = cert_sub.add_parser(action, help=text)
        c.add_argument("certificate", help="certificate id or identifier (证照标识)")
        c.add_argument("--reason", required=True, help="why (kept in the audit log and the certificate history)")
    p.set_defaults(func=cmd_certificates)

    p = sub.add_parser("purge", help="apply retention: anonymise expired case data, drop old logs")
    p.add_argument("--dry-run", action="store_true", help="only report what would be purged")
    p.add_argument("--now", help="ISO time to purge as of (default: now)")
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser("run", help="run a model in memory and print its final data")
    p.add_argument("file")
    p.add_argument("--process", help="process id (default: the main process)")
    p.add_argument("--data", help="start data as JSON (or @file.json)")
    p.add_argument("--task-data", help="user task data as JSON: one object, or keyed by task id")
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        _print_err(f"configuration error: {exc}")
        return EXIT_USAGE
    try:
        return int(args.func(args, settings))
    except KeyboardInterrupt:
        return 130
    except GovflowError as exc:
        _print_err(f"error: {exc.message}")
        return EXIT_FAIL
    except OSError as exc:
        _print_err(f"error: {exc}")
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
