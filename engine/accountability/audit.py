"""The tamper-evident audit log (审计日志): an SM3 hash chain over every accountable action.

``append`` writes records in the caller's transaction. Two modes (``configure``):

* **batch** (PostgreSQL in production, ``GOVFLOW_AUDIT_SEQUENCING=batch``): the action inserts
  *pending* records (no ``seq``, no hash, its own row id and ``created_at``) and takes **no** lock,
  so audited actions no longer queue on one row. The **sequencer** (``sequence``; ``govflow worker``
  runs it every ``AUDIT_SEQUENCE_INTERVAL_MS``) gives committed pending records, in row-id order,
  gapless sequence numbers and their SM3 hashes, in batches, in one transaction under the head lock;
  one leader at a time by a PostgreSQL advisory lock (a second worker's pass returns at once).
  ``verify`` flags records still pending after ``AUDIT_UNSEQUENCED_BOUND_S`` (a sequencer down).
* **inline** (SQLite, whose writers are serialised anyway; tests and tools): ``append`` locks the
  chain head (``FOR UPDATE`` on PostgreSQL) and chains the records at once. Call it as the **last**
  write of a transaction, so the head lock is held only until the commit.

``verify`` walks the chain in order and names the first broken record (edited, deleted,
reordered, or a truncated tail); ``anchor`` appends a record that summarises the head, with a
keyed MAC (``PiiKeys.audit_key``) that nobody with only database access can forge — print it
and keep it elsewhere to catch a chain rewritten from scratch. ``log_data_access`` is the one
way to record a personal-data read: the ``DataAccessLog`` row the citizen sees and its audit
record, together.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from tortoise import connections
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from engine.accountability.privacy import mask_text
from engine.store.audit_models import AuditHead, AuditRecord
from engine.store.db import insert_rows, insert_sql
from engine.store.shared_models import DataAccessLog

GENESIS = "0" * 64
HEAD_ID = 1
SEQUENCER_LOCK = 0x60F10A0D17  # pg advisory lock key: one sequencer leader at a time
SEQUENCE_BATCH = 5000


@dataclass
class Sequencing:
    """How this process chains records (``configure``); inline until configured otherwise."""

    batch: bool = False  # PostgreSQL only: pending records, chained by ``sequence``
    bound_s: int = 60  # ``verify`` flags records pending longer than this


SEQUENCING = Sequencing()


def configure(settings: Any) -> None:
    """Take the mode from the settings (``AUDIT_SEQUENCING``, ``AUDIT_UNSEQUENCED_BOUND_S``)."""
    SEQUENCING.batch = str(getattr(settings, "AUDIT_SEQUENCING", "inline")).lower() == "batch"
    SEQUENCING.bound_s = int(getattr(settings, "AUDIT_UNSEQUENCED_BOUND_S", 60))
ANCHOR = "audit.anchor"

# kind -> Chinese label (CLI output, review screens)
KINDS = {
    "case.start": "立案", "case.complete": "办结", "decision": "自动决定（秒批）",
    "task.claim": "认领", "task.unclaim": "退回待办", "task.complete": "办理", "task.comment": "批注",
    "task.return": "退回", "task.transfer": "转办", "task.add_signer": "加签", "task.cosign": "加签意见",
    "task.withdraw": "撤回已办", "deploy": "部署流程", "certificate.issue": "签发证照",
    "certificate.state": "证照状态变更", "certificate.use": "使用证照", "pii.read": "读取个人信息",
    "intake": "窗口收件", "message.receive": "接收消息", "message.send": "发送消息", "retention.purge": "到期数据清理", ANCHOR: "审计锚点",
}


def _sm3_tongsuo(data: bytes) -> str:
    from tongsuopy.crypto import hashes

    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return bytes(digest.finalize()).hex()


def _sm3_hashlib(data: bytes) -> str:
    return hashlib.new("sm3", data).hexdigest()


# OpenSSL's SM3 through hashlib when this Python's OpenSSL has it (about 8× cheaper per record than
# Tongsuo's object per digest: it is most of what the sequencer and ``verify`` spend per record);
# the same digest either way (tests/engine/accountability/test_audit.py checks both on GB/T 32905's vector)
_sm3 = _sm3_hashlib if "sm3" in hashlib.algorithms_available else _sm3_tongsuo


def canonical_detail(detail: dict[str, Any] | None) -> str:
    """Sorted keys, no spaces, UTF-8: stored as text so the hashed bytes are the stored bytes."""
    return json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def format_at(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    v = value.astimezone(timezone.utc)  # strftime("%Y-%m-%dT%H:%M:%S.%fZ"), at a third of its cost
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}Z"


def record_hash(*, seq: int, at: datetime, kind: str, actor: str | None, department: str | None,
                case_no: str | None, subject: str | None, detail: str, prev_hash: str) -> str:
    """SM3 over the canonical JSON of the record's fields and the previous record's hash."""
    body = [seq, format_at(at), kind, actor, department, case_no, subject, detail, prev_hash]
    return _sm3(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def hash_of(row: AuditRecord) -> str:
    return record_hash(seq=int(row.seq), at=row.at, kind=row.kind, actor=row.actor, department=row.department,
                       case_no=row.case_no, subject=row.subject, detail=row.detail, prev_hash=row.prev_hash)


@dataclass
class AuditEntry:
    """An action to record; ``append`` gives it its place in the chain."""

    kind: str
    actor: str | None = None
    department: str | None = None
    case_no: str | None = None
    subject: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _clip(value: Any, size: int) -> str | None:
    return None if value in (None, "") else str(value)[:size]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


async def _is_postgres(conn: Any) -> bool:
    return getattr(conn.capabilities, "dialect", "") == "postgres"


async def _lock_head(conn: Any) -> AuditHead:
    """The chain head, locked until the caller's transaction ends (created on first use)."""
    query = AuditHead.filter(id=HEAD_ID).using_db(conn)
    if await _is_postgres(conn):
        query = query.select_for_update()
    head = await query.first()
    if head is None:
        await conn.execute_query(
            'INSERT INTO "audit_head" ("id", "seq", "hash", "pruned_seq", "pruned_hash") '
            f"VALUES ({HEAD_ID}, 0, '{GENESIS}', 0, '{GENESIS}') ON CONFLICT (\"id\") DO NOTHING")
        head = await query.first()
    assert head is not None
    return head


