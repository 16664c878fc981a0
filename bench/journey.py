"""Citizen journey under load: N concurrent simulated mini-program clients against a real
``govflow serve`` subprocess.

Each journey, as a phone would do it on a connection of its own (each from its own loopback
address, so per-address rate limits see many citizens, not one): WeChat login (a local fake of
``jscode2session``, tests/fakes) → real-name binding → apply for ``senior-card`` → the live status
stream (SSE) until the case is final → the certificate's QR code (PNG). Applicants are a generated
population of distinct Shanghai residents aged 60+ (a copy of processes/ with a larger
demo/population.csv), so every application is a first one and is approved automatically.

Setups: PostgreSQL + Redis with 1 and 2 worker processes, SQLite with 1 (fresh databases, dropped
afterwards). The same client also measures read endpoints (the catalogue, a case detail) and the
machine's ceiling: a bare Sanic app answering constant JSON (bench/ceiling_app.py) with the same
worker count; every throughput is also given as a ratio to that ceiling. While the journeys run,
``bench.support.CpuMeter`` reads from /proc the CPU spent by the server's processes, this load
generator (with the fake WeChat server), PostgreSQL and Redis: ``cpu_ms_per_journey`` in the JSON.

Prints one JSON document and draws a chart (PNG). Usage:

    python bench/journey.py [--journeys 600] [--clients 50] [--read-seconds 5]
                            [--setups pg1,pg2,sqlite1] [--chart bench/results/journey.png]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import shutil
import ssl
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import h11
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import REDIS_URL, CpuMeter, Served, flush_redis, free_port, load, percentiles, pg_database  # noqa: E402
from tests.fakes.wechat_server import APPID, SECRET, FakeWeChat  # noqa: E402

FORM = {"phone": "13816612345", "address": {"region_code": "310104", "detail": "漕溪北路88弄3号602室"},
        "delivery": "electronic"}
FINAL = {"completed", "failed", "withdrawn"}
# One TLS context for every client: httpx loads the CA bundle for each client it makes otherwise
# (~10 ms, ~200 ms on a busy machine, blocking the loop), which a client per journey would measure.
TLS = ssl.create_default_context()
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜"
GIVEN = "建国秀英桂兰淑珍玉梅德明志强海燕丽华卫东文军红霞永福金凤春生秋菊国庆立新爱民振华"


# --------------------------------------------------------------------------- applicants
def population(count: int, seed: int = 7) -> list[dict[str, str]]:
    """``count`` distinct GB 11643-valid residents of 徐汇, aged 60 to 85 on 2026-11-29."""
    from stdnum.cn import ric

    rng = random.Random(seed)
    people, seen = [], set()
    first, last = date(1941, 12, 1), date(1966, 11, 28)
    while len(people) < count:
        born = first + timedelta(days=rng.randrange((last - first).days))
        seq = rng.randrange(1000)
        body = f"310104{born:%Y%m%d}{seq:03d}"
        if body in seen:
            continue
        seen.add(body)
        number = body + ric.calc_check_digit(body + "0")
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        people.append({"id_number": number, "name": name, "birth_date": born.isoformat(),
                       "gender": "男" if seq % 2 else "女", "phone": f"138{rng.randrange(10**8):08d}",
                       "region_code": "310104", "household_region": "310104"})
    return people


def processes_with(people: list[dict[str, str]], into: Path) -> Path:
    """A copy of processes/ whose demo population also holds ``people``."""
    target = into / "processes"
    shutil.copytree(ROOT / "processes", target)
    path = target / "demo" / "population.csv"
    with path.open("a", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(people[0]))
        writer.writerows(people)
    return target


def signing_key(into: Path) -> Path:
    """One SM2 signing key shared by every worker (a throw-away key per process would not verify
    across processes)."""
    from engine.certificates.keys import SM2Signer

    folder = into / "keys"
    folder.mkdir()
    (folder / "bench-2026.pem").write_text(SM2Signer.generate("bench-2026").private_key_pem())
    return folder


# --------------------------------------------------------------------------- journeys
@dataclass
class Outcome:
    ok: bool
    total_s: float = 0.0
    apply_s: float | None = None
    approved_s: float | None = None  # from sending the apply call to seeing the final status
    error: str | None = None


def source_address(i: int) -> str:
    """A loopback address of its own for journey ``i`` (127.1.0.1 onwards)."""
    n = i + 1
    return f"127.{1 + n // 65025}.{(n // 255) % 255}.{n % 255 or 1}"


class Answer:
    """One HTTP answer: status, lower-case headers, body."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code, self.headers, self.content = status_code, headers, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class Phone:
    """A phone's HTTP/1.1 connection: one keep-alive socket from its own source address.

    The journeys' client. httpx cost the load generator ~2 ms of CPU per call (client, transport,
    pool, header models), as much as a light govflow request, and the load generator shares the two
    cores with the server: with two workers it took CPU the second worker needed. This drives h11
    (the HTTP/1.1 state machine under httpx) on an asyncio stream directly; the rare status stream
    (SSE) goes through httpx (``_final_by_sse``)."""

    def __init__(self, base_url: str, local_address: str, timeout: float = 60) -> None:
        url = httpx.URL(base_url)
        self.base_url, self.local_address, self.timeout = base_url, local_address, timeout
        self.host, self.port = url.host, url.port or 80
        self._host = f"{self.host}:{self.port}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._http = h11.Connection(h11.CLIENT)

    async def __aenter__(self) -> "Phone":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._reader = self._writer = None
        self._http = h11.Connection(h11.CLIENT)

    async def request(self, method: str, path: str, *, json_body: Any = None,
                      headers: dict[str, str] | None = None) -> Answer:
        async with asyncio.timeout(self.timeout):
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(
                    self.host, self.port, local_addr=(self.local_address, 0))
            reader, writer, http = self._reader, self._writer, self._http
            assert reader is not None and writer is not None
            body = json.dumps(json_body).encode() if json_body is not None else b""
            fields = [("Host", self._host), *(headers or {}).items()]
            if json_body is not None:
                fields.append(("Content-Type", "application/json"))
            fields.append(("Content-Length", str(len(body))))
            writer.write(http.send(h11.Request(method=method, target=path, headers=fields))
                         + (http.send(h11.Data(data=body)) if body else b"") + http.send(h11.EndOfMessage()))
            status, answer_headers, parts = 0, {}, []
            while True:
                event = http.next_event()
                if event is h11.NEED_DATA:
                    http.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    answer_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    parts.append(bytes(event.data))
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    break
            if http.our_state is h11.DONE and http.their_state is h11.DONE:
                http.start_next_cycle()  # keep-alive: the next call reuses the socket
            else:
                self.close()
            return Answer(status, answer_headers, b"".join(parts))


