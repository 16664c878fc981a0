"""Hot reads and QR verification measured with ``wrk`` against the bare-Sanic ceiling, same run.

Python load generators saturate long before the server does (``bench/journey.py``'s httpx
client tops out near 1.7 k req/s), so these figures come from ``wrk`` (Debian package; ``make
bench`` installs it). One run:

1. the ceiling: ``bench/ceiling_app.py`` (bare Sanic, constant JSON) with the same worker count;
2. ``govflow serve`` (2 workers by default) on a fresh PostgreSQL database + Redis, migrated and
   seeded with the demo data (``govflow seed-demo``), plus one citizen (WeChat login through the
   local fake, real-name binding) whose 秒批 application (``senior-card``) issued a certificate,
   and a registered verifier (so the per-address limit of anonymous scans does not answer 429);
3. ``wrk`` against govflow's ``/health``, the catalogue (``GET /api/v1/services``), the citizen's
   case detail (``GET /api/v1/applications/<id>`` with its bearer token) and QR verification
   (``POST /api/v1/certificates/verify``, a lua script);
4. the ceiling again: each ratio is to the mean of the two ceiling runs (the machine is shared).

Prints one JSON document (also ``bench/results/reads.json``) with req/s, latency, non-2xx
answers, ratios, the date, the load average before and after and the machine. Usage:

    python bench/reads.py [--seconds 10] [--connections 50] [--threads 2] [--workers 2] [--profile DIR]
                          [--endpoints verify]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.journey import FORM, population, processes_with, server_env  # noqa: E402
from bench.support import REDIS_URL, CpuMeter, Served, flush_redis, free_port, load, pg_database  # noqa: E402
from tests.fakes.wechat_server import FakeWeChat  # noqa: E402

KEY_ID = "bench-2026"


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"host": platform.node(), "cpu": model, "cores": os.cpu_count() or 0,
            "python": platform.python_version(), "kernel": platform.release()}


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return round(float(number) * _UNIT[unit], 3)


def parse_wrk(out: str) -> dict[str, Any]:
    """Requests/s, non-2xx/3xx answers, socket errors and latency percentiles from ``wrk --latency``."""
    result: dict[str, Any] = {"requests_per_s": 0.0, "non_2xx": 0, "socket_errors": 0, "latency_ms": {}}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        result["requests_per_s"] = round(float(m.group(1)), 1)
    if m := re.search(r"(\d+) requests in", out):
        result["requests"] = int(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        result["non_2xx"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        result["socket_errors"] = sum(int(g) for g in m.groups())
    for pct in ("50", "90", "99"):
        if m := re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+(?:us|ms|s))\s*$", out, re.M):
            result["latency_ms"][f"p{pct}"] = _ms(m.group(1))
    return result


def run_wrk(url: str, args: argparse.Namespace, *, headers: dict[str, str] | None = None,
            script: Path | None = None, seconds: float | None = None, server: Served | None = None) -> dict[str, Any]:
    """One wrk run; with ``server``, also the CPU its processes spent per answered request (from
    /proc): on a shared machine throughput moves with the neighbours' load, CPU per request much less."""
    meter = CpuMeter(server.proc.pid if server is not None and server.proc is not None else None).start()
    result = _wrk(url, args, headers=headers, script=script, seconds=seconds)
    cpu = meter.stop()
    if server is not None and result.get("requests"):
        result["server_cpu_ms_per_request"] = round(cpu["server"] * 1000 / result["requests"], 3)
        result["server_cores_busy"] = round(cpu["server"] / cpu["wall_s"], 2) if cpu["wall_s"] else 0.0
    return result


def _wrk(url: str, args: argparse.Namespace, *, headers: dict[str, str] | None = None,
         script: Path | None = None, seconds: float | None = None) -> dict[str, Any]:
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{max(1, round(seconds or args.seconds))}s", "--latency"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def verify_script(token: str, verifier_key: str, into: Path) -> Path:
    """wrk lua: POST the token as JSON with the verifier's key."""
    path = into / "verify.lua"
    body = json.dumps({"token": token})
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["X-Verifier-Key"] = "{verifier_key}"\n', encoding="utf-8")
    return path


