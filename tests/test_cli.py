"""The ``govflow`` command as a user runs it: a real subprocess, real exit codes and output."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURES

# These run the CLI against their own SQLite files, so they run once, in the SQLite pass.
pytestmark = pytest.mark.sqlite_only

ROOT = Path(__file__).resolve().parent.parent
MODELS = FIXTURES / "models"
SENIOR = {"birth_date": "1950-03-01", "apply_date": "2026-11-29", "region_code": "310104", "name": "张三"}


def govflow(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "mobile_api.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=ROOT, timeout=timeout)


def test_run_completes_parallel_dmn_model_and_prints_data() -> None:
    result = govflow("run", str(MODELS / "auto_check" / "auto_check.bpmn"), "--data", json.dumps(SENIOR))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["decision"] == "approve" and data["reason"] == "年满60周岁且为本地户籍"
    assert data["population_score"] + data["credit_score"] + data["residence_score"] == 30


def test_run_rejects_young_applicant() -> None:
    result = govflow("run", str(MODELS / "auto_check"), "--data", json.dumps({**SENIOR, "birth_date": "1990-01-01"}))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["decision"] == "reject"


def test_run_completes_user_tasks_with_task_data() -> None:
    task_data = {"intake": {"accepted": True, "age": 70}, "review": {"review_opinion": "同意"}}
    result = govflow("run", str(MODELS / "approval.bpmn"), "--task-data", json.dumps(task_data))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["score"] == 140 and data["review_opinion"] == "同意"


def test_run_bad_json_and_bad_files_give_one_line_no_traceback(tmp_path: Path) -> None:
    bad_json = govflow("run", str(MODELS / "approval.bpmn"), "--data", "{oops")
    assert bad_json.returncode == 2 and "--data: not valid JSON" in bad_json.stderr
    broken = tmp_path / "broken.bpmn"
    broken.write_text("<definitions><process", encoding="utf-8")
    empty = tmp_path / "empty.bpmn"
    empty.write_text("", encoding="utf-8")
    binary = tmp_path / "junk.bpmn"
    binary.write_bytes(b"\xff\xfe\x00\x01garbage")
    for path in (broken, empty, binary, tmp_path / "missing.bpmn"):
        result = govflow("run", str(path))
        assert result.returncode == 1, (path, result.stderr)
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("ERROR "), result.stderr


def test_run_reports_script_failure_with_task() -> None:
    result = govflow("run", str(MODELS / "auto_check"), "--data", json.dumps({**SENIOR, "birth_date": "bad"}))
    assert result.returncode == 1 and "prepare" in result.stderr and "Traceback" not in result.stderr


def test_run_not_completed_when_waiting_on_timer() -> None:
    result = govflow("run", str(MODELS / "timer"), "--data", json.dumps({"timeout": "PT1H"}), "--task-data",
                     '{"nothing": 1}')
    # the user task is completed with the given data, so the case ends on the normal path
    assert result.returncode == 0, result.stderr


def test_validate_exit_codes_and_one_line_per_file(tmp_path: Path) -> None:
    ok = govflow("validate", str(MODELS / "approval.bpmn"), str(MODELS / "auto_check"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert [line.split()[0] for line in ok.stdout.splitlines()] == ["OK", "OK"]
    junk = tmp_path / "junk.bpmn"
    junk.write_text("not xml at all", encoding="utf-8")
    mixed = govflow("validate", str(MODELS / "approval.bpmn"), str(junk))
    assert mixed.returncode == 1 and "Traceback" not in mixed.stderr
    lines = mixed.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("OK ") and lines[1].startswith(f"ERROR {junk}")


def test_migrate_and_seed_demo_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    db_file = tmp_path / "fresh.sqlite3"
    env = {"GOVFLOW_DATABASE_URL": f"sqlite://{db_file}", "GOVFLOW_DEMO_PASSWORD": "", "GOVFLOW_ENV": "development"}
    first = govflow("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "applied 0_" in first.stdout
    tables = {row[0] for row in sqlite3.connect(db_file).execute("select name from sqlite_master")}
    assert {"cases", "human_tasks", "case_events", "jobs", "process_definitions"} <= tables
    again = govflow("migrate", env=env)
    assert again.returncode == 0 and "up to date" in again.stdout
    seeded = govflow("seed-demo", env=env)
    assert seeded.returncode == 0, seeded.stderr
    assert "demo password (generated, shown once):" in seeded.stdout
    rows = sqlite3.connect(db_file).execute("select username, password_hash from staff_users").fetchall()
    assert ("clerk01" in {r[0] for r in rows}) and all(r[1].startswith("$argon2") for r in rows)
    prod = govflow("seed-demo", env={**env, "GOVFLOW_ENV": "production"})
    assert prod.returncode == 1 and "production" in prod.stderr

    # 回避 of one's own cases: link mca01 to its officer's ID number (stored as the keyed hash only)
    linked = govflow("staff-identity", "mca01", "310104196103150273", env=env)
    assert linked.returncode == 0 and "已关联" in linked.stdout, linked.stderr
    [(id_hash,)] = sqlite3.connect(db_file).execute("select id_hash from staff_users where username='mca01'")
    assert len(id_hash) == 64 and "310104196103150273" not in id_hash
    bad = govflow("staff-identity", "mca01", "310104196103150274", env=env)  # wrong check digit
    assert bad.returncode == 1 and "身份证号不正确" in bad.stderr and "Traceback" not in bad.stderr
    assert govflow("staff-identity", "nobody", "310104196103150273", env=env).returncode == 1
    cleared = govflow("staff-identity", "mca01", "--clear", env=env)
    assert cleared.returncode == 0 and "已取消" in cleared.stdout
    assert sqlite3.connect(db_file).execute("select id_hash from staff_users where username='mca01'").fetchall() == [
        (None,)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_answers_health_and_openapi(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "GOVFLOW_DATABASE_URL": f"sqlite://{tmp_path / 'serve.sqlite3'}", "GOVFLOW_REDIS_URL": ""}
    assert govflow("migrate", env=env).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "mobile_api.cli", "serve", "--port", str(port)], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("server did not come up") from None
                time.sleep(0.2)
        assert response.status_code == 200 and response.json()["status"] == "ok"
        spec = httpx.get(f"http://127.0.0.1:{port}/docs/openapi.json", timeout=5).json()
        assert spec["openapi"].startswith("3.") and "/health" in spec["paths"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
            raise AssertionError("govflow serve did not stop on SIGTERM") from None


def test_worker_fires_a_due_timer_and_stops_on_sigterm(tmp_path: Path) -> None:
    import asyncio
    import signal

    url = f"sqlite://{tmp_path / 'worker.sqlite3'}"
    env = {**os.environ, "GOVFLOW_DATABASE_URL": url, "GOVFLOW_JOB_POLL_MS": "100"}
    assert govflow("migrate", env=env).returncode == 0

    async def start_case() -> int:
        from engine import build_engine
        from engine.config import Settings
        from engine.store.db import close_db, init_db
        from tests.conftest import model_files

        await init_db(url)
        try:
            engine = build_engine(Settings(DATABASE_URL=url))
            definition = await engine.deploy(model_files("wait"))
            return (await engine.start_case(definition, service="publicity")).id
        finally:
            await close_db()

    case_id = asyncio.run(start_case())
    worker = subprocess.Popen([sys.executable, "-m", "mobile_api.cli", "worker"], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            row = sqlite3.connect(tmp_path / "worker.sqlite3").execute(
                "select status, version from cases where id = ?", (case_id,)).fetchone()
            status = row
            if row and row[0] == "completed":
                break
            time.sleep(0.2)
        assert status == ("completed", 2), status
        jobs = sqlite3.connect(tmp_path / "worker.sqlite3").execute("select status from jobs").fetchall()
        assert jobs == [("done",)]
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            output, _ = worker.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise AssertionError("govflow worker did not stop on SIGTERM") from None
    assert worker.returncode == 0, output
    assert "Traceback" not in output


def test_certificates_revoke_from_the_command_line(tmp_path: Path) -> None:
    """A certificate issued by a case is revoked by ``govflow certificates revoke ID --reason``: the
    register says 03 and the audit trail keeps the operator and reason; a second revoke, a missing
    reason and an unknown certificate are refused in one line without a traceback."""
    import asyncio

    db_file = tmp_path / "certs.sqlite3"
    url = f"sqlite://{db_file}"
    env = {**os.environ, "GOVFLOW_DATABASE_URL": url}
    assert govflow("migrate", env=env).returncode == 0

    async def issue() -> str:
        from engine import build_engine
        from engine.accountability.privacy import PiiKeys
        from engine.citizen.applications import ApplicationService
        from engine.citizen.catalog import Catalog
        from engine.config import Settings
        from engine.store.certificate_models import Certificate
        from engine.store.db import close_db, init_db
        from tests.processes.test_senior_card import FORM, WANG

        await init_db(url)
        try:
            settings = Settings(DATABASE_URL=url)
            applications = ApplicationService(build_engine(settings), Catalog.load(settings.PROCESSES_DIR),
                                              pii_key=PiiKeys.from_settings(settings).blind_index_key)
            await applications.apply("senior-card", FORM, applicant=WANG)
            return (await Certificate.get()).identifier
        finally:
            await close_db()

    identifier = asyncio.run(issue())
    revoked = govflow("certificates", "revoke", identifier, "--reason", "误发：申请人信息有误", env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert identifier in revoked.stdout and ": 03 " in revoked.stdout
    db = sqlite3.connect(db_file)
    assert db.execute("select state from certificates").fetchone() == ("03",)
    [(actor, detail)] = db.execute("select actor, detail from audit_log where kind = 'certificate.state'").fetchall()
    assert actor.startswith("cli:") and "误发：申请人信息有误" in json.loads(detail)["reason"]
    again = govflow("certificates", "restore", identifier, "--reason", "恢复", env=env)
    assert again.returncode == 1 and "不能恢复" in again.stderr and "Traceback" not in again.stderr
    missing = govflow("certificates", "revoke", identifier, env=env)
    assert missing.returncode == 2 and "--reason" in missing.stderr
    unknown = govflow("certificates", "suspend", "NO-SUCH-ID", "--reason", "x", env=env)
    assert unknown.returncode == 1 and "不存在" in unknown.stderr