async def journey(base_url: str, i: int, run: str, person: dict[str, str]) -> Outcome:
    began = time.perf_counter()
    async with Phone(base_url, source_address(i)) as phone:
        try:
            r = await phone.request("POST", "/api/v1/auth/miniprogram", json_body={"code": f"ok-{run}-{i}"})
            if r.status_code != 200:
                return Outcome(False, error=f"login {r.status_code} {r.text[:120]}")
            login = r.json()
            auth = {"Authorization": f"Bearer {login['access_token']}"}
            if not login["citizen"]["real_name_bound"]:
                r = await phone.request("POST", "/api/v1/me/real-name", headers=auth,
                                        json_body={"name": person["name"], "id_number": person["id_number"]})
                if r.status_code != 200:
                    return Outcome(False, error=f"real-name {r.status_code} {r.text[:120]}")
            sent = time.perf_counter()
            r = await phone.request("POST", "/api/v1/applications", json_body={"service": "senior-card", "form": FORM},
                                    headers={**auth, "Idempotency-Key": uuid.uuid4().hex})
            applied = time.perf_counter()
            if r.status_code != 201:
                return Outcome(False, error=f"apply {r.status_code} {r.text[:120]}")
            detail = r.json()
            approved_at = applied if detail["status"] in FINAL else await _final_by_sse(phone, auth, detail["id"])
            if detail["status"] not in FINAL or not detail.get("certificates"):
                detail = (await phone.request("GET", f"/api/v1/applications/{detail['id']}", headers=auth)).json()
            if detail.get("status") != "completed" or (detail.get("result") or {}).get("outcome") != "approved":
                return Outcome(False, error=f"not approved: {detail.get('status')}")
            cert_id = detail["certificates"][0]["id"]
            r = await phone.request("GET", f"/api/v1/certificates/{cert_id}/qrcode?format=png", headers=auth)
            if r.status_code != 200 or not r.content.startswith(b"\x89PNG"):
                return Outcome(False, error=f"qrcode {r.status_code}")
            return Outcome(True, time.perf_counter() - began, applied - sent, approved_at - sent)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, httpx.HTTPError,
                KeyError, ValueError, IndexError) as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {str(exc)[:120]}")