def profiler(served: Served, args: argparse.Namespace, name: str) -> subprocess.Popen[bytes] | None:
    """With ``--profile DIR``: py-spy samples the server's workers during the run into
    ``DIR/<endpoint>.txt`` (collapsed stacks: ``flamegraph.pl`` or speedscope read them)."""
    if not args.profile or served.proc is None:
        return None
    Path(args.profile).mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(served.proc.pid), "--subprocesses",
         "--nonblocking", "--rate", "200", "--format", "raw", "--duration", str(max(1, round(args.seconds))),
         "-o", str(Path(args.profile) / f"{name}.txt")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def ceiling(args: argparse.Namespace, workdir: Path, tag: str) -> dict[str, Any]:
    port = free_port()
    served = await Served([sys.executable, str(ROOT / "bench" / "ceiling_app.py"), str(port), str(args.workers)],
                          dict(os.environ), port, workdir / f"ceiling-{tag}.log").start()
    try:
        run_wrk(f"{served.url}/health", args, seconds=2)  # warm up
        return {**run_wrk(f"{served.url}/health", args, server=served), "load": load()}
    finally:
        served.stop()


async def register_verifier(database_url: str) -> str:
    """A registered verifier with the largest quota (the bench's scans all come from one address)."""
    from engine.certificates import verifiers
    from engine.store.db import close_db, init_db

    await init_db(database_url)
    try:
        _, key = await verifiers.register("压测核验点", "性能测试", verifiers.QUOTA_MAX, created_by="bench")
        return key
    finally:
        await close_db()


