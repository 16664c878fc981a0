"""Durable jobs in the main database: timers now; SLA warnings and retries build on the same table.

A job is claimed and finished inside the transaction that writes the case it changes, so a
crash either leaves both untouched (the job is retried) or both done: a timer never fires
twice. Due timers are claimed and fired in batches, one transaction per batch (a failed batch
is redone job by job). On PostgreSQL several workers share the table through ``FOR UPDATE SKIP LOCKED``; the
SQLite default serves one process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from tortoise.transactions import in_transaction

from engine.errors import Conflict, GovflowError
from engine.kernel import clocks as case_sla
from engine.kernel.cases import CaseEngine, Step, StepWrite
from engine.kernel.messages import MESSAGE_JOB
from engine.store.db import db_connection, is_postgres
from engine.store.models import Case, Job

log = logging.getLogger("govflow.jobs")
MAX_ATTEMPTS = 5

# a handler returns the case's status when it knows it (else the runner reads it to publish)
Handler = Callable[[Job, object], Awaitable[str | None]]


class JobRunner:
    """Fires due jobs. ``run_due`` does one pass; ``run_forever`` polls until stopped."""

    def __init__(self, engine: CaseEngine, *, poll_interval: float = 0.2, batch: int = 50,
                 concurrency: int = 4) -> None:
        self.engine = engine
        self.poll_interval = poll_interval
        self.batch = batch
        # Timers go in batches (``_run_timer_batch``). Other jobs: on PostgreSQL a worker runs up to
        # ``concurrency`` at once, each in its own transaction (row locks keep them apart); SQLite: one at a time.
        self.concurrency = max(1, concurrency)
        self.handlers: dict[str, Handler] = {
            "timer": self._fire_timer,
            "sla_warning": self._sla_job("sla_warning", case_sla.fire_warning),
            "sla_escalation": self._sla_job("sla_escalated", case_sla.fire_escalation),
            MESSAGE_JOB: engine.messages.run_job,  # a kept BPMN message for a case that now waits for it
        }
        self._messages_at = float("-inf")  # last pass over pending / expired messages (monotonic)
        self.messages_every_s = 5.0

    def _sla_job(self, kind: str, fire: Callable[[Job, object, datetime], Awaitable[bool]]) -> Handler:
        """An SLA job: its timeline entry, and (step hooks: notifications) in the same transaction."""

        async def run(job: Job, conn: object) -> str | None:
            now = self.clock()
            if await fire(job, conn, now):
                case = await Case.filter(id=job.case_id).using_db(conn).first()  # type: ignore[attr-defined]
                if case is not None:
                    await self.engine.run_step_hooks(conn, [StepWrite(case=case, status=case.status, data=None,
                                                                      step=Step(events=[{"kind": kind}]))], now)
            return None

        return run

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.engine.deps.clock

    async def run_due(self) -> int:
        """Fire the jobs due now (up to ``batch`` timers and ``batch`` others); returns how many were done."""
        now = self.clock()
        done = await self._run_timer_batch(now)
        if time.monotonic() - self._messages_at >= self.messages_every_s:  # messages a crash left pending,
            self._messages_at = time.monotonic()                            # kept ones past their time
            done += await self.engine.messages.run_pending()
        due_ids = await Job.filter(status="pending", due_at__lte=now).exclude(kind="timer").order_by(
            "due_at").limit(self.batch).values_list("id", flat=True)
        if self.concurrency > 1 and is_postgres_connection():
            slots = asyncio.Semaphore(self.concurrency)

            async def run(job_id: int) -> bool:
                async with slots:
                    return await self._run_one(job_id)

            return done + sum(await asyncio.gather(*(run(int(job_id)) for job_id in due_ids)))  # type: ignore[arg-type]
        for job_id in due_ids:
            if await self._run_one(int(job_id)):  # type: ignore[arg-type]
                done += 1
        return done

    async def _run_timer_batch(self, now: datetime) -> int:
        """Due timers, claimed together (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: workers take
        disjoint sets) and fired in one transaction (``CaseEngine.fire_timer_batch``): a timer
        then costs about one round trip instead of eleven. A batch that fails is rolled back and
        its jobs are fired one by one, each in its own transaction, as before."""
        claimed: list[int] = []
        try:
            async with in_transaction() as conn:
                query = Job.filter(kind="timer", status="pending", due_at__lte=now).order_by("due_at").limit(
                    self.batch).using_db(conn)
                if is_postgres_connection():
                    query = query.select_for_update(skip_locked=True)
                jobs, cases = [], set()
                for job in await query:
                    if job.case_id not in cases:  # type: ignore[attr-defined]  # a case's second timer: next pass
                        cases.add(job.case_id)  # type: ignore[attr-defined]
                        jobs.append(job)
                claimed = [job.id for job in jobs]
                if not jobs:
                    return 0
                stepped = await self.engine.fire_timer_batch(jobs, conn)
        except Exception as exc:  # noqa: BLE001 - one case's trouble must not stop the others
            if not claimed:
                raise
            log.info("timer batch of %d fell back to one by one: %s", len(claimed), exc)
            return sum([await self._run_one(job_id) for job_id in claimed])
        for case_id, status in stepped:  # after the commit
            await self.engine.publish_status(case_id, status, ["timer"])
        return len(claimed)

    async def next_due_in(self) -> float | None:
        job = await Job.filter(status="pending").order_by("due_at").first()
        if job is None:
            return None
        return max(0.0, (job.due_at - self.clock()).total_seconds())

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                fired = await self.run_due()
            except Exception:  # keep the worker alive through a database hiccup
                log.exception("job pass failed")
                fired = 0
            if fired >= self.batch:
                continue
            wait = self.poll_interval
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass

    async def _run_one(self, job_id: int) -> bool:
        try:
            async with in_transaction() as conn:
                query = Job.filter(id=job_id, status="pending").using_db(conn)
                if is_postgres_connection():
                    query = query.select_for_update(skip_locked=True)
                job = await query.first()
                if job is None:  # another worker has it, or it is done
                    return False
                handler = self.handlers.get(job.kind)
                if handler is None:
                    await Job.filter(id=job.id).using_db(conn).update(
                        status="failed", last_error=f"no handler for job kind {job.kind}")
                    return False
                status = await handler(job, conn)
            if job.case_id is not None and self.engine.deps.publish is not None:  # after the commit
                if status is None:  # the handler did not say: read it
                    case = await Case.get_or_none(id=job.case_id)
                    status = case.status if case is not None else None
                if status is not None:
                    await self.engine.publish_status(job.case_id, status, [job.kind])
            return True
        except Conflict:
            return False  # the case moved on under us; the job is still pending and retried
        except GovflowError as exc:
            await self._record_failure(job_id, str(exc))
        except Exception as exc:  # a broken case must not stop the other jobs
            log.exception("job %s failed", job_id)
            await self._record_failure(job_id, f"{exc.__class__.__name__}: {exc}")
        return False

    async def _record_failure(self, job_id: int, error: str) -> None:
        job = await Job.get_or_none(id=job_id)
        if job is None:
            return
        attempts = job.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            await Job.filter(id=job_id).update(status="failed", attempts=attempts, last_error=error)
        else:
            backoff = timedelta(seconds=2 ** attempts)
            await Job.filter(id=job_id).update(attempts=attempts, last_error=error,
                                               due_at=self.clock() + backoff)

    async def _fire_timer(self, job: Job, conn: object) -> str | None:
        """Returns the case's status after the step (published after the commit without a re-read)."""
        result = await self.engine.fire_timers(job.case_id, job_id=job.id, conn=conn)  # type: ignore[attr-defined]
        if result is None:
            await Job.filter(id=job.id).using_db(conn).update(status="cancelled")
            return None
        return result.status


def is_postgres_connection() -> bool:
    return db_connection().capabilities.dialect == "postgres"


__all__ = ["JobRunner", "is_postgres"]