async def _final_by_sse(phone: Phone, auth: dict[str, str], case_id: int) -> float:
    transport = httpx.AsyncHTTPTransport(local_address=phone.local_address, verify=TLS)
    async with httpx.AsyncClient(base_url=phone.base_url, transport=transport, timeout=phone.timeout) as client, \
            client.stream("GET", f"/api/v1/applications/{case_id}/events", headers=auth) as response:
        async for line in response.aiter_lines():
            if line.startswith("data:") and json.loads(line[5:])["final"]:
                return time.perf_counter()
    raise ValueError("status stream ended before a final status")


async def run_journeys(base_url: str, people: list[dict[str, str]], clients: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(people)):
        queue.put_nowait(i)
    outcomes: list[Outcome] = []

    async def client_loop() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            outcomes.append(await journey(base_url, i, run, people[i]))

    began = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(clients)))
    elapsed = time.perf_counter() - began
    good = [o for o in outcomes if o.ok]
    errors: dict[str, int] = {}
    for o in outcomes:
        if not o.ok:
            key = (o.error or "?")[:80]
            errors[key] = errors.get(key, 0) + 1
    return {"journeys": len(outcomes), "completed": len(good), "errors": len(outcomes) - len(good),
            "error_kinds": dict(sorted(errors.items(), key=lambda kv: -kv[1])[:5]),
            "seconds": round(elapsed, 2), "journeys_per_s": round(len(good) / elapsed, 1),
            "apply_ms": percentiles([o.apply_s for o in good if o.apply_s is not None]),
            "apply_to_approved_ms": percentiles([o.approved_s for o in good if o.approved_s is not None]),
            "journey_ms": percentiles([o.total_s for o in good])}


