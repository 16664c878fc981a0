"""The audit chain: appends in order, verify names the first broken record after direct
tampering with the database (UPDATE / DELETE / swapped rows in raw SQL), anchors, and
concurrent writers on PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest
from tortoise.transactions import in_transaction

from engine.accountability import audit
from engine.store.audit_models import AuditHead, AuditRecord
from engine.store.db import db_connection

KEY = b"k" * 32
T0 = datetime(2026, 11, 29, 8, 0, 0, 123456, tzinfo=timezone.utc)


async def _chain(n: int) -> list[AuditRecord]:
    rows = []
    for i in range(n):
        rows.append(await audit.record(None, "task.complete", actor=f"officer{i}", department="mzj",
                                       case_no=f"CASE-{i}", subject=f"task-{i}",
                                       detail={"opinion": f"同意 {i}", "n": i}, now=T0))
    return rows


async def _sql(statement: str) -> None:
    await db_connection().execute_query(statement)


async def test_append_numbers_and_chains_records(db: str) -> None:
    rows = await _chain(5)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    stored = await AuditRecord.all().order_by("seq")
    assert [audit.hash_of(r) for r in stored] == [r.hash for r in rows]  # survives the database round trip
    head = await AuditHead.get(id=1)
    assert (head.seq, head.hash) == (5, rows[-1].hash)
    result = await audit.verify(key=KEY)
    assert result.ok and result.checked == 5, result.describe()


async def test_edited_record_is_named(db: str) -> None:
    await _chain(6)
    await _sql("UPDATE audit_log SET actor = 'intruder' WHERE seq = 3")
    result = await audit.verify()
    assert not result.ok and result.broken_seq == 3 and "修改" in result.reason


async def test_edited_detail_is_named(db: str) -> None:
    await _chain(4)
    await _sql("UPDATE audit_log SET detail = '{\"n\":2,\"opinion\":\"不同意\"}' WHERE seq = 2")
    result = await audit.verify()
    assert not result.ok and result.broken_seq == 2


async def test_rehashed_edit_breaks_the_next_link(db: str) -> None:
    rows = await _chain(5)
    victim = await AuditRecord.get(seq=3)
    victim.actor = "intruder"
    forged = audit.hash_of(victim)
    await _sql(f"UPDATE audit_log SET actor = 'intruder', hash = '{forged}' WHERE seq = 3")
    result = await audit.verify()
    assert not result.ok and result.broken_seq == 4 and "前序" in result.reason
    assert rows


async def test_deleted_record_is_named(db: str) -> None:
    await _chain(6)
    await _sql("DELETE FROM audit_log WHERE seq = 4")
    result = await audit.verify()
    assert not result.ok and result.broken_seq == 4 and "缺失" in result.reason


async def test_deleted_tail_is_noticed(db: str) -> None:
    await _chain(6)
    await _sql("DELETE FROM audit_log WHERE seq >= 5")
    result = await audit.verify()
    assert not result.ok and result.broken_seq == 5 and "链尾" in result.reason


async def test_swapped_rows_are_named(db: str) -> None:
    await _chain(6)
    # swap records 2 and 5 by exchanging their sequence numbers (the unique index needs a detour)
    await _sql("UPDATE audit_log SET seq = -2 WHERE seq = 2")
    await _sql("UPDATE audit_log SET seq = 2 WHERE seq = 5")
    await _sql("UPDATE audit_log SET seq = 5 WHERE seq = -2")
    result = await audit.verify()
    assert not result.ok and result.broken_seq == 2


async def test_swapped_contents_are_named(db: str) -> None:
    await _chain(5)
    a, b = await AuditRecord.get(seq=3), await AuditRecord.get(seq=4)
    async with in_transaction() as conn:
        for row, other in ((a, b), (b, a)):
            await conn.execute_query(
                "UPDATE audit_log SET actor = '%s', case_no = '%s', subject = '%s', detail = '%s' WHERE id = %d"
                % (other.actor, other.case_no, other.subject, other.detail.replace("'", "''"), row.id))
    result = await audit.verify()
    assert not result.ok and result.broken_seq == 3


async def test_anchor_summarises_the_head_and_its_mac_is_checked(db: str) -> None:
    rows = await _chain(3)
    anchor = await audit.anchor(KEY, now=T0)
    detail = json.loads(anchor.detail)
    assert (anchor.seq, detail["head_seq"], detail["head_hash"]) == (4, 3, rows[-1].hash)
    await _chain(2)
    assert (await audit.verify(key=KEY)).ok
    wrong = await audit.verify(key=b"x" * 32)
    assert not wrong.ok and wrong.broken_seq == 4 and "锚点" in wrong.reason


async def test_rewritten_chain_is_caught_by_the_anchor_mac(db: str) -> None:
    """An intruder who rewrites every hash after an edit still cannot forge the anchor's MAC."""
    await _chain(3)
    await audit.anchor(KEY, now=T0)
    await _sql("UPDATE audit_log SET actor = 'intruder' WHERE seq = 1")
    prev = audit.GENESIS
    for row in await AuditRecord.all().order_by("seq"):
        row.prev_hash = prev
        if row.kind == audit.ANCHOR:
            detail = json.loads(row.detail)
            detail["head_hash"] = prev
            row.detail = audit.canonical_detail(detail)
        row.hash = prev = audit.hash_of(row)
        await row.save()
    await AuditHead.filter(id=1).update(hash=prev)
    assert (await audit.verify()).ok  # self-consistent without the key …
    result = await audit.verify(key=KEY)  # … but the anchor's MAC gives it away
    assert not result.ok and result.broken_seq == 4


