"""Helpers for the tests that install and run govflow as an operator would (tests/test_clean_install.py,
tests/test_deploy_image.py): copy the tree as a fresh clone has it, build the designer bundle from the
lock file, start a server and wait for /health, stop it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("/m/", "/console/", "/designer/")


def copy_tree(dest: Path) -> Path:
    """The files a fresh ``git clone`` of this tree has (tracked plus new, unignored files: what the
    next commit holds), without the virtualenv, node_modules or the built designer bundle."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if not src.is_file():  # deleted but not yet committed
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    assert not (dest / "web/designer/static").exists() and not (dest / ".venv").exists()
    return dest


def build_designer(designer: Path) -> None:
    """``npm ci`` from package-lock.json (npm's cache makes it quick) and the esbuild script."""
    npm = shutil.which("npm")
    assert npm, "npm is needed to build the designer bundle (make designer installs it)"
    subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"],
                   cwd=designer, check=True, capture_output=True, timeout=300)
    subprocess.run(["node", "build.mjs"], cwd=designer, check=True, capture_output=True, timeout=300)
    assert (designer / "static" / "designer.js").stat().st_size > 100_000


def make_venv(path: Path) -> Path:
    """A virtualenv from the base interpreter (not the test one): it sees none of the test packages."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(path)], check=True, timeout=120)
    return path / "bin"


def pip_install(bin_dir: Path, *args: str, cwd: Path | None = None) -> None:
    done = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOVFLOW_", "MIGRATE_", "PYTHON", "VIRTUAL_ENV"))}
    return {**env, **extra}


def wait_healthy(proc: subprocess.Popen[bytes], base: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"no /health within {timeout} s:\n{log.read_text(errors='replace')}")


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
            raise AssertionError("the server did not stop on SIGTERM") from None
    return int(proc.returncode)


def check_pages(base: str) -> dict[str, httpx.Response]:
    """/health, /ready and every page answer 200; every script and stylesheet a page names is served
    (the designer's bundle included). Returns the responses by path."""
    seen: dict[str, httpx.Response] = {}
    with httpx.Client(base_url=base, timeout=10) as client:
        for path in ("/health", "/ready", *PAGES):
            r = client.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
            seen[path] = r
        for page in PAGES:
            assets = re.findall(r'<(?:script[^>]+src|link[^>]+href)="(/[^"]+)"', seen[page].text)
            assert any(a.endswith(".js") for a in assets), (page, assets)
            for asset in assets:
                r = client.get(asset)
                assert r.status_code == 200 and len(r.content) > 200, (page, asset, r.status_code)
                seen[asset] = r
    assert seen["/designer/static/designer.js"].content.count(b"bpmn") > 10  # the real bundle
    return seen