def _chained(seq: int, prev: str, entries: Iterable[AuditEntry], now: datetime) -> list[AuditRecord]:
    """``entries`` as records chained after ``(seq, prev)``: sequence numbers and SM3 hashes."""
    rows = []
    for entry in entries:
        seq += 1
        detail = canonical_detail(entry.detail)
        row = AuditRecord(seq=seq, at=now, kind=entry.kind[:48], actor=_clip(entry.actor, 64),
                          department=_clip(entry.department, 32), case_no=_clip(entry.case_no, 40),
                          subject=_clip(entry.subject, 128), detail=detail, prev_hash=prev)
        row.hash = prev = hash_of(row)
        rows.append(row)
    return rows


_CHAINED_COLUMNS = ("seq", "at", "kind", "actor", "department", "case_no", "subject", "detail", "prev_hash", "hash")


async def _insert_chained(conn: Any, rows: list[AuditRecord]) -> None:
    """The chained records in one plain multi-row INSERT (no ORM instance round per row)."""
    await insert_rows(conn, AuditRecord, _CHAINED_COLUMNS, [
        (r.seq, r.at, r.kind, r.actor, r.department, r.case_no, r.subject, r.detail, r.prev_hash, r.hash)
        for r in rows])


async def _append_locked(conn: Any, head: AuditHead, entries: Iterable[AuditEntry],
                         now: datetime) -> list[AuditRecord]:
    rows = _chained(int(head.seq), head.hash, entries, now)
    if rows:
        await _insert_chained(conn, rows)
        await AuditHead.filter(id=HEAD_ID).using_db(conn).update(seq=rows[-1].seq, hash=rows[-1].hash)
        _HEAD_HINT[:] = [(int(rows[-1].seq), rows[-1].hash)]
    return rows


# The head this process last chained to (SQLite, inline): a hint that spares reading the head row
# back on every append. Never trusted: ``_append_hinted`` moves the head only if the row still holds
# exactly this (seq, hash) — checked by the UPDATE itself, under the write lock SQLite's transaction
# holds from its first write — else it reads the head as before. Another process's append, a rolled
# back transaction, a purge or another database all fail that check.
_HEAD_HINT: list[tuple[int, str]] = []


