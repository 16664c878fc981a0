"""Kill -9 under load: ``govflow serve`` and ``govflow worker`` (PostgreSQL + Redis) are killed with
SIGKILL while citizens apply and officers complete tasks, then restarted; afterwards

- every application that got a 201 exists and reaches its end state (completed);
- no case is duplicated (one case per application, found by its unique note), even for requests
  whose answer was lost in the crash and that the client retried with the same Idempotency-Key;
- no task was completed twice (one ``task_completed`` event per task, one officer step per case);
- every due timer fired exactly once (one timer job per case, done; the step after it ran once).

The service is tests/security/crash_service: an officer step in the window lane, then a one-second
timer for the worker, then the end. It is added to a copy of processes/ for this test only.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from engine.accountability.privacy import PiiKeys
from engine.bpmn.serializer import StateSerializer
from engine.config import Settings
from tests.security.stack import (
    ROOT,
    WANG,
    Stack,
    bearer,
    citizen_token,
    private_redis,
    stack,
    staff_token,
    wait_for,
)

pytestmark = pytest.mark.postgres
SERVICE = Path(__file__).parent / "crash_service"
APPLICATIONS = 24
OFFICERS = ("window01", "clerk01")
REVIEW = {"data": {"ok": True}}


class Load:
    """Citizens applying and officers completing tasks, in threads, through whatever server runs."""

    def __init__(self, base: str, citizen: str, officers: dict[str, str]) -> None:
        self.base, self.citizen, self.officers = base, citizen, officers
        self.results: dict[str, list[tuple[int, Any]]] = {}  # note -> every answer (status, case id)
        self.completions: list[tuple[str, str, int]] = []  # (officer, task id, status)
        self.created = threading.Event()
        self.stop = threading.Event()
        self.errors: list[str] = []

    def apply_all(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            for n in range(APPLICATIONS):
                note = f"crash-{n}-{uuid.uuid4().hex[:8]}"
                self.results[note] = []
                self._apply(client, note, key=note)
                if n == APPLICATIONS // 3:
                    self.created.set()
                time.sleep(0.05)

    def _apply(self, client: httpx.Client, note: str, key: str) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                response = client.post("/api/v1/applications", json={"service": "crash-check", "form": {"note": note}},
                                       headers={**bearer(self.citizen), "Idempotency-Key": key})
            except httpx.TransportError:  # the server died under the request, or is not back yet
                self.results[note].append((-1, None))
                time.sleep(0.3)
                continue
            body = response.json()
            self.results[note].append((response.status_code, body.get("id")))
            if response.status_code in (200, 201):
                return
            if response.status_code == 409 and body["error"]["code"] == "request_in_progress":
                return  # the crashed first attempt holds the key: its outcome is checked in the database
            if response.status_code != 503:
                self.errors.append(f"apply {note}: {response.status_code} {response.text[:200]}")
                return
            time.sleep(0.3)

    def officer(self, username: str) -> None:
        token = self.officers[username]
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.stop.is_set():
                try:
                    inbox = client.get("/api/v1/staff/tasks", params={"size": 100}, headers=bearer(token))
                    if inbox.status_code != 200:
                        time.sleep(0.2)
                        continue
                    for task in inbox.json()["items"]:
                        done = client.post(f"/api/v1/staff/tasks/{task['id']}/complete", json=REVIEW,
                                           headers=bearer(token))
                        self.completions.append((username, task["id"], done.status_code))
                        if done.status_code >= 500 and done.status_code != 503:
                            self.errors.append(f"complete {task['id']}: {done.status_code} {done.text[:200]}")
                except httpx.TransportError:
                    time.sleep(0.3)
                time.sleep(0.1)


async def _query(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def query(s: Stack, sql: str, *args: Any) -> list[asyncpg.Record]:
    return asyncio.run(_query(s.database_url, sql, *args))


def plain_states(rows: list[asyncpg.Record]) -> dict[int, str]:
    """Case id -> workflow state as text (states are encrypted at rest with the PII key; the test
    servers run with the development key)."""
    keys = PiiKeys.from_settings(Settings(PII_KEY=""))
    serializer = StateSerializer(key=keys.encryption_key, old_keys=keys.retired_encryption_keys)
    return {row["id"]: serializer.decode(row["state"]) for row in rows}


def test_kill_minus_9_of_server_and_worker_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    processes = tmp_path / "processes"
    shutil.copytree(ROOT / "processes", processes)
    shutil.copytree(SERVICE, processes / "crash-check")
    with ExitStack() as resources:
        redis = resources.enter_context(private_redis(tmp_path))
        s = resources.enter_context(stack(tmp_path, redis_url=redis.url, processes_dir=processes))
        port = int(s.serve("serve-1", wait=False)[1].rsplit(":", 1)[1])
        server, base = s.procs[-1], f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{base}/ready", timeout=2).status_code == 200, 60, "first server")
        worker = s.worker("worker-1")
        load = Load(base, citizen_token(base, "dev-wang", WANG), {u: staff_token(base, u) for u in OFFICERS})
        threads = [threading.Thread(target=load.apply_all, name="citizen")]
        threads += [threading.Thread(target=load.officer, args=(u,), name=u) for u in OFFICERS]
        for thread in threads:
            thread.start()
        try:
            assert load.created.wait(120), "no applications got through before the crash"
            time.sleep(0.4)  # mid-way: requests, task completions and timers in flight
            server.kill(signal.SIGKILL)
            worker.kill(signal.SIGKILL)
            assert not server.alive() and not worker.alive()
            time.sleep(1.5)  # timers fall due while nothing runs
            s.serve("serve-2", port=port)
            s.worker("worker-2")
            threads[0].join(timeout=240)
            assert not threads[0].is_alive(), "the citizen's applications never finished"
            created = {answers[-1][1] for answers in load.results.values()
                       if any(status == 201 for status, _ in answers)}

            def all_done() -> bool:
                rows = query(s, "SELECT status FROM cases WHERE service = 'crash-check'")
                return bool(rows) and all(r["status"] == "completed" for r in rows)

            wait_for(all_done, 180, "every crash-check case to complete after the restart", interval=0.5)
        finally:
            load.stop.set()
            for thread in threads[1:]:
                thread.join(timeout=60)
        assert not load.errors, load.errors

        cases = query(s, "SELECT id, status, state FROM cases WHERE service = 'crash-check' ORDER BY id")
        ids = {row["id"] for row in cases}
        states = plain_states(cases)
        # every 201 exists and is completed
        assert created and created <= ids, (created - ids)
        assert all(row["status"] == "completed" for row in cases)
        # no duplicated case: each note (one per application) is in exactly one case
        per_note = {note: [case_id for case_id, text in states.items() if note in text] for note in load.results}
        assert all(len(found) <= 1 for found in per_note.values()), {n: c for n, c in per_note.items() if len(c) > 1}
        assert len(cases) == sum(1 for found in per_note.values() if found)
        answered = {note for note, answers in load.results.items() if any(st in (200, 201) for st, _ in answers)}
        assert all(per_note[note] for note in answered)
        # no task completed twice
        completed = query(s, "SELECT e.case_id, e.task_id FROM case_events e JOIN cases c ON c.id = e.case_id "
                             "WHERE c.service = 'crash-check' AND e.kind = 'task_completed'")
        twice = [key for key, n in Counter((r["case_id"], r["task_id"]) for r in completed).items() if n > 1]
        assert not twice, twice
        assert Counter(r["case_id"] for r in completed) == Counter(ids), "one officer step per case"
        tasks = query(s, "SELECT t.case_id, t.state FROM human_tasks t JOIN cases c ON c.id = t.case_id "
                         "WHERE c.service = 'crash-check'")
        assert Counter(r["case_id"] for r in tasks) == Counter(ids) and {r["state"] for r in tasks} == {"completed"}
        # every due timer fired exactly once
        jobs = query(s, "SELECT case_id, status, fired_at FROM jobs WHERE kind = 'timer' AND case_id = ANY($1)",
                     list(ids))
        assert Counter(r["case_id"] for r in jobs) == Counter(ids), "one timer per case"
        assert all(r["status"] == "done" and r["fired_at"] is not None for r in jobs), jobs
        for case_id, text in states.items():
            assert '"timer_fired":true' in text.replace(" ", ""), case_id  # the step after the timer ran
        statuses = Counter(status for _, _, status in load.completions)
        assert statuses[200] >= 1 and set(statuses) <= {200, 409, 503}, statuses
        print(f"crash test: {len(cases)} cases, answers {Counter(st for a in load.results.values() for st, _ in a)}, "
              f"completions {dict(statuses)}")