async def seed_citizen(base_url: str, person: dict[str, str]) -> dict[str, Any]:
    """Login, real-name binding, a 秒批 application: the token, the case and its certificate."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        login = (await client.post("/api/v1/auth/miniprogram", json={"code": f"ok-reads-{uuid.uuid4().hex[:6]}"})
                 ).json()
        auth = {"Authorization": f"Bearer {login['access_token']}"}
        r = await client.post("/api/v1/me/real-name", headers=auth,
                              json={"name": person["name"], "id_number": person["id_number"]})
        r.raise_for_status()
        r = await client.post("/api/v1/applications", headers=auth, json={"service": "senior-card", "form": FORM})
        r.raise_for_status()
        case = r.json()
        if not case.get("certificates"):
            raise RuntimeError(f"the application issued no certificate: {case.get('status')}")
        return {"auth": auth, "case_id": case["id"], "certificate": case["certificates"][0]}


async def certificate_row(database_url: str, cert_id: int) -> dict[str, Any]:
    from engine.store.certificate_models import Certificate
    from engine.store.db import close_db, init_db

    await init_db(database_url)
    try:
        row = await Certificate.get(id=cert_id)
        return {"identifier": row.identifier, "issuer_code": row.issuer_code, "issue_date": row.issue_date}
    finally:
        await close_db()


async def measure_govflow(args: argparse.Namespace, workdir: Path, wechat: FakeWeChat) -> dict[str, Any]:
    from engine.certificates import CertState, make_qr_token
    from engine.certificates.keys import SM2Signer

    person = population(1, seed=19)[0]
    processes_dir = processes_with([person], workdir)
    keys = workdir / "keys"
    keys.mkdir()
    signer = SM2Signer.generate(KEY_ID)
    (keys / f"{KEY_ID}.pem").write_text(signer.private_key_pem())
    govflow = str(Path(sys.executable).with_name("govflow"))
    await flush_redis(REDIS_URL)
    async with pg_database("govflow_bench_reads", keep=args.keep) as url:
        if args.keep:
            print(f"database kept: {url}", file=sys.stderr)
        env = server_env(url, REDIS_URL, processes_dir, keys, wechat, args.workers)
        for command in ("migrate", "seed-demo"):
            proc = await asyncio.create_subprocess_exec(govflow, command, env=env, cwd=ROOT,
                                                        stdout=asyncio.subprocess.DEVNULL)
            if await proc.wait() != 0:
                raise RuntimeError(f"govflow {command} failed")
        port = free_port()
        served = await Served([govflow, "serve", "--port", str(port), "--workers", str(args.workers)], env, port,
                              workdir / "govflow.log").start()
        try:
            seeded = await seed_citizen(served.url, person)
            verifier_key = await register_verifier(url)
            cert = await certificate_row(url, seeded["certificate"]["id"])
            token = make_qr_token(cert["identifier"], CertState.VALID, cert["issuer_code"], cert["issue_date"],
                                  3600, signer)
            script = verify_script(token, verifier_key, workdir)
            case_url = f"{served.url}/api/v1/applications/{seeded['case_id']}"
            runs = {
                "health": lambda **kw: run_wrk(f"{served.url}/health", args, **kw),
                "catalogue": lambda **kw: run_wrk(f"{served.url}/api/v1/services", args, **kw),
                "case_detail": lambda **kw: run_wrk(case_url, args, headers=seeded["auth"], **kw),
                "verify": lambda **kw: run_wrk(f"{served.url}/api/v1/certificates/verify", args, script=script,
                                               **kw),
            }
            results: dict[str, Any] = {}
            for name, run in runs.items():
                if args.endpoints and name not in args.endpoints:
                    continue
                run(seconds=2)  # warm up: connections, pools, caches
                spy = profiler(served, args, name)
                results[name] = {**run(server=served), "load": load()}
                if spy is not None:
                    spy.wait(timeout=60)
                print(f"govflow {name}: {results[name]['requests_per_s']} req/s, "
                      f"{results[name].get('server_cpu_ms_per_request')} ms server CPU per request", file=sys.stderr)
            return results
        finally:
            served.stop()
            await flush_redis(REDIS_URL)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="Sanic workers of both servers (default 2)")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "reads.json"))
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database (its URL on stderr)")
    parser.add_argument("--profile", help="sample govflow's workers with py-spy into DIR/<endpoint>.txt")
    parser.add_argument("--endpoints", type=lambda text: [e for e in text.split(",") if e], default=[],
                        help="only these of health,catalogue,case_detail,verify (default all): quicker "
                             "before/after pairs of one endpoint")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `make bench` installs it (Debian package wrk)")
    report: dict[str, Any] = {
        "bench": "reads", "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
        "wrk": {"threads": args.threads, "connections": args.connections, "seconds": args.seconds},
        "workers": args.workers, "database": "postgresql + redis", "load_start": load()}
    with tempfile.TemporaryDirectory(prefix="govflow-reads-") as tmp, FakeWeChat() as wechat:
        workdir = Path(tmp)
        before = await ceiling(args, workdir, "before")
        print(f"ceiling before: {before['requests_per_s']} req/s, "
              f"{before.get('server_cpu_ms_per_request')} ms CPU per request", file=sys.stderr)
        govflow = await measure_govflow(args, workdir, wechat)
        after = await ceiling(args, workdir, "after")
        print(f"ceiling after: {after['requests_per_s']} req/s", file=sys.stderr)
    top = (before["requests_per_s"] + after["requests_per_s"]) / 2 or 1.0
    report["ceiling"] = {"before": before, "after": after, "mean_requests_per_s": round(top, 1)}
    for result in govflow.values():
        result["vs_ceiling"] = round(result["requests_per_s"] / top, 3)
    report["govflow"] = govflow
    report["load_end"] = load()
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str))
    print(json.dumps(report, ensure_ascii=False, indent=2, default=str))


if __name__ == "__main__":
    asyncio.run(main())
