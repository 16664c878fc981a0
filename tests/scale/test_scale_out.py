"""Scale-out with real processes: two ``govflow serve`` API processes and two ``govflow worker`` job
processes against one fresh PostgreSQL database and one Redis, as a deployment runs them.

It shows what only holds when every shared thing goes through PostgreSQL and Redis:

- timers: 40 cases whose timers come due at the same moment, raced for by both workers, each
  fire exactly once (one job done, one escalation step, one new version per case);
- idempotency: the same ``Idempotency-Key`` sent to both API processes at once makes one case;
- live status: an SSE client connected to API process A hears the step a staff member completed
  through API process B, and a timer step a job worker process fired;
- token revocation and failure counting: a logout on one process is honoured by the other, and
  failed staff logins on both processes add up to one lockout (the fixed-window counter that
  rate limits use).

Runs in the PostgreSQL pass only (``postgres`` marker); every subprocess is stopped in teardown.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.helpers import sse_events
from tests.api.test_applications_api import ACCEPT, SENIOR, STARTUP, WANG
from tests.conftest import PG_SERVER_URL, REDIS_URL, _admin, model_files
from tests.scale.cluster import Cluster, Proc

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(150)]

DEMO_PASSWORD = "scale-out demo password 7f3a"
TIMER_CASES = 40


class Running(Cluster):
    db_url: str
    apis: list[Proc]
    workers: list[Proc]


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Running]:
    name = f"govflow_scale_{os.getpid()}"
    db_url = f"{PG_SERVER_URL.rsplit('/', 1)[0]}/{name}"
    prefix = f"govflow-scale-{uuid.uuid4().hex[:12]}:"
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "GOVFLOW_ENV": "development", "GOVFLOW_DATABASE_URL": db_url,
           "GOVFLOW_REDIS_URL": REDIS_URL or "redis://127.0.0.1:6379/15", "GOVFLOW_REDIS_PREFIX": prefix,
           "GOVFLOW_DEMO_PASSWORD": DEMO_PASSWORD, "GOVFLOW_JOB_POLL_MS": "50", "GOVFLOW_LOG_LEVEL": "WARNING"}
    running = Running(env, tmp_path)
    running.db_url = db_url
    try:
        for command in ("migrate", "seed-demo"):
            done = running.run(command)
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        running.apis = [running.serve("api-a"), running.serve("api-b")]
        running.workers = [running.start(f"worker-{n}", "worker") for n in (1, 2)]
        deadline = time.monotonic() + 45
        for api in running.apis:
            running.wait_ready(api, deadline)
        yield running
        for proc in running.apis + running.workers:  # none crashed during the test
            assert proc.popen.poll() is None, f"{proc.name} exited:\n{proc.output()}"
    finally:
        running.stop_all()
        await _forget_redis(env["GOVFLOW_REDIS_URL"], prefix)
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _forget_redis(url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def _query(db_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db_url.replace("postgres://", "postgresql://", 1))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def _start_timer_cases(db_url: str, n: int, timeout: str, applicant: str | None = None) -> list[int]:
    """Start ``n`` cases of the timer fixture model (deployed once) whose boundary timer is due in
    ``timeout``; ``applicant`` (an openid) lets that citizen watch them."""
    from engine import build_engine
    from engine.config import PROJECT_ROOT, Settings
    from engine.store.db import close_db, init_db

    await init_db(db_url)
    try:
        engine = build_engine(Settings(DATABASE_URL=db_url, PROCESSES_DIR=PROJECT_ROOT / "processes"))
        definition = await engine.deploy(model_files("timer"))
        return [(await engine.start_case(definition, service="demo", data={"timeout": timeout},
                                         applicant=applicant)).id for _ in range(n)]
    finally:
        await close_db()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _citizen(http: httpx.AsyncClient, login_on: Proc, bind_on: Proc, code: str) -> str:
    login = await http.post(f"{login_on.url}/api/v1/auth/miniprogram", json={"code": code})
    assert login.status_code == 200, login.text
    token = str(login.json()["access_token"])
    bound = await http.post(f"{bind_on.url}/api/v1/me/real-name", headers=_bearer(token),
                            json={"name": WANG[0], "id_number": WANG[1]})
    assert bound.status_code == 200, bound.text  # the token of process A works on process B
    return token


async def _first_timer_event(events: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    async for event in events:
        if event.get("event") == "status" and event["data"]["events"] == ["timer"]:
            return event
    raise AssertionError("the stream ended without the timer step")


async def _hear_a_worker_fire(http: httpx.AsyncClient, api: Proc, token: str, db_url: str, openid: str) -> None:
    """A citizen's live-status stream on ``api`` hears the timer step a job worker process made.
    Should the timer have fired before the stream was subscribed (a very busy machine), a new
    case is tried: once the stream's first event arrived it is subscribed, so a job still pending
    then is heard when it fires."""
    for _ in range(3):
        [case_id] = await _start_timer_cases(db_url, 1, "PT2S", applicant=openid)
        async with http.stream("GET", f"{api.url}/api/v1/applications/{case_id}/events",
                               headers=_bearer(token)) as stream:
            events = sse_events(stream)
            await asyncio.wait_for(anext(events), 10)
            [job] = await _query(db_url, "SELECT status FROM jobs WHERE case_id = $1", case_id)
            if job["status"] != "pending":
                continue

            heard = await asyncio.wait_for(_first_timer_event(events), 30)
            assert heard["data"]["case_id"] == case_id and heard["data"]["status"] == "running"
            return
    raise AssertionError("every timer fired before its stream was subscribed")


async def test_two_api_processes_and_two_workers_share_postgres_and_redis(cluster: Running) -> None:
    a, b = cluster.apis
    # -- timers: all due at the same moment while both workers poll every 50 ms
    timer_ids = await _start_timer_cases(cluster.db_url, TIMER_CASES, "PT3S")
    due_by = time.monotonic() + 3

    async with httpx.AsyncClient(timeout=20) as http:
        token = await _citizen(http, a, b, f"dev-scale-{uuid.uuid4().hex[:8]}")
        [citizen] = await _query(cluster.db_url, "SELECT openid FROM citizens")

        # -- live status from a job worker: the API process's stream hears a timer a worker fired
        await _hear_a_worker_fire(http, a, token, cluster.db_url, citizen["openid"])

        # -- idempotency: one key, both processes at once, three times
        created: list[int] = []
        for _ in range(3):
            key = uuid.uuid4().hex
            answers = await asyncio.gather(*(
                http.post(f"{api.url}/api/v1/applications", headers={**_bearer(token), "Idempotency-Key": key},
                          json={"service": "senior-card", "form": SENIOR}) for api in (a, b)))
            statuses = sorted(r.status_code for r in answers)
            assert statuses in ([200, 201], [201, 409]), [(r.status_code, r.text[:200]) for r in answers]
            first = next(r for r in answers if r.status_code == 201).json()
            for other in answers:
                if other.status_code == 200:  # the replay carries the first answer's case
                    assert other.headers["Idempotency-Replayed"] == "true" and other.json()["id"] == first["id"]
                elif other.status_code == 409:
                    assert other.json()["error"]["code"] == "request_in_progress"
            created.append(first["id"])
        rows = await _query(cluster.db_url, "SELECT id FROM cases WHERE service = 'senior-card' ORDER BY id")
        assert [r["id"] for r in rows] == sorted(created) and len(set(created)) == 3

        # -- live status: an SSE client on A, the step completed through B
        applied = await http.post(f"{a.url}/api/v1/applications", headers=_bearer(token),
                                  json={"service": "business-startup", "form": STARTUP})
        assert applied.status_code == 201, applied.text
        case_id = applied.json()["id"]
        staff = await http.post(f"{b.url}/api/v1/staff/login", json={"username": "samr01", "password": DEMO_PASSWORD})
        assert staff.status_code == 200, staff.text
        staff_token = staff.json()["access_token"]
        async with http.stream("GET", f"{a.url}/api/v1/applications/{case_id}/events",
                               headers=_bearer(token)) as stream:
            assert stream.status_code == 200
            events = sse_events(stream)
            first_event = await asyncio.wait_for(anext(events), 10)
            assert first_event["data"]["case_id"] == case_id and first_event["id"] == "1"

            inbox = (await http.get(f"{b.url}/api/v1/staff/tasks", headers=_bearer(staff_token))).json()
            [task] = [t for t in inbox["items"] if t["case_id"] == case_id]
            claimed = await http.post(f"{b.url}/api/v1/staff/tasks/{task['id']}/claim", headers=_bearer(staff_token))
            assert claimed.status_code == 200, claimed.text
            done = await http.post(f"{b.url}/api/v1/staff/tasks/{task['id']}/complete", headers=_bearer(staff_token),
                                   json={"data": ACCEPT, "opinion": "予以受理"})
            assert done.status_code == 200, done.text

            async def heard_completion() -> dict[str, Any]:
                async for event in events:
                    if event.get("event") == "status" and "task_completed" in event["data"]["events"]:
                        return event
                raise AssertionError("the stream ended without the completed step")

            heard = await asyncio.wait_for(heard_completion(), 10)
        assert heard["data"]["case_id"] == case_id and int(heard["id"]) >= 2

        # -- token revocation and failure counters are shared
        logout = await http.post(f"{a.url}/api/v1/auth/logout", headers=_bearer(token))
        assert logout.status_code in (200, 204), logout.text
        revoked = await http.get(f"{b.url}/api/v1/me", headers=_bearer(token))
        assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "token_revoked"
        # failed staff logins count in one fixed window on Redis (as rate limits do): 4 failures
        # spread over both processes, the 5th locks the account everywhere
        for api in (a, b, a, b):
            wrong = await http.post(f"{api.url}/api/v1/staff/login", json={"username": "clerk02", "password": "x"})
            assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_credentials"
        fifth = await http.post(f"{a.url}/api/v1/staff/login", json={"username": "clerk02", "password": "x"})
        assert fifth.status_code == 429 and fifth.json()["error"]["code"] == "account_locked"
        right = await http.post(f"{b.url}/api/v1/staff/login", json={"username": "clerk02", "password": DEMO_PASSWORD})
        assert right.status_code == 429 and right.json()["error"]["code"] == "account_locked"

    # -- every timer fired exactly once, by one of the two workers
    while time.monotonic() < due_by + 25:
        [pending] = await _query(cluster.db_url, "SELECT count(*) AS n FROM jobs WHERE kind = 'timer' "
                                 "AND status = 'pending' AND case_id = ANY($1::int[])", timer_ids)
        if pending["n"] == 0:
            break
        await asyncio.sleep(0.2)
    jobs = await _query(cluster.db_url, "SELECT case_id, status, attempts FROM jobs WHERE kind = 'timer' "
                        "AND case_id = ANY($1::int[])", timer_ids)
    assert sorted((j["case_id"], j["status"], j["attempts"]) for j in jobs) == [
        (case_id, "done", 0) for case_id in sorted(timer_ids)]
    marks = await _query(cluster.db_url, "SELECT case_id, count(*) AS n FROM case_events WHERE kind = 'step_done' "
                         "AND task_name = '记录超时' AND case_id = ANY($1::int[]) GROUP BY case_id", timer_ids)
    assert {m["case_id"]: m["n"] for m in marks} == {case_id: 1 for case_id in timer_ids}
    versions = await _query(cluster.db_url, "SELECT version FROM cases WHERE id = ANY($1::int[])", timer_ids)
    assert [v["version"] for v in versions] == [2] * TIMER_CASES
