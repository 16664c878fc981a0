"""The image's steps, done without a container engine (no Docker daemon runs here, and a real
build would need base images from outside): ``deploy/Dockerfile`` is read, and each stage's
instructions are repeated in a temporary directory standing in for the stage's file system —

- ``designer`` (Node): the COPY lines, then its RUN lines as written (``npm ci`` from the lock file,
  ``node build.mjs``);
- ``build``: the virtualenv and the RUN line that turns ``[project] dependencies`` into
  requirements.txt and installs it (pip's cache, not the network, makes it quick);
- ``runtime``: the uploads directory owned by the service user, the COPY lines (the build context as
  Dockerfile.dockerignore leaves it, so no local node_modules or designer build sneaks in), the
  designer bundle from the Node stage, the ``govflow`` shim, the ENV lines, then the ENTRYPOINT with
  the CMD, run as the Dockerfile's USER (uid 10001, not root) —

and the server that comes up serves /health, /ready and every page with its scripts, cannot write
its own source, and the runtime stage has no Node.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.install_support import check_pages, clean_env, copy_tree, stop, wait_healthy
from tests.scale.cluster import free_port

pytestmark = [pytest.mark.sqlite_only, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def stages() -> dict[str, list[str]]:
    """``{stage name: instructions}``, continuation lines joined, comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    instructions = [i.strip() for i in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines() if i.strip()]
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for instruction in instructions:
        start = re.fullmatch(r"FROM \S+ AS (\w+)", instruction)
        if start:
            current = found.setdefault(start.group(1), [])
        elif current is not None:
            current.append(instruction)
    return found


