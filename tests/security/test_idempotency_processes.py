"""Idempotency across processes: the same ``Idempotency-Key`` sent to two ``govflow serve``
processes at the same moment (one PostgreSQL database, one Redis) makes exactly one case."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import ExitStack
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.api.test_applications_api import STARTUP
from tests.security.stack import WANG, bearer, citizen_token, private_redis, stack

pytestmark = pytest.mark.postgres
KEYS = 8


async def _race(bases: list[str], token: str, key: str) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60) as client:
        return list(await asyncio.gather(*(
            client.post(f"{base}/api/v1/applications", headers={**bearer(token), "Idempotency-Key": key},
                        json={"service": "business-startup", "form": STARTUP}) for base in bases)))


async def _cases(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        return list(await conn.fetch("SELECT id, service FROM cases ORDER BY id"))
    finally:
        await conn.close()


def test_one_key_sent_to_two_processes_at_once_makes_one_case(tmp_path: Path) -> None:
    with ExitStack() as resources:
        redis = resources.enter_context(private_redis(tmp_path))
        served = resources.enter_context(stack(tmp_path, redis_url=redis.url))
        _, first = served.serve("serve-a")
        _, second = served.serve("serve-b")
        token = citizen_token(first, "dev-wang", WANG)  # tokens and keys live in the shared Redis
        answers: dict[str, list[tuple[int, int | None]]] = {}
        for _ in range(KEYS):
            key = uuid.uuid4().hex
            responses = asyncio.run(_race([first, second], token, key))
            answers[key] = [(r.status_code, r.json().get("id")) for r in responses]
        for key, pair in answers.items():
            statuses = sorted(status for status, _ in pair)
            # one process creates (201); the other waits for its answer (200, replayed) or, if the
            # first is still working after REPLAY_WAIT_S, says so (409 request_in_progress)
            assert statuses in ([200, 201], [201, 409]), (key, pair)
            ids = {case_id for status, case_id in pair if status in (200, 201)}
            assert len(ids) == 1, (key, pair)
        cases = asyncio.run(_cases(served.database_url))
        assert len(cases) == KEYS, cases
        created = {case_id for pair in answers.values() for status, case_id in pair if status == 201}
        assert created == {row["id"] for row in cases}