async def _append_hinted(conn: Any, entries: list[AuditEntry], now: datetime) -> list[AuditRecord] | None:
    """Inline append on SQLite after the hinted head; ``None`` when the hint is not the head."""
    if not _HEAD_HINT:
        return None
    seq, prev = _HEAD_HINT[0]
    rows = _chained(seq, prev, entries, now)
    moved, _ = await conn.execute_query(
        'UPDATE "audit_head" SET "seq" = ?, "hash" = ? WHERE "id" = ? AND "seq" = ? AND "hash" = ?',
        [int(rows[-1].seq), rows[-1].hash, HEAD_ID, seq, prev])
    if moved != 1:
        return None
    await _insert_chained(conn, rows)
    _HEAD_HINT[:] = [(int(rows[-1].seq), rows[-1].hash)]
    return rows


async def _append_inline(conn: Any, entries: list[AuditEntry], now: datetime) -> list[AuditRecord]:
    if not await _is_postgres(conn):
        rows = await _append_hinted(conn, entries, now)
        if rows is not None:
            return rows
    return await _append_locked(conn, await _lock_head(conn), entries, now)


def _batch_mode(conn: Any) -> bool:
    if not SEQUENCING.batch:
        return False
    client = conn if conn is not None else connections.get("default")
    return getattr(client.capabilities, "dialect", "") == "postgres"


_PENDING_COLUMNS = ("at", "kind", "actor", "department", "case_no", "subject", "detail", "created_at")


async def _fetch(client: Any, sql: str, params: list[Any]) -> list[Any]:
    """``sql`` on the client's asyncpg connection (a transaction's, under its lock, or a pooled
    one), rows as asyncpg records; errors become Tortoise's exceptions as in its own queries."""
    async def run(on: Any) -> list[Any]:
        async with on.acquire_connection() as raw:
            return await raw.fetch(sql, *params)

    return await client._translate_exceptions(run)


async def _insert_pending(conn: Any, entries: list[AuditEntry], now: datetime) -> list[AuditRecord]:
    """The hot path of batch mode (PostgreSQL): one INSERT, no lock; ``sequence`` chains the records
    later. Runs on the caller's transaction, or (``conn`` None) as one statement of its own, atomic
    without a BEGIN and COMMIT round trip. No model is built before the insert and the parameters
    go straight to asyncpg: what an audited action pays here is about the one round trip
    (docs/benchmarks.md, "Audit chain")."""
    inserted = _utcnow()
    params: list[Any] = []
    for e in entries:
        params += [now, e.kind[:48], _clip(e.actor, 64), _clip(e.department, 32), _clip(e.case_no, 40),
                   _clip(e.subject, 128), canonical_detail(e.detail), inserted]
    # the same text for the same count (engine.store.db.insert_sql): asyncpg reuses its prepared statement
    ids = await _fetch(conn if conn is not None else connections.get("default"),
                       insert_sql(AuditRecord, _PENDING_COLUMNS, len(entries), postgres=True, returning="id"), params)
    width = len(_PENDING_COLUMNS)
    return [AuditRecord._init_from_db(id=got["id"], seq=None, prev_hash=None, hash=None,
                                      **dict(zip(_PENDING_COLUMNS, params[i * width:(i + 1) * width], strict=True)))
            for i, got in enumerate(ids)]


async def append(conn: Any, entries: Iterable[AuditEntry], *, now: datetime | None = None) -> list[AuditRecord]:
    """Record ``entries`` in the caller's transaction (``conn``), or in one of their own: pending
    (batch mode, no lock) or chained at once under the head lock (inline mode)."""
    entries = [e for e in entries if e is not None]
    if not entries:
        return []
    when = (now or _utcnow()).astimezone(timezone.utc)
    if _batch_mode(conn):
        return await _insert_pending(conn, entries, when)
    if conn is None:
        async with in_transaction() as own:
            return await _append_inline(own, entries, when)
    return await _append_inline(conn, entries, when)


# ------------------------------------------------------------------ the sequencer
_PENDING_SELECT = ('SELECT "id", "at", "kind", "actor", "department", "case_no", "subject", "detail" '
                   'FROM "audit_log" WHERE "seq" IS NULL ORDER BY "id" LIMIT $1')


