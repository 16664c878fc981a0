"""Real processes for the security and reliability tests: ``govflow serve`` / ``govflow worker``
subprocesses, a fresh database for them (SQLite file, or a database of its own on the PostgreSQL
pass's server), a private ``redis-server`` and a private PostgreSQL cluster on free ports.

Nothing here touches the machine's shared servers beyond creating and dropping databases named
``govflow_sec_*`` on the test server; the private servers are started and stopped by the tests.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import PG_SERVER_URL, TEST_DB

ROOT = Path(__file__).resolve().parents[2]
GOVFLOW = [sys.executable, "-m", "mobile_api.cli"]
DEMO_PASSWORD = "demo-password-for-tests-only"
JWT_SECRET = "security-tests-jwt-secret-0123456789abcdef"
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate()`` until it returns a truthy value; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - not there yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- databases

async def _pg_admin(statement: str, url: str = PG_SERVER_URL) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def fresh_database(tmp: Path, *, pg_server_url: str | None = None) -> Iterator[str]:
    """A new, empty database URL: a SQLite file in ``tmp``, or on the PostgreSQL pass (or when
    ``pg_server_url`` is given) a database of its own, dropped afterwards."""
    server = pg_server_url or (PG_SERVER_URL if TEST_DB == "postgres" else None)
    if server is None:
        yield f"sqlite://{tmp / 'govflow.sqlite3'}"
        return
    name = f"govflow_sec_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"', server))
    try:
        yield f"{server.rsplit('/', 1)[0]}/{name}"
    finally:
        try:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', server))
        except OSError:  # a private server the test already stopped: the database goes with it
            pass


# --------------------------------------------------------------------------- processes

@dataclass
class Proc:
    """A started subprocess with its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        self.kill(signal.SIGTERM)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


@dataclass
class Stack:
    """Settings (as ``GOVFLOW_*`` environment) shared by every process of one test."""

    tmp: Path
    database_url: str
    redis_url: str = ""
    processes_dir: Path = ROOT / "processes"
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)

    def env(self, **more: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVFLOW_")}
        env.update({
            "GOVFLOW_ENV": "development", "GOVFLOW_DATABASE_URL": self.database_url,
            "GOVFLOW_REDIS_URL": self.redis_url, "GOVFLOW_PROCESSES_DIR": str(self.processes_dir),
            "GOVFLOW_DEMO_PASSWORD": DEMO_PASSWORD, "GOVFLOW_JWT_SECRET": JWT_SECRET,
            "GOVFLOW_UPLOAD_DIR": str(self.tmp / "uploads"), "GOVFLOW_LOG_LEVEL": "WARNING",
            "GOVFLOW_JOB_POLL_MS": "100", "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        env.update(more)
        return env

    def run(self, *args: str, timeout: float = 120) -> str:
        """Run a ``govflow`` command to the end; its output (fails on a non-zero exit)."""
        done = subprocess.run([*GOVFLOW, *args], cwd=ROOT, env=self.env(), capture_output=True,
                              timeout=timeout, check=False)
        out = done.stdout.decode() + done.stderr.decode()
        assert done.returncode == 0, f"govflow {' '.join(args)} failed:\n{out}"
        return out

    def prepare(self) -> None:
        """Migrate and seed the demo data (departments, staff with ``DEMO_PASSWORD``, processes)."""
        self.run("migrate")
        self.run("seed-demo")

    def start(self, name: str, *args: str, **env: str) -> Proc:
        log = self.tmp / f"{name}.log"
        handle = log.open("ab")
        popen = subprocess.Popen([*GOVFLOW, *args], cwd=ROOT, env=self.env(**env), stdout=handle,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def serve(self, name: str = "serve", port: int | None = None, wait: bool = True) -> tuple[Proc, str]:
        """``govflow serve`` on ``port`` (a free one by default); its base URL once it answers /ready."""
        port = port or free_port()
        proc = self.start(name, "serve", "--port", str(port))
        base = f"http://127.0.0.1:{port}"
        if wait:
            def ready() -> bool:
                if not proc.alive():
                    raise AssertionError(f"{name} exited:\n{proc.output()[-3000:]}")
                return httpx.get(f"{base}/ready", timeout=2).status_code == 200

            try:
                wait_for(ready, START_TIMEOUT_S, f"{name} on {base}")
            except AssertionError:
                raise AssertionError(f"{name} did not start:\n{proc.output()[-3000:]}") from None
        return proc, base

    def worker(self, name: str = "worker") -> Proc:
        return self.start(name, "worker")

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()


@contextmanager
def stack(tmp: Path, *, redis_url: str = "", prepare: bool = True, **kw: Any) -> Iterator[Stack]:
    """A fresh database (migrated and seeded unless ``prepare=False``) and a ``Stack`` on it;
    every process it started is killed at the end."""
    with fresh_database(tmp, pg_server_url=kw.pop("pg_server_url", None)) as url:
        s = Stack(tmp=tmp, database_url=url, redis_url=redis_url, **kw)
        try:
            if prepare:
                s.prepare()
            yield s
        finally:
            s.close()


# --------------------------------------------------------------------------- private servers

class PrivateRedis:
    """A ``redis-server`` of this test on a free port (no persistence); ``stop``/``start`` keep the port."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.tmp)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

        def pong() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        wait_for(pong, 20, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


@contextmanager
def private_redis(tmp: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


def pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (``initdb`` into a temp dir, ``pg_ctl``) on a free port.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user
    and is driven through ``runuser``.
    """

    def __init__(self, tmp: Path) -> None:
        binary = pg_bin()
        assert binary is not None, "PostgreSQL server binaries not found under /usr/lib/postgresql"
        self.bin = binary
        self.port = free_port()
        # its own top-level temp dir: pytest's (under /tmp/pytest-of-root) is closed to other users
        self.dir = Path(tempfile.mkdtemp(prefix="govflow-test-pg-"))
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def server_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, timeout=timeout, check=False)
        assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8", "--locale=C")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-o", options, "-l",
                  str(self.dir / "server.log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")


@contextmanager
def private_postgres(tmp: Path) -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres(tmp)
    pg.init()
    pg.start()
    try:
        yield pg
    finally:
        try:
            pg.stop("immediate")
        except AssertionError:
            pass
        shutil.rmtree(pg.dir, ignore_errors=True)


# --------------------------------------------------------------------------- logging in

WANG = ("王建国", "310104196103150273")  # in the demo population: senior card approved in seconds
ZHAO = ("李娜", "310110198606200486")


def citizen_token(base: str, code: str, real_name: tuple[str, str] | None = None) -> str:
    """Dev login (``dev-<name>``), optionally binding a real name; the access token."""
    response = httpx.post(f"{base}/api/v1/auth/miniprogram", json={"code": code}, timeout=30)
    assert response.status_code == 200, response.text
    token = str(response.json()["access_token"])
    if real_name is not None:
        bound = httpx.post(f"{base}/api/v1/me/real-name", json={"name": real_name[0], "id_number": real_name[1]},
                           headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert bound.status_code == 200, bound.text
    return token


def staff_token(base: str, username: str) -> str:
    response = httpx.post(f"{base}/api/v1/staff/login", json={"username": username, "password": DEMO_PASSWORD},
                          timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
