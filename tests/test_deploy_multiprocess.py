"""What several processes need beyond PostgreSQL and Redis (the full cluster is tests/scale):

- ``govflow serve --workers N`` refuses N > 1 without Redis or on SQLite, with one clear line;
- in development every process derives the same public certificate key, so a signature made in
  one process verifies in another (a per-process throw-away key would not);
- behind a reverse proxy (``GOVFLOW_PROXIES_COUNT=1``) per-address rate limits count the client
  from ``X-Forwarded-For``, not the proxy's own address that every request shares.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sanic import Sanic

from engine.certificates.keys import ALG_ED25519, ALG_SM2, KeyRing
from mobile_api.auth import RATE_LIMITS, RateRule
from tests.api.conftest import fresh_db, make_app  # noqa: F401 - fixtures used below
from tests.api.helpers import OpenApiClient, running_api

ROOT = Path(__file__).resolve().parent.parent


def _govflow(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GOVFLOW_")}
    return subprocess.run([sys.executable, "-m", "mobile_api.cli", *args], capture_output=True, text=True,
                          env={**clean, **env}, cwd=ROOT, timeout=60)


def test_serve_refuses_several_workers_without_redis_or_postgres(tmp_path: Path) -> None:
    sqlite = f"sqlite://{tmp_path / 'one.sqlite3'}"
    no_redis = _govflow("serve", "--workers", "2", "--port", "1", GOVFLOW_DATABASE_URL=sqlite)
    assert no_redis.returncode == 2 and no_redis.stderr.strip() == (
        "configuration error: --workers 2 needs GOVFLOW_REDIS_URL: without Redis, rate limits, idempotency "
        "keys, token revocation and live status stay inside each process")
    on_sqlite = _govflow("serve", "--port", "1", GOVFLOW_WORKERS="3", GOVFLOW_DATABASE_URL=sqlite,
                         GOVFLOW_REDIS_URL="redis://127.0.0.1:6379/15")
    assert on_sqlite.returncode == 2 and "--workers 3 needs PostgreSQL" in on_sqlite.stderr
    assert "Traceback" not in no_redis.stderr + on_sqlite.stderr


_SIGN = """
import base64, json, sys
from engine.certificates.keys import KeyRing
ring = KeyRing.from_env({"GOVFLOW_CERT_ALGORITHM": sys.argv[1]})
print(json.dumps({"kid": ring.active.key_id, "sig": base64.b64encode(ring.active.sign(b"govflow")).decode()}))
"""


@pytest.mark.parametrize("algorithm", [ALG_SM2, ALG_ED25519])
def test_development_certificate_key_is_the_same_in_every_process(algorithm: str) -> None:
    signed = subprocess.run([sys.executable, "-c", _SIGN, algorithm], capture_output=True, text=True, cwd=ROOT,
                            timeout=60, env={k: v for k, v in os.environ.items() if not k.startswith("GOVFLOW_")})
    assert signed.returncode == 0, signed.stderr
    other = json.loads(signed.stdout)
    here = KeyRing.from_env({"GOVFLOW_CERT_ALGORITHM": algorithm})
    assert other["kid"] == here.active.key_id and other["kid"].endswith("-shared")
    assert here.verifier().verify(other["kid"], algorithm, b"govflow", base64.b64decode(other["sig"]))
    assert not here.verifier().verify(other["kid"], algorithm, b"forged", base64.b64decode(other["sig"]))
    # tests and `rotate` still get fresh keys, which the shared one does not verify
    fresh = KeyRing.generate_dev(algorithm)
    assert fresh.active.key_id != here.active.key_id
    assert not here.verifier().verify(fresh.active.key_id, algorithm, b"govflow", fresh.active.sign(b"govflow"))


@pytest.fixture
def one_login_per_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RATE_LIMITS, "login_per_ip", RateRule(1, 60, "test: one login per address"))


async def _logins(api: OpenApiClient, addresses: list[str]) -> list[int]:
    answers = [await api.client.post("/api/v1/auth/miniprogram", json={"code": "dev-proxy"},
                                     headers={"X-Forwarded-For": address}) for address in addresses]
    return [r.status_code for r in answers]


@pytest.fixture
async def behind_proxy(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                       one_login_per_address: None) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch, PROXIES_COUNT=1) as api:
        yield api


async def test_behind_a_proxy_rate_limits_count_the_forwarded_client(behind_proxy: OpenApiClient) -> None:
    assert await _logins(behind_proxy, ["203.0.113.7", "203.0.113.7", "198.51.100.2"]) == [200, 429, 200]


@pytest.fixture
async def direct(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                 one_login_per_address: None) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch) as api:
        yield api


async def test_without_a_proxy_a_forwarded_header_is_not_trusted(direct: OpenApiClient) -> None:
    # a client cannot dodge the limit by inventing addresses: all of these are 127.0.0.1
    assert await _logins(direct, ["203.0.113.7", "198.51.100.2"]) == [200, 429]


@pytest.mark.postgres
async def test_containers_starting_together_migrate_one_at_a_time() -> None:
    """Three ``govflow migrate`` at once on one empty database (replicas starting together): one
    applies every migration, the others wait on the advisory lock and find nothing to do."""
    from tests.conftest import PG_SERVER_URL, _admin

    name = f"govflow_migrate_{os.getpid()}"
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVFLOW_")}
        env["GOVFLOW_DATABASE_URL"] = f"{PG_SERVER_URL.rsplit('/', 1)[0]}/{name}"
        procs = [subprocess.Popen([sys.executable, "-m", "mobile_api.cli", "migrate"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        results = [(p.wait(90), *p.communicate()) for p in procs]
        assert [rc for rc, _, _ in results] == [0, 0, 0], results
        outputs = sorted(out.strip() for _, out, _ in results)
        migrations = sorted(p.name for p in (ROOT / "engine/store/migrations/models").glob("[0-9]*.py"))
        assert outputs[0].splitlines() == [f"applied {m}" for m in migrations]
        assert outputs[1:] == ["数据库已是最新 (database up to date)"] * 2
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_live_status_streams_of_a_process_share_one_redis_connection() -> None:
    """Thousands of open SSE streams must not mean thousands of Redis connections (Redis's
    ``maxclients`` would bound the streams of the whole deployment): every subscription of one
    ``RedisKV`` rides one pub/sub connection, and each still gets its channel's messages."""
    import asyncio
    import uuid

    import redis.asyncio as aioredis

    from engine.platform.kv import create_kv
    from tests.api.conftest import REDIS_TEST_URL

    name = f"kvhub-{uuid.uuid4().hex[:10]}"
    kv = create_kv(f"{REDIS_TEST_URL}?client_name={name}", prefix=f"test:{name}:")
    raw = aioredis.from_url(REDIS_TEST_URL, decode_responses=True)
    subs = [await kv.subscribe(f"case:{n % 20}") for n in range(40)]  # 40 streams on 20 cases
    try:
        clients = [c for c in await raw.client_list() if c.get("name") == name]
        assert [int(c["sub"]) for c in clients if int(c["sub"]) > 0] == [20]  # one connection, 20 channels
        for n in range(20):
            await kv.publish(f"case:{n}", f"status {n}")
        received = await asyncio.wait_for(asyncio.gather(*(anext(s) for s in subs)), 10)
        assert received == [f"status {n % 20}" for n in range(40)]
        for sub in subs[:20]:  # the other stream on each case keeps the channel
            await sub.close()
        await kv.publish("case:3", "again")
        assert await asyncio.wait_for(anext(subs[23]), 10) == "again"
        for sub in subs[20:]:  # the last stream of a case leaves the channel
            await sub.close()
        channels = [f"test:{name}:case:{n}" for n in range(20)]
        for _ in range(50):
            if all(count == 0 for _, count in await raw.pubsub_numsub(*channels)):
                break
            await asyncio.sleep(0.1)
        assert [count for _, count in await raw.pubsub_numsub(*channels)] == [0] * 20
    finally:
        for sub in subs:
            await sub.close()
        await kv.close()
        await raw.aclose()


