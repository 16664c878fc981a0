"""A small govflow cluster of real processes for scale-out tests: ``govflow migrate``, ``seed-demo``,
then N ``govflow serve`` processes (each on a free port) and M ``govflow worker`` processes, all
pointed at one PostgreSQL database and one Redis (under a key prefix of their own).

Every process is started with ``start_new_session`` and stopped by its own pid (SIGTERM, then
SIGKILL after a grace period); output goes to files so a full pipe never blocks a process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]


@dataclass
class Cluster:
    env: dict[str, str]
    logs: Path
    procs: list[Proc] = field(default_factory=list)

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """One ``govflow`` command to completion (``migrate``, ``seed-demo``)."""
        return subprocess.run([sys.executable, "-m", "mobile_api.cli", *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)

    def start(self, name: str, *args: str, port: int | None = None) -> Proc:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen([sys.executable, "-m", "mobile_api.cli", *args], env=self.env, cwd=ROOT,
                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        proc = Proc(name, popen, log, port)
        self.procs.append(proc)
        return proc

    def serve(self, name: str) -> Proc:
        port = free_port()
        return self.start(name, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1", port=port)

    def wait_ready(self, proc: Proc, deadline: float) -> None:
        """Poll ``/ready`` until it answers 200 (database and Redis reachable)."""
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise AssertionError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.output()}")
            try:
                if httpx.get(f"{proc.url}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{proc.name} not ready in time:\n{proc.output()}")

    def stop_all(self, grace_s: float = 10) -> None:
        for proc in self.procs:
            if proc.popen.poll() is None:
                os.kill(proc.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in self.procs:
            try:
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.popen.pid, signal.SIGKILL)  # its own session: the process and its children
                proc.popen.wait(5)
