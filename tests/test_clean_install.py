"""``pip install .`` — the ``[project]`` dependencies only, no extras — gives a server that starts and
serves every page, as an operator installs it: a copy of the tree as a fresh clone has it, the
designer bundle built from the lock file (it is git-ignored; setup.py ships it as package data and
refuses to install without it), a new virtualenv from the base interpreter, then the source copy is
deleted so that everything runs from site-packages. ``govflow migrate``, ``seed-demo`` and ``serve``
run from that virtualenv; /health, /ready, /m/, /console/ and /designer/ answer with their scripts.

Takes a minute or so (pip installs from its local wheel cache, npm from its cache).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.install_support import (
    build_designer,
    check_pages,
    clean_env,
    copy_tree,
    make_venv,
    pip_install,
    stop,
    wait_healthy,
)
from tests.scale.cluster import free_port

pytestmark = [pytest.mark.sqlite_only, pytest.mark.timeout(900)]
IMPORT_ALL = """
import importlib, pkgutil
failed = []
for top in ("engine", "forms", "mobile_api"):
    for info in pkgutil.walk_packages(importlib.import_module(top).__path__, top + "."):
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed.append(f"{info.name}: {exc!r}")
print(failed)
"""


def test_pip_install_without_extras_serves_every_page(tmp_path: Path) -> None:
    src = copy_tree(tmp_path / "src")
    bin_dir = make_venv(tmp_path / "venv")
    refused = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(src)],
                             capture_output=True, text=True, env=clean_env(), timeout=600)
    assert refused.returncode != 0 and "make designer" in refused.stderr + refused.stdout  # no silent page loss
    build_designer(src / "web" / "designer")
    pip_install(bin_dir, str(src))
    shutil.rmtree(src)  # the server must run from what pip installed, not from the tree

    where = subprocess.run([str(bin_dir / "python"), "-c", "import engine, mobile_api.pages as p; "
                            "print(engine.__file__); print(p.WEB_ROOT)"], capture_output=True, text=True,
                           cwd=tmp_path, env=clean_env(), check=True).stdout.split()
    assert "site-packages" in where[0] and where[1].endswith("site-packages/govflow_web"), where
    every_module = subprocess.run([str(bin_dir / "python"), "-c", IMPORT_ALL], capture_output=True, text=True,
                                  cwd=tmp_path, env=clean_env(), timeout=300)
    assert every_module.returncode == 0 and every_module.stdout.strip() == "[]", every_module.stdout + \
        every_module.stderr  # a dependency only some endpoint or command imports is declared too
    tests_only = subprocess.run([str(bin_dir / "python"), "-c", "import pytest"], capture_output=True)
    assert tests_only.returncode != 0, "the test extra leaked into the clean install"

    run = tmp_path / "run"
    run.mkdir()
    port = free_port()
    env = clean_env(GOVFLOW_DATABASE_URL=f"sqlite://{run / 'govflow.sqlite3'}", GOVFLOW_UPLOAD_DIR=str(run / "up"),
                    GOVFLOW_HOST="127.0.0.1", GOVFLOW_PORT=str(port), GOVFLOW_LOG_LEVEL="WARNING")
    govflow = str(bin_dir / "govflow")
    for command in ("migrate", "seed-demo"):
        done = subprocess.run([govflow, command], cwd=run, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    assert "senior_card" in done.stdout  # seed-demo deployed the packaged processes

    log = run / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([govflow, "serve"], cwd=run, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(proc, base, log)
        seen = check_pages(base)
        assert seen["/ready"].json().get("status") in {"ok", "ready"}, seen["/ready"].text
    finally:
        assert stop(proc) == 0
    assert "Traceback" not in log.read_text(errors="replace")