async def _sequence_locked(conn: Any, head: AuditHead, limit: int) -> int:
    """Chain up to ``limit`` committed pending records, oldest row id first, after ``head`` (locked
    by the caller); moves ``head`` along. The number chained. PostgreSQL reads the pending rows as
    plain tuples (no model per record) and writes their places with one ``UPDATE … FROM unnest``."""
    postgres = await _is_postgres(conn)
    if postgres:
        rows: list[Any] = await _fetch(conn, _PENDING_SELECT, [limit])
    else:
        rows = await AuditRecord.filter(seq__isnull=True).using_db(conn).order_by("id").limit(limit).values(
            "id", "at", "kind", "actor", "department", "case_no", "subject", "detail")
    if not rows:
        return 0
    seq, prev = int(head.seq), head.hash
    ids, seqs, prevs, hashes = [], [], [], []
    for row in rows:
        seq += 1
        ids.append(int(row["id"]))
        seqs.append(seq)
        prevs.append(prev)
        prev = record_hash(seq=seq, at=row["at"], kind=row["kind"], actor=row["actor"], department=row["department"],
                           case_no=row["case_no"], subject=row["subject"], detail=row["detail"], prev_hash=prev)
        hashes.append(prev)
    if postgres:
        await conn.execute_query(
            'UPDATE "audit_log" AS a SET "seq" = v.seq, "prev_hash" = v.prev, "hash" = v.hash '
            "FROM unnest($1::bigint[], $2::bigint[], $3::varchar[], $4::varchar[]) AS v(id, seq, prev, hash) "
            'WHERE a."id" = v.id AND a."seq" IS NULL', [ids, seqs, prevs, hashes])
    else:
        await conn.execute_many('UPDATE "audit_log" SET "seq" = ?, "prev_hash" = ?, "hash" = ? WHERE "id" = ?',
                                [list(v) for v in zip(seqs, prevs, hashes, ids, strict=True)])
    await AuditHead.filter(id=HEAD_ID).using_db(conn).update(seq=seq, hash=prev)
    head.seq, head.hash = seq, prev
    return len(rows)


async def _take_leadership(conn: Any) -> bool:
    """PostgreSQL: this transaction is the sequencer leader (advisory lock until its end), or another is."""
    if not await _is_postgres(conn):
        return True
    _, rows = await conn.execute_query(f"SELECT pg_try_advisory_xact_lock({SEQUENCER_LOCK}) AS ok")
    return bool(rows[0]["ok"])


async def sequence(*, batch: int = SEQUENCE_BATCH, drain: bool = True) -> int:
    """One sequencer pass: chain the committed pending records, ``batch`` per transaction (all of
    them with ``drain``). 0 at once when another process is the leader right now."""
    total = 0
    while True:
        async with in_transaction() as conn:
            if not await _take_leadership(conn):
                return total
            done = await _sequence_locked(conn, await _lock_head(conn), batch)
        total += done
        if not drain or done < batch:
            return total


async def record(conn: Any, kind: str, *, now: datetime | None = None, **fields: Any) -> AuditRecord:
    """One record (see ``AuditEntry`` for the fields)."""
    return (await append(conn, [AuditEntry(kind, **fields)], now=now))[0]


# ------------------------------------------------------------------ anchors
def anchor_mac(key: bytes, head_seq: int, head_hash: str) -> str:
    return hmac.new(key, f"govflow-audit-anchor:{head_seq}:{head_hash}".encode(), hashlib.sha256).hexdigest()


async def anchor(key: bytes, *, now: datetime | None = None, actor: str = "system",
                 only_if_moved: bool = False) -> AuditRecord | None:
    """Append an anchor summarising the current head (sequence number, hash) with a keyed MAC.
    ``only_if_moved`` (the periodic worker): nothing when the chain is empty or ends in an anchor."""
    when = (now or _utcnow()).astimezone(timezone.utc)
    async with in_transaction() as conn:
        head = await _lock_head(conn)
        while await _sequence_locked(conn, head, SEQUENCE_BATCH) == SEQUENCE_BATCH:
            pass  # the anchor summarises every committed record, pending ones chained first
        if only_if_moved:
            last = await AuditRecord.filter(seq=head.seq).using_db(conn).first()
            if last is None or last.kind == ANCHOR:
                return None
        entry = AuditEntry(ANCHOR, actor=actor, subject=f"{head.seq}:{head.hash}", detail={
            "head_seq": int(head.seq), "head_hash": head.hash, "mac": anchor_mac(key, int(head.seq), head.hash)})
        return (await _append_locked(conn, head, [entry], when))[0]


