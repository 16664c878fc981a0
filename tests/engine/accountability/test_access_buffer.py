"""Verification access-log rows written in batches: by count, by time, all at stop, and kept
(not lost) when a flush fails."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from engine.accountability import AccessLogBuffer, audit
from engine.store.audit_models import AuditRecord
from engine.store.shared_models import DataAccessLog


def _scan(buffer: AccessLogBuffer, n: int, at: datetime | None = None) -> None:
    buffer.add(actor=f"ip:{n}", subject_hash="h" * 64, subject_masked="310***********0273", dataset="certificate",
               fields_read=["name", "state"], purpose="扫码核验", at=at)


async def test_a_flush_writes_rows_and_their_audit_records_in_one_go(db: str) -> None:
    buffer = AccessLogBuffer(max_rows=100, max_delay_s=60)
    scanned = datetime(2026, 12, 1, 8, 30, tzinfo=timezone.utc)
    for n in range(3):
        _scan(buffer, n, scanned)
    assert await DataAccessLog.all().count() == 0 and len(buffer) == 3  # nothing written per scan
    assert await buffer.flush() == 3 and len(buffer) == 0
    rows = await DataAccessLog.all().order_by("id")
    assert [r.actor for r in rows] == ["ip:0", "ip:1", "ip:2"] and all(r.created_at == scanned for r in rows)
    await audit.sequence()
    assert await AuditRecord.filter(kind="pii.read").count() == 3 and (await audit.verify()).ok
    assert await buffer.flush() == 0


async def test_the_flush_task_writes_by_count_and_by_time_and_on_stop(db: str) -> None:
    buffer = AccessLogBuffer(max_rows=5, max_delay_s=0.3)
    stop = asyncio.Event()
    task = asyncio.ensure_future(buffer.run(stop))
    try:
        for n in range(5):  # max_rows reached: written at once, long before the delay
            _scan(buffer, n)
        for _ in range(20):
            if await DataAccessLog.all().count() == 5:
                break
            await asyncio.sleep(0.01)
        assert await DataAccessLog.all().count() == 5
        _scan(buffer, 5)  # one row: written when the delay is up
        await asyncio.sleep(0.7)
        assert await DataAccessLog.all().count() == 6
        _scan(buffer, 6)
    finally:
        stop.set()
        await task  # the last row is written on stop
    assert await DataAccessLog.all().count() == 7 and buffer.flushed == 7


async def test_a_failed_flush_keeps_the_rows_for_the_next_one(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = AccessLogBuffer(max_rows=100, max_delay_s=60, max_backlog=3)
    for n in range(2):
        _scan(buffer, n)

    async def broken(*args: object, **kwargs: object) -> None:
        raise ConnectionError("database down")

    monkeypatch.setattr(DataAccessLog, "bulk_create", broken)
    with pytest.raises(ConnectionError):
        await buffer.flush()
    _scan(buffer, 2)
    _scan(buffer, 3)  # beyond the backlog bound: the oldest row goes
    with pytest.raises(ConnectionError):
        await buffer.flush()
    monkeypatch.undo()
    assert await buffer.flush() == 3
    assert [r.actor for r in await DataAccessLog.all().order_by("id")] == ["ip:1", "ip:2", "ip:3"]
