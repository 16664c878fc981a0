"""Batch audit sequencing (PostgreSQL): actions insert pending records without the chain lock,
the sequencer chains them gapless in batches; tamper, anchors and the pending bound still hold."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest
from tortoise.transactions import in_transaction

from engine.accountability import audit
from engine.store.audit_models import AuditRecord

pg_only = pytest.mark.postgres  # batch sequencing runs on PostgreSQL only: the SQLite pass deselects these


class _Batch:
    AUDIT_SEQUENCING = "batch"
    AUDIT_UNSEQUENCED_BOUND_S = 30


@pytest.fixture
def batch_mode(db: str):  # noqa: ANN201
    audit.configure(_Batch)
    yield
    audit.configure(None)


async def _write(writers: int, per_writer: int) -> None:
    async def writer(w: int) -> None:
        for i in range(per_writer):
            async with in_transaction() as conn:
                await audit.append(conn, [audit.AuditEntry("task.complete", actor=f"w{w}", case_no=f"C-{w}-{i}",
                                                           detail={"i": i})])

    await asyncio.gather(*(writer(w) for w in range(writers)))


@pg_only
async def test_concurrent_writers_are_chained_gapless_in_a_total_order(batch_mode: None) -> None:
    writers, per_writer = 32, 25
    done = asyncio.Event()

    async def sequencer() -> None:  # two competing sequencers: one leader at a time by the advisory lock
        while not done.is_set():
            await audit.sequence(batch=50)
            await asyncio.sleep(0.005)

    runners = [asyncio.ensure_future(sequencer()) for _ in range(2)]
    await _write(writers, per_writer)
    done.set()
    await asyncio.gather(*runners)
    await audit.sequence()

    rows = await AuditRecord.all().order_by("seq")
    total = writers * per_writer
    assert [int(r.seq) for r in rows] == list(range(1, total + 1))  # every record, no gap, no duplicate
    for w in range(writers):  # each writer's records keep the order it wrote them in
        mine = [r for r in rows if r.actor == f"w{w}"]
        assert [r.case_no for r in mine] == [f"C-{w}-{i}" for i in range(per_writer)]
    result = await audit.verify()
    assert result.ok and result.checked == total and result.pending == 0, result.describe()


@pg_only
async def test_tampering_with_any_sequenced_record_is_detected(batch_mode: None) -> None:
    await _write(8, 10)
    await audit.sequence()
    assert (await audit.verify()).ok
    victim = random.Random(19).randint(1, 80)
    await AuditRecord.filter(seq=victim).update(detail='{"i":999}')
    result = await audit.verify()
    assert not result.ok and result.broken_seq == victim and "被修改" in result.reason


@pg_only
async def test_a_record_set_back_to_pending_leaves_a_gap(batch_mode: None) -> None:
    await _write(4, 5)
    await audit.sequence()
    await AuditRecord.filter(seq=7).update(seq=None)  # "unsequence" a record to hide it
    result = await audit.verify()
    assert not result.ok and result.broken_seq == 7


async def _other_session():  # noqa: ANN202 - a connection of its own (Tortoise nests in_transaction on one)
    import asyncpg

    from tests.conftest import PG_URL

    return await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://", 1))


@pg_only
async def test_the_hot_path_takes_no_chain_lock(batch_mode: None) -> None:
    await audit.sequence()  # the head row exists
    await audit.anchor(b"k" * 32)
    holder = await _other_session()
    try:
        async with holder.transaction():  # another session holds the chain head, as a slow sequencer would
            await holder.execute('SELECT 1 FROM "audit_head" WHERE "id" = 1 FOR UPDATE')
            # inline mode would wait here for the head; batch mode only inserts
            await asyncio.wait_for(audit.record(None, "task.claim", actor="a"), timeout=5)
            assert await AuditRecord.filter(seq__isnull=True).count() == 1
            audit.configure(None)  # the inline mode does wait for it
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(audit.record(None, "task.claim", actor="b"), timeout=1)
    finally:
        await holder.close()


@pg_only
async def test_only_one_sequencer_leads_at_a_time(batch_mode: None) -> None:
    await _write(2, 3)
    leader = await _other_session()
    try:
        async with leader.transaction():
            await leader.execute(f"SELECT pg_advisory_xact_lock({audit.SEQUENCER_LOCK})")
            assert await asyncio.wait_for(audit.sequence(), timeout=5) == 0  # returns at once: another leads
            assert await AuditRecord.filter(seq__isnull=True).count() == 6
    finally:
        await leader.close()
    assert await audit.sequence() == 6


@pg_only
async def test_anchors_chain_pending_records_first_and_verify(batch_mode: None) -> None:
    key = b"k" * 32
    await _write(4, 5)
    row = await audit.anchor(key, actor="test")
    assert row is not None and int(row.seq) == 21 and row.subject.startswith("20:")
    await _write(2, 2)
    await audit.sequence()
    assert await audit.anchor(key, only_if_moved=True) is not None
    result = await audit.verify(key=key)
    assert result.ok and result.anchors == 2 and result.checked == 26, result.describe()
    forged = await audit.verify(key=b"x" * 32)  # a chain rewritten by someone without the key
    assert not forged.ok and forged.broken_seq == 21 and "锚点校验码不符" in forged.reason


@pg_only
async def test_a_record_left_unsequenced_too_long_is_flagged(batch_mode: None) -> None:
    await _write(1, 3)
    await audit.sequence()
    await audit.record(None, "task.claim", actor="late")
    fresh = await audit.verify()
    assert fresh.ok and fresh.pending == 1 and fresh.stale == 0 and "1 条待排序" in fresh.describe()
    pending = await AuditRecord.get(actor="late")
    late = await audit.verify(now=pending.created_at + timedelta(seconds=31))
    assert not late.ok and late.stale == 1 and late.stale_ids == [int(pending.id)]
    assert "超过 30 秒仍未排序" in late.describe()
    await audit.sequence()
    assert (await audit.verify(now=pending.created_at + timedelta(seconds=31))).ok


async def test_sqlite_and_inline_mode_chain_at_once(db: str) -> None:
    audit.configure(None)
    await audit.record(None, "task.claim", actor="a")
    row = await AuditRecord.get(actor="a")
    assert row.seq == 1 and row.hash and (await audit.verify()).pending == 0


@pg_only
async def test_an_append_of_its_own_is_one_committed_statement(batch_mode: None) -> None:
    # append(None, …) outside any transaction: one INSERT, committed at once (seen by another session)
    rows = await audit.append(None, [audit.AuditEntry("task.claim", actor="a", detail={"n": 1}),
                                     audit.AuditEntry("task.claim", actor="b", detail={"n": 2})])
    assert [r.actor for r in rows] == ["a", "b"] and rows[0].id < rows[1].id and rows[0].seq is None
    assert rows[0].detail == '{"n":1}' and rows[0].created_at is not None
    other = await _other_session()
    try:
        seen = await other.fetch('SELECT "id", "actor", "seq" FROM "audit_log" ORDER BY "id"')
    finally:
        await other.close()
    assert [(r["id"], r["actor"], r["seq"]) for r in seen] == [(rows[0].id, "a", None), (rows[1].id, "b", None)]
    await audit.sequence()
    chained = await AuditRecord.all().order_by("seq")
    assert [(r.actor, r.seq) for r in chained] == [("a", 1), ("b", 2)] and (await audit.verify()).ok


@pg_only
async def test_an_append_inside_a_transaction_rolls_back_with_it(batch_mode: None) -> None:
    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with in_transaction() as conn:
            await audit.record(conn, "task.claim", actor="kept-out")
            await audit.record(None, "task.claim", actor="joins-the-transaction")  # the context's connection
            raise Abort
    assert await AuditRecord.all().count() == 0
    async with in_transaction() as conn:
        await audit.append(conn, [audit.AuditEntry("task.complete", actor=f"x{i}") for i in range(3)])
    await audit.sequence()
    assert [(r.actor, r.seq) for r in await AuditRecord.all().order_by("seq")] == [("x0", 1), ("x1", 2), ("x2", 3)]
    assert (await audit.verify()).ok


@pg_only
async def test_an_append_in_a_failed_transaction_raises_tortoises_error(batch_mode: None) -> None:
    from tortoise.exceptions import OperationalError, TransactionManagementError

    with pytest.raises(TransactionManagementError):  # as Tortoise's own queries report it
        async with in_transaction() as conn:
            with pytest.raises(OperationalError):
                await conn.execute_query("SELECT 1 / 0")
            await audit.record(conn, "task.claim", actor="after-the-error")
    assert await AuditRecord.all().count() == 0