async def hammer(base_url: str, path: str, clients: int, seconds: float,
                 headers: dict[str, str] | None = None) -> dict[str, Any]:
    """``clients`` keep-alive connections GETting ``path`` for ``seconds``: requests/s, latency."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=headers or {}, verify=TLS) as client:
            while time.perf_counter() < stop_at:
                t = time.perf_counter()
                try:
                    r = await client.get(path)
                    if r.status_code == 200:
                        latencies.append(time.perf_counter() - t)
                    else:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(clients)))
    elapsed = time.perf_counter() - began
    return {"path": path.split("?")[0], "requests_per_s": round(len(latencies) / elapsed, 1), "errors": errors,
            "latency_ms": percentiles(latencies)}


# --------------------------------------------------------------------------- setups
@dataclass
class Setup:
    name: str
    database: str  # postgres | sqlite
    workers: int
    result: dict[str, Any] = field(default_factory=dict)


def server_env(database_url: str, redis_url: str, processes_dir: Path, keys: Path, wechat: FakeWeChat,
               workers: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVFLOW_")}
    env.update({
        "GOVFLOW_ENV": "development", "GOVFLOW_DATABASE_URL": database_url, "GOVFLOW_REDIS_URL": redis_url,
        "GOVFLOW_PROCESSES_DIR": str(processes_dir), "GOVFLOW_WORKERS": str(workers),
        "GOVFLOW_LOG_LEVEL": "WARNING", "GOVFLOW_JWT_SECRET": "bench-only-jwt-secret-0123456789abcdef",
        "GOVFLOW_PII_KEY": "ab" * 32, "GOVFLOW_CERT_KEY_DIR": str(keys), "GOVFLOW_CERT_ACTIVE_KEY": "bench-2026",
        "GOVFLOW_WECHAT_APPID": APPID, "GOVFLOW_WECHAT_SECRET": SECRET, "GOVFLOW_WECHAT_API_BASE": wechat.url,
    })
    return env


async def measure_ceiling(workers: int, clients: int, seconds: float, workdir: Path) -> dict[str, Any]:
    port = free_port()
    served = await Served([sys.executable, str(ROOT / "bench" / "ceiling_app.py"), str(port), str(workers)],
                          dict(os.environ), port, workdir / f"ceiling-{workers}.log").start()
    try:
        await hammer(served.url, "/health", clients, 1.0)  # warm up
        return {**await hammer(served.url, "/health", clients, seconds), "load": load()}
    finally:
        served.stop()


async def measure_setup(setup: Setup, people: list[dict[str, str]], args: argparse.Namespace,
                        processes_dir: Path, keys: Path, wechat: FakeWeChat, workdir: Path) -> dict[str, Any]:
    govflow = str(Path(sys.executable).with_name("govflow"))

    async def against(database_url: str, redis_url: str) -> dict[str, Any]:
        env = server_env(database_url, redis_url, processes_dir, keys, wechat, setup.workers)
        migrate = await asyncio.create_subprocess_exec(govflow, "migrate", env=env, cwd=ROOT,
                                                       stdout=asyncio.subprocess.DEVNULL)
        if await migrate.wait() != 0:
            raise RuntimeError("govflow migrate failed")
        port = free_port()
        argv = [govflow, "serve", "--port", str(port), "--workers", str(setup.workers)]
        served = await Served(argv, env, port, workdir / f"{setup.name}.log").start()
        try:
            reader, warm = people[0], people[1:1 + min(20, len(people) // 10)]
            await run_journeys(served.url, warm, min(args.clients, len(warm)))  # load models, caches, pools
            measured = people[1 + len(warm):]
            before = load()
            spy = await _profiler(served, args, setup.name)
            meter = CpuMeter(served.proc.pid if served.proc else None).start()
            result = await run_journeys(served.url, measured, args.clients)
            cpu = meter.stop()
            if spy is not None:
                spy.send_signal(2)
                await spy.wait()
            done = result.get("completed") or 1
            result["cpu_s"] = cpu  # where the cores went while the journeys ran
            result["cpu_ms_per_journey"] = {k: round(v * 1000 / done, 1) for k, v in cpu.items()
                                            if k not in ("wall_s", "cores_busy")}
            result["load_before"], result["load_after"] = before, load()
            result["reads"] = await measure_reads(served.url, reader, args)
            return result
        finally:
            served.stop()

    if setup.database == "postgres":
        await flush_redis(REDIS_URL)
        async with pg_database("govflow_bench_journey") as url:
            try:
                return await against(url, REDIS_URL)
            finally:
                await flush_redis(REDIS_URL)
    sqlite = workdir / f"{setup.name}.sqlite3"
    try:
        return await against(f"sqlite://{sqlite}", "")
    finally:
        for leftover in workdir.glob(f"{setup.name}.sqlite3*"):
            leftover.unlink()


async def _profiler(served: Served, args: argparse.Namespace, name: str) -> Any:
    """With ``--profile``: py-spy sampling the server (and its workers) while the journeys run."""
    if not args.profile or served.proc is None:
        return None
    out = Path(args.profile).with_suffix(f".{name}.txt")
    return await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(served.proc.pid), "--subprocesses",
        "--nonblocking", "--rate", str(args.profile_rate), "--format", "raw", "-o", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


async def measure_reads(base_url: str, person: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """Read endpoints with keep-alive clients: the public catalogue and one citizen's case detail."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30,
                                 transport=httpx.AsyncHTTPTransport(local_address="127.0.99.1", verify=TLS)) as client:
        login = (await client.post("/api/v1/auth/miniprogram", json={"code": f"ok-reader-{uuid.uuid4().hex[:6]}"})
                 ).json()
        auth = {"Authorization": f"Bearer {login['access_token']}"}
        await client.post("/api/v1/me/real-name", headers=auth,
                          json={"name": person["name"], "id_number": person["id_number"]})
        await client.post("/api/v1/applications", headers=auth, json={"service": "senior-card", "form": FORM})
        cases = (await client.get("/api/v1/applications", headers=auth)).json()["items"]
    reads = {"catalogue": await hammer(base_url, "/api/v1/services", args.clients, args.read_seconds)}
    if cases:
        reads["case_detail"] = await hammer(base_url, f"/api/v1/applications/{cases[0]['id']}", args.clients,
                                            args.read_seconds, headers=auth)
    reads["health"] = await hammer(base_url, "/health", args.clients, args.read_seconds)
    return reads


def with_ratios(result: dict[str, Any], ceiling: dict[str, Any]) -> None:
    top = ceiling["requests_per_s"] or 1.0
    result["journeys_per_s_vs_ceiling"] = round(result["journeys_per_s"] / top, 4)
    for read in result.get("reads", {}).values():
        read["vs_ceiling"] = round(read["requests_per_s"] / top, 3)