def _ignored(rel: str, patterns: list[str]) -> bool:
    """Dockerfile.dockerignore's rules: the last matching line wins (``!`` re-includes)."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if pattern == "**" or fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(rel, pattern + "/*") or \
                (pattern.startswith("**/") and fnmatch.fnmatch(Path(rel).name, pattern[3:])) or \
                any(part == pattern[3:] for part in Path(rel).parts if pattern.startswith("**/")):
            ignored = not negate
    return ignored


def build_context(tree: Path, dest: Path) -> Path:
    """``tree`` as the Docker client sends it: Dockerfile.dockerignore applied."""
    patterns = [line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree).as_posix()
        if path.is_file() and not _ignored(rel, patterns):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / rel)
    return dest


def _python_for(uid: int) -> str:
    """A Python 3.11+ interpreter the service user can run (pyenv's under /root is not readable)."""
    for candidate in (getattr(sys, "_base_executable", sys.executable), "/usr/bin/python3"):
        try:
            ok = subprocess.run([candidate, "-c", "import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))"],
                                user=uid, group=uid, extra_groups=[], capture_output=True)
        except PermissionError:
            continue
        if ok.returncode == 0:
            return candidate
    raise AssertionError(f"no Python 3.11+ with venv that uid {uid} can run")


@pytest.fixture
def fs_root() -> Iterator[Path]:
    """A world-traversable directory (tmp_path sits under a 0700 folder the service user cannot enter)."""
    path = Path(tempfile.mkdtemp(prefix="govflow-image-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_runtime_stage_has_no_node_and_takes_the_bundle_from_the_node_stage() -> None:
    found = stages()
    assert list(found) == ["designer", "build", "runtime"]
    assert any("npm ci" in i and "--ignore-scripts" in i for i in found["designer"])
    assert "COPY web/designer/package.json web/designer/package-lock.json ./" in found["designer"]
    runtime = " ".join(found["runtime"]).lower()
    assert "node" not in runtime.replace("--from=designer", "").replace("/src/web/designer", "") \
        and "npm" not in runtime
    assert "COPY --from=designer /src/web/designer/static ./web/designer/static" in found["runtime"]
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert "web/designer/node_modules" in ignore and "web/designer/static" in ignore


def test_image_steps_build_a_server_that_serves_every_page_as_the_service_user(
        fs_root: Path, tmp_path: Path) -> None:
    found = stages()
    context = build_context(copy_tree(tmp_path / "tree"), tmp_path / "context")
    assert not (context / "web/designer/node_modules").exists() and not (context / "tests").exists()
    [user] = [i for i in found["runtime"] if i.startswith("USER ")]
    uid = int(user.split()[1].split(":")[0])
    assert uid != 0 and any(f"--uid {uid}" in i for i in found["runtime"])
    python = _python_for(uid)
    roots = {name: fs_root / name for name in found}
    venv = roots["runtime"] / "opt/venv"  # built in "build", copied as is to "runtime": one place here

    def host(stage: str, path: str, workdir: Path) -> Path:
        if path.startswith("/opt/venv"):
            return venv / path.removeprefix("/opt/venv").lstrip("/")
        return roots[stage] / path.lstrip("/") if path.startswith("/") else workdir / path

    def run(stage: str, command: str, workdir: Path) -> None:
        command = command.replace("/opt/venv", str(venv))
        shim_bin = fs_root / "python-bin"  # `python` in the build stage is the base image's interpreter
        shim_bin.mkdir(exist_ok=True)
        if not (shim_bin / "python").exists():
            (shim_bin / "python").symlink_to(python)
        env = clean_env(PATH=f"{shim_bin}:{os.environ['PATH']}")
        done = subprocess.run(["sh", "-c", command], cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, (stage, command, done.stdout[-2000:], done.stderr[-2000:])

    env: dict[str, str] = {}
    for stage, instructions in found.items():
        workdir = roots[stage]
        workdir.mkdir(parents=True, exist_ok=True)
        for instruction in instructions:
            verb, _, rest = instruction.partition(" ")
            if verb == "WORKDIR":
                workdir = host(stage, rest, workdir)
                workdir.mkdir(parents=True, exist_ok=True)
            elif verb == "COPY":
                parts = shlex.split(rest)
                flags = [p for p in parts if p.startswith("--")]
                *sources, target = [p for p in parts if not p.startswith("--")]
                origin = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
                dest = host(stage, target, workdir)
                for source in sources:
                    src = host(origin, source, workdir) if origin else context / source
                    if origin == "build" and source == "/opt/venv":
                        assert dest == venv
                        continue
                    assert src.exists(), (stage, instruction)
                    final = dest / src.name if target.endswith("/") and src.is_file() else dest
                    if src.is_dir():
                        shutil.copytree(src, final, dirs_exist_ok=True)
                    else:
                        final.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(src, final)
                    mode = next((f.split("=", 1)[1] for f in flags if f.startswith("--chmod=")), None)
                    if mode:
                        final.chmod(int(mode, 8))
            elif verb == "RUN":
                if "apt-get" in rest:  # compilers for wheels without binaries: pip's cache has them here
                    continue
                if "groupadd" in rest:  # the service user: created in the image, a bare uid here
                    for created in re.findall(r"mkdir -p (\S+)", rest):
                        (roots[stage] / created.lstrip("/")).mkdir(parents=True, exist_ok=True)
                    for owned in re.findall(r"chown -R \S+ (\S+)", rest):
                        for path in [roots[stage] / owned.lstrip("/"), *(roots[stage] / owned.lstrip("/")).rglob("*")]:
                            os.chown(path, uid, uid)
                    continue
                if stage == "build" and "python -m venv" in rest and (venv / "bin/python").exists():
                    continue
                run(stage, rest, workdir)
            elif verb == "ENV" and stage == "runtime":
                for key, value in re.findall(r"(\w+)=(\S+)", rest):
                    env[key] = value

    app = roots["runtime"] / "app"
    assert (app / "web/designer/static/designer.js").stat().st_size > 100_000
    requirements = (roots["build"] / "src/requirements.txt").read_text().split()
    assert any(r.startswith("pydantic==") for r in requirements) and not any(r.startswith("pytest") for r in requirements)

    def translate(value: str) -> str:
        for image_path in ("/opt/venv", "/app", "/var/lib/govflow", "/usr/local/bin"):
            value = value.replace(image_path, str(venv if image_path == "/opt/venv" else
                                                  roots["runtime"] / image_path.lstrip("/")))
        return value.replace("$PATH", f"{roots['runtime'] / 'usr/local/bin'}:/usr/bin:/bin")

    data = roots["runtime"] / "var/lib/govflow"
    port = free_port()
    server_env = {**clean_env(), **{k: translate(v) for k, v in env.items()}, "HOME": str(data),
                  "GOVFLOW_HOST": "127.0.0.1", "GOVFLOW_PORT": str(port), "GOVFLOW_LOG_LEVEL": "WARNING",
                  "GOVFLOW_DATABASE_URL": f"sqlite://{data / 'govflow.sqlite3'}"}
    [entrypoint] = [json.loads(i.split(" ", 1)[1]) for i in found["runtime"] if i.startswith("ENTRYPOINT ")]
    [cmd] = [json.loads(i.split(" ", 1)[1]) for i in found["runtime"] if i.startswith("CMD ")]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*entrypoint, *cmd], cwd=app, env=server_env, stdout=out, stderr=subprocess.STDOUT,
                                user=uid, group=uid, extra_groups=[], start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(proc, base, log)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert re.search(rf"^Uid:\s+{uid}\s", status, re.M), status  # entrypoint exec'd govflow as the user
        check_pages(base)
        writes = subprocess.run([str(venv / "bin/python"), "-c", f"open({str(app / 'engine/x.py')!r}, 'w')"],
                                user=uid, group=uid, extra_groups=[], capture_output=True, text=True)
        assert writes.returncode != 0 and "Permission denied" in writes.stderr  # the source is read-only
    finally:
        assert stop(proc) == 0
    assert "Traceback" not in log.read_text(errors="replace")
