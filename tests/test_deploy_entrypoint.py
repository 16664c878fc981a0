"""The image's entrypoint (``deploy/entrypoint.sh``) run for real, as the container runs it: with
``govflow`` on PATH as the Dockerfile installs it (a shim for ``python -m mobile_api.cli``), on a
fresh SQLite file. ``serve`` migrates, then serves (``/health`` answers) and stops cleanly on
SIGTERM — the entrypoint ``exec``s, so the signal reaches govflow itself; ``worker`` runs the job
worker; ``MIGRATE_ON_START=0`` skips the migration; anything else is passed to ``govflow``.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.scale.cluster import free_port

pytestmark = pytest.mark.sqlite_only  # its own SQLite files: runs once, in the SQLite pass

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
MIGRATIONS = sorted(p.stem for p in (ROOT / "engine/store/migrations/models").glob("[0-9]*.py"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The container's environment, locally: the Dockerfile's ``govflow`` shim first on PATH."""
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    shim = re.search(r"printf '(#!/bin/sh\\nexec python -m mobile_api.cli \"\$@\"\\n)'", dockerfile)
    assert shim, "the Dockerfile installs a govflow shim"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "govflow").write_text(shim.group(1).replace("\\n", "\n"), encoding="utf-8")
    (bin_dir / "govflow").chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GOVFLOW_", "MIGRATE_"))}
    return {**clean, "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{clean.get('PATH', '')}",
            "PYTHONPATH": str(ROOT), "GOVFLOW_DATABASE_URL": f"sqlite://{tmp_path / 'govflow.sqlite3'}",
            "GOVFLOW_HOST": "127.0.0.1", "GOVFLOW_LOG_LEVEL": "WARNING"}


def _start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(["sh", str(ENTRYPOINT), *args], env=env, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
            raise AssertionError("did not stop on SIGTERM") from None
    return int(proc.returncode)


def _tables(env: dict[str, str]) -> set[str]:
    with sqlite3.connect(env["GOVFLOW_DATABASE_URL"].removeprefix("sqlite://")) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_serve_migrates_then_serves_and_stops_on_sigterm(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    proc = _start(env, log, "serve", "--port", str(port))
    try:
        deadline, health = time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health is not None and health.status_code == 200, log.read_text()
        assert health.json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).json()["checks"]["database"] == "ok"
        # the entrypoint exec'd: the process we started is govflow itself, so SIGTERM reaches it
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1:5] == [b"-m", b"mobile_api.cli", b"serve", b"--port"], cmdline
    finally:
        code = _stop(proc)
    output = log.read_text(encoding="utf-8")
    assert code == 0, output
    applied = [line.removeprefix("applied ").removesuffix(".py") for line in output.splitlines()
               if line.startswith("applied ")]
    assert applied == MIGRATIONS
    assert output.index("applied ") < output.index("govflow serving on http://127.0.0.1:")
    assert {"cases", "jobs", "aerich"} <= _tables(env)


def test_worker_and_passthrough_commands(env: dict[str, str], tmp_path: Path) -> None:
    migrated = subprocess.run(["sh", str(ENTRYPOINT), "migrate"], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
    assert migrated.returncode == 0 and migrated.stdout.count("applied ") == len(MIGRATIONS), migrated.stderr

    log = tmp_path / "worker.log"
    proc = _start({**env, "MIGRATE_ON_START": "0"}, log, "worker")
    try:
        deadline = time.monotonic() + 60
        while "govflow worker: polling" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
    finally:
        code = _stop(proc)
    output = log.read_text()
    assert code == 0 and "govflow worker: polling every 200 ms" in output, output
    assert "applied" not in output and "数据库已是最新" not in output  # MIGRATE_ON_START=0: no migration

    again = subprocess.run(["sh", str(ENTRYPOINT), "migrate"], env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0 and again.stdout.strip() == "数据库已是最新 (database up to date)"
    validated = subprocess.run(["sh", str(ENTRYPOINT), "validate", "processes/senior-card"], env=env, cwd=ROOT,
                               capture_output=True, text=True, timeout=120)
    assert validated.returncode == 0 and validated.stdout.startswith("OK "), validated.stdout + validated.stderr