def _verify_answers(bases: list[str], token: str) -> list[bool]:
    import httpx

    answers = [httpx.post(f"{base}/api/v1/certificates/verify", json={"token": token}, timeout=10) for base in bases]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    return [bool(a.json()["valid"]) for a in answers]


def _keyed_statuses(bases: list[str], token: str, key: str) -> list[int]:
    import httpx

    return [httpx.post(f"{base}/api/v1/certificates/verify", json={"token": token}, timeout=10,
                       headers={"X-Verifier-Key": key}).status_code for base in bases]


def _within_one_second(bases: list[str], token: str, expected: bool) -> float:
    """Scan on every process until each answers ``expected``; the time that took (fails past 1 s)."""
    import time

    started = time.monotonic()
    while True:
        answers = _verify_answers(bases, token)
        elapsed = time.monotonic() - started
        if answers == [expected] * len(bases):
            return elapsed
        assert elapsed < 1.0, f"after {elapsed:.2f} s the processes answer valid={answers}, expected {expected}"


@pytest.mark.postgres
def test_a_state_change_stops_verification_on_every_api_process_within_a_second(tmp_path: Path) -> None:
    """Two ``govflow serve`` processes cache the register for QR verification; a suspension,
    restoration and revocation made by a third process (the CLI) reach both within a second, the
    scans' access-log rows reach the database in batches, and the worker's sequencer chains the
    audit records so ``audit verify`` finds nothing pending. Both also cache a registered verifier's
    row: disabled through one process, its key is refused by both at their next scan."""
    import asyncio
    import time
    from contextlib import ExitStack

    import asyncpg
    import httpx

    from tests.api.helpers import decode_qr_png
    from tests.security.stack import WANG, bearer, citizen_token, private_redis, stack, staff_token

    with ExitStack() as resources:
        redis = resources.enter_context(private_redis(tmp_path))
        served = resources.enter_context(stack(tmp_path, redis_url=redis.url, extra_env={
            "GOVFLOW_AUDIT_SEQUENCE_INTERVAL_MS": "100"}))
        _, first = served.serve("serve-a")
        _, second = served.serve("serve-b")
        served.worker()
        token = citizen_token(first, "dev-wang", WANG)
        applied = httpx.post(f"{first}/api/v1/applications", headers=bearer(token), timeout=60, json={
            "service": "senior-card", "form": {"phone": "13816612345", "delivery": "mail", "address": {
                "region_code": "310104", "detail": "漕溪北路88弄3号602室"}}})
        assert applied.status_code == 201, applied.text
        [cert] = httpx.get(f"{second}/api/v1/certificates", headers=bearer(token), timeout=10).json()["items"]
        png = httpx.get(f"{second}/api/v1/certificates/{cert['id']}/qrcode", headers=bearer(token), timeout=10)
        [qr] = decode_qr_png(png.content)
        bases = [first, second]
        for _ in range(3):  # both processes have the certificate cached now
            assert _verify_answers(bases, qr) == [True, True]

        admin = bearer(staff_token(first, "admin"))
        hospital = httpx.post(f"{first}/api/v1/admin/verifiers", headers=admin, timeout=10,
                              json={"name": "上海市第一人民医院", "purpose": "就诊优待核验"})
        assert hospital.status_code == 201, hospital.text
        key = hospital.json()["api_key"]
        for _ in range(3):  # both processes have the verifier's row cached now
            assert _keyed_statuses(bases, qr, key) == [200, 200]
        disabled = httpx.post(f"{second}/api/v1/admin/verifiers/{hospital.json()['id']}/disable", headers=admin,
                              timeout=10)
        assert disabled.status_code == 200, disabled.text
        started = time.monotonic()
        while (statuses := _keyed_statuses(bases, qr, key)) != [401, 401]:
            assert time.monotonic() - started < 1.0, f"a disabled verifier's key still answers {statuses}"
        print(f"verifier disabled: both refuse after {time.monotonic() - started:.3f} s")

        served.run("certificates", "suspend", cert["identifier"], "--reason", "测试暂停")
        print(f"suspended: both refuse after {_within_one_second(bases, qr, False):.3f} s")
        served.run("certificates", "restore", cert["identifier"], "--reason", "测试恢复")
        print(f"restored: both accept after {_within_one_second(bases, qr, True):.3f} s")
        served.run("certificates", "revoke", cert["identifier"], "--reason", "测试吊销")
        print(f"revoked: both refuse after {_within_one_second(bases, qr, False):.3f} s")
        scans = 6 + 2 * 3  # the warm-up scans and at least one per process after each change

        async def counts() -> tuple[int, int]:
            conn = await asyncpg.connect(served.database_url.replace("postgres://", "postgresql://", 1))
            try:
                logged = await conn.fetchval(
                    "SELECT count(*) FROM data_access_log WHERE dataset = 'certificate' AND purpose = '扫码核验'")
                pending = await conn.fetchval("SELECT count(*) FROM audit_log WHERE seq IS NULL")
                return int(logged), int(pending)
            finally:
                await conn.close()

        deadline = time.monotonic() + 5
        while True:  # flushed within ACCESS_LOG_FLUSH_MS, chained within AUDIT_SEQUENCE_INTERVAL_MS
            logged, pending = asyncio.run(counts())
            if (logged >= scans and pending == 0) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert logged >= scans and pending == 0, (logged, pending)
        out = served.run("audit", "verify", "--no-progress")
        assert out.startswith("OK 审计链完整"), out