# ------------------------------------------------------------------ verify
@dataclass
class VerifyResult:
    ok: bool
    checked: int = 0
    head_seq: int = 0
    anchors: int = 0
    broken_seq: int | None = None  # the first broken record's place in the chain
    broken_id: int | None = None  # its row id, when the row exists
    reason: str = ""
    pending: int = 0  # records not chained yet (batch mode)
    stale: int = 0  # of which pending longer than the bound: the sequencer is not keeping up or is down
    stale_ids: list[int] = field(default_factory=list)

    def describe(self) -> str:
        if self.ok:
            waiting = f"，{self.pending} 条待排序" if self.pending else ""
            return f"OK 审计链完整：{self.checked} 条记录，{self.anchors} 个锚点，链头 #{self.head_seq}{waiting}"
        if self.stale:
            return f"BROKEN {self.reason}"
        where = f"第 #{self.broken_seq} 条" + (f"（行 id {self.broken_id}）" if self.broken_id is not None else "")
        return f"BROKEN 审计链在{where}处断开：{self.reason}"


async def verify(*, key: bytes | None = None, batch: int = 1000,
                 progress: Callable[[int, int], None] | None = None, bound_s: int | None = None,
                 now: datetime | None = None) -> VerifyResult:
    """Walk the chain in sequence order; the first record that does not follow is reported.

    Checks: sequence numbers without gaps (a deleted record), each ``prev_hash`` equal to the
    previous record's hash (reordering, a deleted or rewritten predecessor), each hash equal to
    the recomputed one (an edited record), anchors (their head hash and, with ``key``, their
    MAC), the head row against the last record (a truncated tail), and that no record waits to be
    chained longer than ``bound_s`` (default ``AUDIT_UNSEQUENCED_BOUND_S``). Read-only."""
    head = await AuditHead.get_or_none(id=HEAD_ID)
    head_seq = int(head.seq) if head else 0
    expected_seq = (int(head.pruned_seq) if head else 0) + 1
    prev_hash = head.pruned_hash if head else GENESIS
    total = await AuditRecord.filter(seq__isnull=False).count()
    result = VerifyResult(ok=True, head_seq=head_seq)

    def broken(seq: int, row: AuditRecord | None, reason: str) -> VerifyResult:
        result.ok, result.broken_seq, result.reason = False, seq, reason
        result.broken_id = int(row.id) if row is not None else None
        return result

    recent: dict[int, str] = {}
    cut_recorded = False  # a retention cut must be named by a purge record in the chain
    pruned = (int(head.pruned_seq), head.pruned_hash) if head else (0, GENESIS)
    last_seq = expected_seq - 1
    while True:
        rows = await AuditRecord.filter(seq__gt=last_seq).order_by("seq").limit(batch)
        if not rows:
            break
        for row in rows:
            seq = int(row.seq)
            if seq != expected_seq:
                return broken(expected_seq, row if seq < expected_seq else None,
                              f"记录 #{expected_seq} 缺失（被删除），下一条为 #{seq}（行 id {row.id}）")
            if row.prev_hash != prev_hash:
                return broken(seq, row, "前序哈希不符：前一条记录被删除、改写或记录顺序被调换")
            if hash_of(row) != row.hash:
                return broken(seq, row, "内容与哈希不符：该记录被修改")
            if row.kind == "retention.purge" and pruned[0] and not cut_recorded:
                try:
                    claim = json.loads(row.detail)
                    cut_recorded = (claim.get("pruned_seq"), claim.get("pruned_hash")) == pruned
                except ValueError:
                    pass
            if row.kind == ANCHOR:
                problem = _check_anchor(row, recent, key)
                if problem:
                    return broken(seq, row, problem)
                result.anchors += 1
            recent[seq] = row.hash
            if len(recent) > 2 * batch:
                for old in sorted(recent)[:batch]:
                    del recent[old]
            prev_hash, expected_seq = row.hash, seq + 1
            result.checked += 1
        last_seq = int(rows[-1].seq)
        if progress is not None:
            progress(result.checked, total)
    if pruned[0] and not cut_recorded:
        return broken(pruned[0] + 1, None, f"链首 #{pruned[0]} 之前的记录被删除，但没有保存期限清理记录（retention.purge）")
    last = expected_seq - 1
    if last != head_seq or (head is not None and head_seq and head.hash != prev_hash):
        return broken(last + 1 if last < head_seq else head_seq, None,
                      f"链尾不符：链头记录为 #{head_seq}，而最后一条记录为 #{last}（链尾被删除或改写）")
    return await _check_pending(result, SEQUENCING.bound_s if bound_s is None else bound_s, now or _utcnow())


