"""Shared pieces of the benchmarks: percentiles, machine load, throw-away PostgreSQL databases and
served processes. Benchmarks print figures; nothing here asserts timing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PG_BASE_URL = os.environ.get("GOVFLOW_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GOVFLOW_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def percentiles(values: Sequence[float], scale: float = 1000.0) -> dict[str, float | None]:
    """p50/p95/p99/max of ``values`` (seconds) in milliseconds (nearest-rank)."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "n": 0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))] * scale, 2)

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": round(ordered[-1] * scale, 2),
            "n": len(ordered)}


def load() -> dict[str, float]:
    """The machine's load averages (1/5/15 min): other work on this 2-core machine skews figures."""
    one, five, fifteen = os.getloadavg()
    return {"load1": round(one, 2), "load5": round(five, 2), "load15": round(fifteen, 2),
            "cpus": os.cpu_count() or 0}


class CpuMeter:
    """CPU seconds (user + system, from /proc) spent between ``start`` and ``stop`` by: a server's
    process tree (``pid`` and its descendants: Sanic's workers), this process (the load generator),
    PostgreSQL's and Redis's processes. Tells where the two cores went during a run."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self._before: dict[str, float] = {}

    @staticmethod
    def _procs() -> list[tuple[int, int, str, float]]:
        """(pid, ppid, command, cpu seconds) of every process we may read."""
        tick = os.sysconf("SC_CLK_TCK")
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
            out.append((int(entry), int(fields[1]), cmd or stat[stat.index("(") + 1:stat.rindex(")")],
                        (int(fields[11]) + int(fields[12])) / tick))
        return out

    def _sample(self) -> dict[str, float]:
        procs = self._procs()
        tree = {self.pid} if self.pid else set()
        grew = True
        while grew:
            grew = False
            for pid, ppid, _, _ in procs:
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    grew = True
        sample = {"server": 0.0, "load_generator": 0.0, "postgres": 0.0, "redis": 0.0}
        for pid, _, cmd, cpu in procs:
            if pid in tree:
                sample["server"] += cpu
            elif pid == os.getpid():
                sample["load_generator"] += cpu
            elif cmd.startswith("postgres"):
                sample["postgres"] += cpu
            elif "redis-server" in cmd:
                sample["redis"] += cpu
        return sample

    def start(self) -> "CpuMeter":
        self._before = self._sample()
        self._began = time.perf_counter()
        return self

    def stop(self) -> dict[str, float]:
        """CPU seconds per part, and ``cores_busy``: all parts' CPU over the wall time."""
        after = self._sample()
        wall = time.perf_counter() - self._began
        used = {k: round(after[k] - self._before.get(k, 0.0), 2) for k in after}
        used["wall_s"] = round(wall, 2)
        used["cores_busy"] = round(sum(v for k, v in used.items() if k != "wall_s") / wall, 2) if wall else 0.0
        return used


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@contextlib.asynccontextmanager
async def pg_database(prefix: str, base_url: str = PG_BASE_URL, keep: bool = False) -> AsyncIterator[str]:
    """A fresh PostgreSQL database (dropped afterwards unless ``keep``); yields its URL."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_with_db(base_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _with_db(base_url, name)
    finally:
        if not keep:
            admin = await asyncpg.connect(_with_db(base_url, "postgres"))
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


async def flush_redis(url: str) -> None:
    """Empty the bench's own Redis database (``GOVFLOW_BENCH_REDIS_URL``, db 13 by default)."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


class Served:
    """A server subprocess in its own process group; ``stop`` ends that group (by its id) only."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, log_path: Path) -> None:
        self.argv, self.env, self.port, self.log_path = argv, env, port, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, health_path: str = "/health", timeout: float = 60.0) -> "Served":
        import httpx

        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited ({self.proc.returncode}); see {self.log_path}")
                try:
                    if (await client.get(health_path)).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not healthy after {timeout} s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # start_new_session: the group id is the server's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=5)


def python() -> str:
    return sys.executable


__all__ = ["PG_BASE_URL", "REDIS_URL", "ROOT", "Served", "flush_redis", "free_port", "load", "percentiles",
           "pg_database", "python"]