async def test_progress_is_reported_on_long_chains(db: str) -> None:
    await audit.append(None, [audit.AuditEntry("pii.read", detail={"i": i}) for i in range(120)], now=T0)
    seen: list[tuple[int, int]] = []
    result = await audit.verify(batch=50, progress=lambda done, total: seen.append((done, total)))
    assert result.ok and result.checked == 120
    assert seen == [(50, 120), (100, 120), (120, 120)]


async def test_empty_chain_verifies(db: str) -> None:
    assert (await audit.verify()).ok


@pytest.mark.postgres
async def test_concurrent_writers_on_postgres_keep_one_gapless_chain(db: str) -> None:
    """Twenty transactions append at once on separate connections: the head lock orders them."""

    async def writer(i: int) -> None:
        for j in range(5):
            async with in_transaction() as conn:
                await conn.execute_query("SELECT pg_sleep(0.001)")
                await audit.append(conn, [audit.AuditEntry("task.claim", actor=f"w{i}", detail={"j": j}),
                                          audit.AuditEntry("pii.read", actor=f"w{i}", detail={"j": j})])

    await asyncio.gather(*(writer(i) for i in range(20)))
    seqs = [r.seq for r in await AuditRecord.all().order_by("seq")]
    assert seqs == list(range(1, 201))
    result = await audit.verify()
    assert result.ok and result.checked == 200, result.describe()


async def test_a_rolled_back_action_leaves_no_record(db: str) -> None:
    await _chain(2)
    with pytest.raises(RuntimeError):
        async with in_transaction() as conn:
            await audit.record(conn, "task.claim", actor="a")
            raise RuntimeError("the action failed")
    assert await AuditRecord.all().count() == 2
    assert (await audit.verify()).ok
    assert (await audit.record(None, "task.claim")).seq == 3


@pytest.mark.parametrize("sm3", [audit._sm3_tongsuo, audit._sm3_hashlib] if "sm3" in hashlib.algorithms_available
                         else [audit._sm3_tongsuo])
def test_sm3_implementations_agree_on_the_standard_vectors(sm3) -> None:  # noqa: ANN001
    # GB/T 32905-2016, appendix A: the chain's hashes are the same whichever library computes them
    assert sm3(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm3(b"abcd" * 16) == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    assert sm3("审计".encode()) == audit._sm3_tongsuo("审计".encode())


@pytest.mark.parametrize("value", [
    T0, T0.replace(microsecond=0), datetime(2026, 1, 2, 3, 4, 5),  # naive: taken as UTC
    datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=8)))])
def test_format_at_is_the_hashed_timestamp_format(value: datetime) -> None:
    aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    assert audit.format_at(value) == aware.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_OTHER_PROCESS = """
import asyncio, sys
from datetime import datetime, timezone
from engine.accountability import audit
from engine.store.db import close_db, init_db

async def main():
    await init_db(sys.argv[1])
    try:
        for i in range(3):
            await audit.record(None, "task.complete", actor="other-process", case_no=f"OTHER-{i}",
                               now=datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc))
    finally:
        await close_db()

asyncio.run(main())
"""


async def test_appends_from_another_process_between_ours_keep_the_chain(db: str) -> None:
    """Inline appends on SQLite start from the head this process last wrote (a hint, spared a read)
    only while the head row still holds it: a second server process appending in between moves the
    head, and our next append must chain after the other process's records, not over them."""
    import subprocess
    import sys
    from pathlib import Path

    await _chain(2)  # this process now remembers head #2
    root = Path(__file__).resolve().parents[3]
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", _OTHER_PROCESS, db], cwd=root,
                                   capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = await _chain(2)  # after the other process's #3..#5
    assert [r.seq for r in rows] == [6, 7]
    stored = await AuditRecord.all().order_by("seq")
    assert [r.seq for r in stored] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.actor for r in stored][2:5] == ["other-process"] * 3
    assert rows[0].prev_hash == stored[4].hash
    result = await audit.verify(key=KEY)
    assert result.ok and result.checked == 7, result.describe()


async def test_a_rolled_back_append_leaves_no_stale_head_behind(db: str) -> None:
    """The head remembered from an append whose transaction rolled back is not in the database:
    the next append must notice and chain after the real head."""
    await _chain(2)
    with pytest.raises(RuntimeError):
        async with in_transaction() as conn:
            await audit.record(conn, "task.complete", actor="rolled-back", now=T0)
            raise RuntimeError("the step failed after its audit write")
    rows = await _chain(1)
    assert [r.seq for r in rows] == [3] and rows[0].prev_hash == (await AuditRecord.get(seq=2)).hash
    assert not await AuditRecord.filter(actor="rolled-back").exists()
    assert (await audit.verify()).ok