async def _check_pending(result: VerifyResult, bound_s: int, now: datetime) -> VerifyResult:
    """Records inserted but not chained: fine for a moment, a failure once older than the bound."""
    result.pending = await AuditRecord.filter(seq__isnull=True).count()
    if not result.pending:
        return result
    limit = now - timedelta(seconds=bound_s)
    late = AuditRecord.filter(Q(created_at__lt=limit) | Q(created_at__isnull=True), seq__isnull=True)
    result.stale = await late.count()
    if result.stale:
        result.stale_ids = [int(i) for i in await late.order_by("id").limit(5).values_list("id", flat=True)]
        result.ok = False
        first = f"（最早的行 id {result.stale_ids[0]}）" if result.stale_ids else ""
        result.reason = (f"{result.stale} 条审计记录超过 {bound_s} 秒仍未排序入链{first}："
                         "排序进程（govflow worker）未运行或跟不上")
    return result


def _check_anchor(row: AuditRecord, recent: dict[int, str], key: bytes | None) -> str | None:
    try:
        detail = json.loads(row.detail)
        head_seq, head_hash, mac = int(detail["head_seq"]), str(detail["head_hash"]), str(detail["mac"])
    except (ValueError, KeyError, TypeError):
        return "锚点内容不完整"
    if head_seq in recent and recent[head_seq] != head_hash:
        return f"锚点记录的链头哈希与第 #{head_seq} 条记录不符"
    if key is not None and not hmac.compare_digest(mac, anchor_mac(key, head_seq, head_hash)):
        return "锚点校验码不符：审计链可能被整体重写"
    return None


# ------------------------------------------------------------------ personal-data reads
async def log_data_access(conn: Any, *, subject_hash: str, dataset: str, purpose: str, actor: str | None = None,
                          department: str | None = None, subject_masked: str | None = None,
                          fields_read: list[str] | None = None, case_id: int | None = None,
                          case_no: str | None = None, audit: bool = True,
                          now: datetime | None = None) -> DataAccessLog:
    """One personal-data read: the ``DataAccessLog`` row (the citizen's view) and, with ``audit``,
    its audit record in the same transaction."""
    if conn is None:
        async with in_transaction() as own:
            return await log_data_access(own, subject_hash=subject_hash, dataset=dataset, purpose=purpose,
                                         actor=actor, department=department, subject_masked=subject_masked,
                                         fields_read=fields_read, case_id=case_id, case_no=case_no,
                                         audit=audit, now=now)
    row = await DataAccessLog.create(
        actor=_clip(actor, 64), department=_clip(department, 32), subject_hash=subject_hash,
        subject_masked=_clip(subject_masked, 32), dataset=str(dataset)[:64], fields_read=list(fields_read or []),
        case_id=case_id, case_no=_clip(case_no, 40), purpose=str(purpose or "")[:200], using_db=conn)
    if audit:
        await append(conn, [access_entry(row)], now=now)
    return row


def access_entry(row: DataAccessLog | dict[str, Any]) -> AuditEntry:
    """The audit record of a personal-data read (the subject only as its masked form)."""
    get = row.get if isinstance(row, dict) else lambda k, d=None: getattr(row, k, d)
    return AuditEntry("pii.read", actor=get("actor"), department=get("department"), case_no=get("case_no"),
                      subject=get("subject_masked"), detail={
                          "dataset": get("dataset"), "fields": list(get("fields_read") or []),
                          "purpose": get("purpose")})


# ------------------------------------------------------------------ engine steps
_STEP_KINDS = {"case_started": "case.start", "task_completed": "task.complete", "task_returned": "task.return",
               "completion_withdrawn": "task.withdraw", "case_completed": "case.complete",
               "message_received": "message.receive", "message_sent": "message.send"}


