"""``govflow audit verify`` / ``anchor`` and ``govflow purge`` as an operator runs them (a real
subprocess against this pass's database, SQLite or PostgreSQL), after tampering with the
database directly; and the worker's periodic anchors."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from engine.accountability import audit
from engine.config import Settings
from engine.store.audit_models import AuditRecord
from engine.store.db import db_connection

ROOT = Path(__file__).resolve().parents[3]


async def govflow(db_url: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "GOVFLOW_DATABASE_URL": db_url, "GOVFLOW_PII_KEY": "", **env}
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "mobile_api.cli", *args],
                                   capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=120)


async def test_verify_anchor_and_tampering_from_the_command_line(db: str) -> None:
    await audit.append(None, [audit.AuditEntry("task.complete", actor=f"officer{i}", case_no=f"C-{i}",
                                               detail={"opinion": "同意"}) for i in range(30)])
    ok = await govflow(db, "audit", "verify", "--batch", "7", "--progress")
    assert ok.returncode == 0, ok.stderr
    assert "OK 审计链完整：30 条记录" in ok.stdout and "30/30" in ok.stderr and "[####" in ok.stderr

    anchored = await govflow(db, "audit", "anchor")
    assert anchored.returncode == 0 and anchored.stdout.startswith("anchor #31: 30:"), anchored.stderr
    kept = anchored.stdout.split(": ", 1)[1].split()[0]  # "30:<hash>", to keep outside the database
    assert (await govflow(db, "audit", "verify", "--expect-anchor", kept)).returncode == 0
    quiet = await govflow(db, "audit", "verify")
    assert quiet.returncode == 0 and "1 个锚点" in quiet.stdout and "校验审计链" not in quiet.stderr  # short: no bar

    await db_connection().execute_query("UPDATE audit_log SET case_no = 'C-99' WHERE seq = 12")
    edited = await govflow(db, "audit", "verify")
    assert edited.returncode == 1 and "第 #12 条" in edited.stdout and "被修改" in edited.stdout
    assert "Traceback" not in edited.stderr

    await db_connection().execute_query("UPDATE audit_log SET case_no = 'C-11' WHERE seq = 12")
    await db_connection().execute_query("DELETE FROM audit_log WHERE seq = 5")
    deleted = await govflow(db, "audit", "verify")
    assert deleted.returncode == 1 and "第 #5 条" in deleted.stdout and "缺失" in deleted.stdout
    stale = await govflow(db, "audit", "verify", "--expect-anchor", "30:" + "0" * 64)
    assert stale.returncode == 1


async def test_purge_command(db: str) -> None:
    dry = await govflow(db, "purge", "--dry-run")
    assert dry.returncode == 0 and "将清理：办件个人信息 0 件" in dry.stdout, dry.stderr
    refused = await govflow(db, "purge", GOVFLOW_AUDIT_RETENTION_DAYS="30")
    assert refused.returncode == 2 and "183" in refused.stderr and "Traceback" not in refused.stderr


async def test_worker_appends_anchors_when_the_chain_moved(engine, settings: Settings) -> None:  # noqa: ANN001
    from mobile_api.cli import _anchor_periodically

    await audit.record(None, "task.claim", actor="a")
    stop = asyncio.Event()
    task = asyncio.ensure_future(_anchor_periodically(engine, Settings(**{**vars(settings),
                                                                         "AUDIT_ANCHOR_INTERVAL_S": 3600}), stop))
    for _ in range(200):  # wait until the first pass ran
        if await AuditRecord.filter(kind=audit.ANCHOR).exists():
            break
        await asyncio.sleep(0.02)
    stop.set()
    await task
    assert await AuditRecord.filter(kind=audit.ANCHOR).count() == 1
    assert await audit.anchor(engine.deps.pii_keys.audit_key, only_if_moved=True) is None  # nothing new
    assert (await audit.verify(key=engine.deps.pii_keys.audit_key)).ok