def chart(report: dict[str, Any], path: Path) -> None:
    """Three panels: journeys/s, p99 latencies, read endpoints as % of the ceiling (targets dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    setups = [s for s in report["setups"] if "journeys_per_s" in s]
    names = [s["name"] for s in setups]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    bars = axes[0].bar(names, [s["journeys_per_s"] for s in setups], color="#3b7dd8")
    axes[0].bar_label(bars, fmt="%.1f")
    axes[0].axhline(150, color="#c33", linestyle="--", label="target 150/s (pg2)")
    axes[0].set_title("completed journeys / s")
    axes[0].legend()
    width = 0.38
    xs = range(len(names))
    bars = axes[1].bar([x - width / 2 for x in xs], [s["apply_ms"]["p99"] or 0 for s in setups], width,
                       label="apply p99")
    axes[1].bar_label(bars, fmt="%.0f")
    bars = axes[1].bar([x + width / 2 for x in xs], [s["apply_to_approved_ms"]["p99"] or 0 for s in setups], width,
                       label="apply→approved p99")
    axes[1].bar_label(bars, fmt="%.0f")
    axes[1].axhline(150, color="#c33", linestyle="--", label="target 150 ms")
    axes[1].set_xticks(list(xs), names)
    axes[1].set_title(f"latency p99 (ms), {report['clients']} clients")
    axes[1].legend()
    kinds = ["health", "catalogue", "case_detail"]
    for k, kind in enumerate(kinds):
        values = [s["reads"].get(kind, {}).get("vs_ceiling", 0) * 100 for s in setups]
        axes[2].bar([x + (k - 1) * 0.27 for x in xs], values, 0.27, label=kind)
    axes[2].axhline(40, color="#c33", linestyle="--", label="target 40 %")
    axes[2].set_xticks(list(xs), names)
    axes[2].set_title("read endpoints, % of bare-Sanic ceiling")
    axes[2].legend(fontsize=8)
    fig.suptitle(f"govflow journey benchmark — {report['when']}, load average {report['load_start']['load1']} "
                 f"on {report['load_start']['cpus']} cores (shared machine)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--journeys", type=int, default=600, help="journeys per setup (default 600)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--read-seconds", type=float, default=5.0, help="seconds per read-endpoint run")
    parser.add_argument("--setups", default="pg1,pg2,sqlite1", help="comma list of pg1, pg2, sqlite1")
    parser.add_argument("--chart", default=str(ROOT / "bench" / "results" / "journey.png"))
    parser.add_argument("--profile", help="sample the servers with py-spy into PATH.<setup>.txt (collapsed)")
    parser.add_argument("--profile-rate", type=int, default=50, help="py-spy samples per second (default 50)")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "journey.json"))
    parser.add_argument("--chart-only", action="store_true", help="redraw the chart from --json and stop")
    args = parser.parse_args()
    if args.chart_only:
        chart(json.loads(Path(args.json).read_text(encoding="utf-8")), Path(args.chart))
        return

    known = {"pg1": Setup("pg1", "postgres", 1), "pg2": Setup("pg2", "postgres", 2),
             "sqlite1": Setup("sqlite1", "sqlite", 1)}
    setups = [known[name.strip()] for name in args.setups.split(",") if name.strip()]
    per_setup = 1 + args.journeys + min(20, (args.journeys + 1) // 10)
    people = population(per_setup * len(setups))
    report: dict[str, Any] = {"bench": "journey", "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                              "clients": args.clients, "journeys_per_setup": args.journeys,
                              "load_start": load(), "ceiling": {}, "setups": []}
    with tempfile.TemporaryDirectory(prefix="govflow-bench-") as tmp, FakeWeChat() as wechat:
        workdir = Path(tmp)
        processes_dir = processes_with(people, workdir)
        keys = signing_key(workdir)
        for n, setup in enumerate(setups):
            mine = people[n * per_setup:(n + 1) * per_setup]
            # the ceiling right before each setup: this machine's load changes from minute to minute
            ceiling = await measure_ceiling(setup.workers, args.clients, args.read_seconds, workdir)
            report["ceiling"][setup.name] = ceiling
            print(f"ceiling, {setup.workers} worker(s): {ceiling['requests_per_s']} req/s", file=sys.stderr)
            try:
                result = await measure_setup(setup, mine, args, processes_dir, keys, wechat, workdir)
                with_ratios(result, ceiling)
            except Exception as exc:  # report the failure, keep measuring the others
                result = {"failed": f"{type(exc).__name__}: {exc}"}
            report["setups"].append({"name": setup.name, "database": setup.database, "workers": setup.workers,
                                     **result})
            print(f"{setup.name}: {result.get('journeys_per_s', result.get('failed'))} journeys/s, "
                  f"errors {result.get('errors')}", file=sys.stderr)
        if wechat.problems:
            report["wechat_protocol_problems"] = wechat.problems[:5]
    by_name = {s["name"]: s for s in report["setups"] if "journeys_per_s" in s}
    if "pg1" in by_name and "pg2" in by_name and by_name["pg1"]["journeys_per_s"]:
        report["pg2_vs_pg1"] = round(by_name["pg2"]["journeys_per_s"] / by_name["pg1"]["journeys_per_s"], 2)
    report["load_end"] = load()
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=2))
    chart(report, Path(args.chart))
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