def step_entries(case_no: str, events: list[dict[str, Any]], records: list[tuple[str, dict[str, Any]]],
                 decisions: list[dict[str, Any]], status: str | None = None) -> list[AuditEntry]:
    """Audit entries for one engine step: its timeline events, the decisions it made and what
    its connectors recorded (certificates issued and used, personal data read)."""
    entries: list[AuditEntry] = []
    for event in events:
        kind = _STEP_KINDS.get(event.get("kind", ""))
        if kind is None:
            continue
        detail = {k: v for k, v in {
            "task_id": event.get("task_id"), "task_name": event.get("task_name"),
            "opinion": _masked(event.get("detail", {}) or {}, "opinion"),
            "on_behalf_of": (event.get("detail") or {}).get("on_behalf_of"),  # 代理: the officer stood in for
            "service": (event.get("detail") or {}).get("service") if kind == "case.start" else None,
            "status": status if kind == "case.complete" else None}.items() if v is not None}
        entries.append(AuditEntry(kind, actor=event.get("actor"), department=event.get("department"),
                                  case_no=case_no, subject=event.get("task_id"), detail=detail))
    for decision in decisions:
        entries.append(AuditEntry("decision", actor="system", case_no=case_no, subject=decision.get("task"),
                                  detail={k: _mask_value(v) for k, v in decision.items()}))
    for kind, payload in records:
        if kind == "certificate":
            signed = payload.get("signed", {})
            # SignedCertificate.to_dict(): {"certificate": {...}, "signature", "kid", "alg"}
            data = (signed.get("certificate") or signed.get("data") or {}) if isinstance(signed, dict) else {}
            entries.append(AuditEntry("certificate.issue", actor="system", case_no=payload.get("case_no") or case_no,
                                      subject=data.get("identifier"), detail={
                                          "type_code": data.get("type_code"), "number": data.get("number"),
                                          "holder": payload.get("holder_code_masked"),
                                          "key_id": signed.get("kid") or signed.get("key_id")}))
        elif kind == "certificate_use":
            entries.append(AuditEntry("certificate.use", actor=payload.get("actor"),
                                      department=payload.get("department"), case_no=payload.get("case_no") or case_no,
                                      subject=payload.get("identifier"), detail={"reason": payload.get("reason")}))
        elif kind == "access_log":
            entries.append(access_entry({**payload, "case_no": payload.get("case_no") or case_no}))
    return entries


def _masked(detail: dict[str, Any], key: str) -> Any:
    value = detail.get(key) if isinstance(detail, dict) else None
    return mask_text(value) if isinstance(value, str) else value


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {str(k): _mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_value(v) for v in value]
    return value if isinstance(value, (int, float, bool)) or value is None else str(value)



async def prune_before(cutoff: datetime, now: datetime, actor: str, dry_run: bool) -> int:
    """Delete the chain's records older than ``cutoff`` (a prefix) and move the head's prune
    mark there; the purge record names the cut, which ``verify`` requires for any cut. Pending
    records are chained first, so the cut falls on the chain as it stands."""
    await sequence()
    last_old = await AuditRecord.filter(at__lt=cutoff, seq__isnull=False).order_by("-seq").first()
    if last_old is None:
        return 0
    if dry_run:
        head = await AuditHead.get_or_none(id=HEAD_ID)
        return int(last_old.seq) - (int(head.pruned_seq) if head else 0)
    async with in_transaction() as conn:
        head = await _lock_head(conn)
        cut_seq, cut_hash = int(last_old.seq), last_old.hash
        deleted = await AuditRecord.filter(seq__lte=cut_seq).using_db(conn).delete()
        await AuditHead.filter(id=HEAD_ID).using_db(conn).update(pruned_seq=cut_seq, pruned_hash=cut_hash)
        head.pruned_seq, head.pruned_hash = cut_seq, cut_hash
        await _append_locked(conn, head, [AuditEntry(
            "retention.purge", actor=actor, subject=f"{cut_seq}:{cut_hash}", detail={
                "what": "audit_log", "before": format_at(cutoff), "deleted": int(deleted),
                "pruned_seq": cut_seq, "pruned_hash": cut_hash})], now.astimezone(timezone.utc))
    return int(deleted)


__all__ = ["ANCHOR", "GENESIS", "KINDS", "SEQUENCING", "AuditEntry", "Sequencing", "VerifyResult", "access_entry",
           "anchor", "anchor_mac", "append", "canonical_detail", "configure", "hash_of", "log_data_access",
           "prune_before", "record", "record_hash", "sequence", "step_entries", "verify"]
