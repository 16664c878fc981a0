"""Personal-data reads written in batches: the hot path of QR verification (扫码核验).

Every scan must leave the holder an access-log row and an audit record (``log_data_access``), but
one transaction per scan made verification a database-bound endpoint. ``AccessLogBuffer.add``
only appends the row to a list in process memory; ``flush`` writes everything collected — the
``DataAccessLog`` rows (their ``created_at`` the scan's time) and their audit records — in one
transaction, with one insert per table. The API flushes when ``max_rows`` rows are waiting and at
least every ``max_delay_s`` (``GOVFLOW_ACCESS_LOG_FLUSH_ROWS`` / ``_FLUSH_MS``), and once more when
the server stops.

**Durability bound**: rows not flushed yet are lost if the process dies abruptly (SIGKILL, power
loss) — at most ``max_rows`` rows or ``max_delay_s`` of scans per process. A failed flush (database
down) keeps the rows and retries at the next one, up to ``max_backlog`` rows; beyond that the oldest
are dropped and logged as an error.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

from tortoise.transactions import in_transaction

from engine.accountability.audit import access_entry, append
from engine.store.shared_models import DataAccessLog

log = logging.getLogger("govflow.access_log")


def _clip(value: Any, size: int) -> str | None:
    return None if value in (None, "") else str(value)[:size]


class AccessLogBuffer:
    def __init__(self, *, max_rows: int = 200, max_delay_s: float = 0.2, max_backlog: int = 50_000) -> None:
        self.max_rows = max(1, max_rows)
        self.max_delay_s = max_delay_s
        self.max_backlog = max_backlog
        self._rows: list[DataAccessLog] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.flushed = 0

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, *, subject_hash: str, dataset: str, purpose: str, actor: str | None = None,
            department: str | None = None, subject_masked: str | None = None,
            fields_read: list[str] | None = None, case_id: int | None = None, case_no: str | None = None,
            at: datetime | None = None) -> None:
        """One personal-data read, written with the next flush (same fields as ``log_data_access``)."""
        self._rows.append(DataAccessLog(
            actor=_clip(actor, 64), department=_clip(department, 32), subject_hash=subject_hash,
            subject_masked=_clip(subject_masked, 32), dataset=str(dataset)[:64], fields_read=list(fields_read or []),
            case_id=case_id, case_no=_clip(case_no, 40), purpose=str(purpose or "")[:200],
            created_at=(at or datetime.now(timezone.utc))))
        if len(self._rows) >= self.max_rows:
            self._wake.set()

    async def flush(self) -> int:
        """Write what is waiting in one transaction; the number of rows written."""
        async with self._lock:
            rows, self._rows = self._rows, []
            if not rows:
                return 0
            try:
                async with in_transaction() as conn:
                    await DataAccessLog.bulk_create(rows, using_db=conn)
                    await append(conn, [access_entry(r) for r in rows])
            except Exception:
                self._rows = rows + self._rows
                if len(self._rows) > self.max_backlog:
                    dropped = len(self._rows) - self.max_backlog
                    del self._rows[:dropped]
                    log.error("access log backlog full: %d rows dropped", dropped)
                raise
            self.flushed += len(rows)
            return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every ``max_delay_s`` or as soon as ``max_rows`` wait, until ``stop``; then the rest."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.max_delay_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - kept; the next round retries
                log.warning("access log flush failed; retrying", exc_info=True)
        await self.flush()


__all__ = ["AccessLogBuffer"]
