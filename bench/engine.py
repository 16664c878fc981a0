"""Engine benchmark: govflow's durable engine vs raw SpiffWorkflow on the same automatic process.

The process (tests/fixtures/models/auto_check): start, scripts, a parallel split into three
branches of two scripts each, join, a DMN business rule task, an exclusive gateway, end —
about fifteen tasks. Raw SpiffWorkflow runs it in memory and serializes once at the end;
govflow starts a real case and persists it (SQLite, then PostgreSQL). A second model of 100
sequential script tasks shows how per-task cost grows with the task tree.

Prints one JSON document. Usage: ``python bench/engine.py [--n 300] [--no-postgres]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from SpiffWorkflow.bpmn import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine  # noqa: E402
from SpiffWorkflow.bpmn.script_engine.python_environment import TaskDataEnvironment  # noqa: E402
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer  # noqa: E402
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG  # noqa: E402

from engine.bpmn.parser import build_bundle, read_folder  # noqa: E402
from engine.config import Settings  # noqa: E402

MODEL = ROOT / "tests" / "fixtures" / "models" / "auto_check"
DATA = {"birth_date": "1950-03-01", "apply_date": "2026-11-29", "region_code": "310104", "name": "张三"}
PG_URL = os.environ.get("GOVFLOW_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/govflow_bench")


def _age_on(birth: str | date, on: date) -> int:
    born = date.fromisoformat(birth) if isinstance(birth, str) else birth
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def long_model(n_tasks: int) -> dict[str, str]:
    """A process of ``n_tasks`` sequential script tasks, to measure per-task cost growth."""
    nodes, flows = [], []
    previous = "start"
    for i in range(n_tasks):
        nodes.append(f'<bpmn:scriptTask id="s{i}"><bpmn:incoming>f{i}</bpmn:incoming>'
                     f'<bpmn:outgoing>f{i + 1}</bpmn:outgoing><bpmn:script>counter = counter + 1</bpmn:script>'
                     f'</bpmn:scriptTask>')
        flows.append(f'<bpmn:sequenceFlow id="f{i}" sourceRef="{previous}" targetRef="s{i}" />')
        previous = f"s{i}"
    flows.append(f'<bpmn:sequenceFlow id="f{n_tasks}" sourceRef="{previous}" targetRef="end" />')
    xml = ('<?xml version="1.0" encoding="UTF-8"?>'
           '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" '
           'targetNamespace="http://govflow.example/bench"><bpmn:process id="long" isExecutable="true">'
           '<bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>'
           + "".join(nodes) + f'<bpmn:endEvent id="end"><bpmn:incoming>f{n_tasks}</bpmn:incoming></bpmn:endEvent>'
           + "".join(flows) + "</bpmn:process></bpmn:definitions>")
    return {"long.bpmn": xml}


def bench_raw(files: dict[str, str], data: dict, n: int) -> float:
    """Raw SpiffWorkflow: parse once, run n instances in memory, one serialization at the end."""
    bundle = build_bundle(files)
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    environment = TaskDataEnvironment({"age_on": _age_on, "parse_date": date.fromisoformat})
    start = time.perf_counter()
    for _ in range(n):
        workflow = BpmnWorkflow(bundle.spec, bundle.subprocess_specs,
                                script_engine=PythonScriptEngine(environment=environment))
        for task in workflow.get_tasks():
            task.data.update(data)
        workflow.do_engine_steps()
        assert workflow.completed
        serializer.serialize_json(workflow)
    return n / (time.perf_counter() - start)


def bench_raw_cpu(files: dict[str, str], data: dict, n: int) -> tuple[float, float]:
    """``bench_raw``'s instances/s and its CPU ms per instance."""
    cpu0 = time.process_time()
    rate = bench_raw(files, data, n)
    return rate, (time.process_time() - cpu0) / n * 1000


async def bench_govflow(url: str, files: dict[str, str], data: dict, n: int,
                        deployed_by: str | None = None) -> dict[str, float]:
    """govflow: n real cases, each started, run to its end and persisted. ``deployed_by`` a
    person's name: the model counts as designer-deployed, its scripts run in the sandbox pool."""
    from tortoise import Tortoise

    from engine import build_engine
    from engine.store.db import close_db, init_db
    from mobile_api.cli import migrate

    settings = Settings(DATABASE_URL=url)
    await migrate(settings, quiet=True)
    await init_db(url)
    try:
        engine = build_engine(settings)
        if deployed_by is not None:  # the API pre-starts the pool with the server
            engine.deps.script_engine_factory.keywords["pool"].wait_ready()
        definition = await engine.deploy(files, deployed_by=deployed_by)
        for _ in range(5):  # warm caches (bundle parse, compiled scripts)
            await engine.start_case(definition, service="bench", data=data)
        # raw SpiffWorkflow in this same process, just before and after: on a shared machine the
        # load moves between runs, so the ratio is also given against this adjacent measurement
        raw_before = bench_raw_cpu(files, data, max(10, n // 2))
        latencies = []
        cpu0 = time.process_time()
        start = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            result = await engine.start_case(definition, service="bench", data=data)
            latencies.append(time.perf_counter() - t0)
            assert result.status == "completed"
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0  # this process, all threads (the step thread, aiosqlite's)
        raw_after = bench_raw_cpu(files, data, max(10, n // 2))
        conn = Tortoise.get_connection("default")
        await conn.execute_script("DELETE FROM case_events; DELETE FROM human_tasks; DELETE FROM jobs; "
                                  "DELETE FROM cases;")
    finally:
        await close_db()
    latencies.sort()
    raw_rate = (raw_before[0] + raw_after[0]) / 2
    raw_cpu = (raw_before[1] + raw_after[1]) / 2
    return {"instances_per_s": round(n / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
            "cpu_ms_per_instance": round(cpu / n * 1000, 2),
            "raw_adjacent": {"instances_per_s": round(raw_rate, 1), "cpu_ms_per_instance": round(raw_cpu, 2)},
            "ratio_vs_adjacent_raw": round(n / elapsed / raw_rate, 2),
            "cpu_ratio_vs_adjacent_raw": round(raw_cpu / (cpu / n * 1000), 2)}


async def bench_offload(url: str, files: dict[str, str], data: dict, n: int) -> dict[str, float]:
    """What running steps off the event loop costs: the same cases with steps on the loop and in
    a worker thread, interleaved in blocks so machine load falls on both alike."""
    from engine import build_engine
    from engine.store.db import close_db, init_db
    from mobile_api.cli import migrate

    settings = Settings(DATABASE_URL=url)
    await migrate(settings, quiet=True)
    await init_db(url)
    try:
        engines = {mode: build_engine(settings, deps_overrides={"offload_steps": mode == "thread"})
                   for mode in ("loop", "thread")}
        definition = await engines["loop"].deploy(files)
        latencies: dict[str, list[float]] = {"loop": [], "thread": []}
        for block in range(20):
            for mode in ("loop", "thread") if block % 2 else ("thread", "loop"):
                for _ in range(max(1, n // 20)):
                    t0 = time.perf_counter()
                    result = await engines[mode].start_case(definition, service="bench", data=data)
                    latencies[mode].append(time.perf_counter() - t0)
                    assert result.status == "completed"
    finally:
        await close_db()
    loop, thread = (statistics.median(latencies[m]) * 1000 for m in ("loop", "thread"))
    return {"p50_ms_steps_on_loop": round(loop, 2), "p50_ms_steps_in_thread": round(thread, 2),
            "thread_vs_loop": round(thread / loop, 3)}


def _offload_sync(url: str, files: dict[str, str], data: dict, n: int) -> dict[str, float]:
    return asyncio.run(bench_offload(url, files, data, n))


def govflow_in_fresh_process(url: str, files: dict[str, str], data: dict, n: int,
                             deployed_by: str | None = None) -> dict[str, float]:
    """Each database gets its own interpreter: Tortoise caches per-dialect queries on models."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_govflow_sync, url, files, data, n, deployed_by).result()


def _govflow_sync(url: str, files: dict[str, str], data: dict, n: int,
                  deployed_by: str | None = None) -> dict[str, float]:
    return asyncio.run(bench_govflow(url, files, data, n, deployed_by))


async def _reset_pg_database(url: str) -> None:
    import asyncpg

    base, name = url.rsplit("/", 1)
    conn = await asyncpg.connect(base.replace("postgres://", "postgresql://", 1) + "/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="instances per measurement")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", default=str(Path(__file__).resolve().parent / "results" / "engine.json"),
                        help="also write the JSON here (bench/report.py --goals reads it; '' to skip)")
    args = parser.parse_args()

    auto = read_folder(MODEL)
    long100 = long_model(100)
    results: dict[str, object] = {"process": "auto_check (~15 tasks)", "n": args.n}
    raw = bench_raw(auto, DATA, args.n)
    raw_long = bench_raw(long100, {"counter": 0}, max(20, args.n // 10))
    results["raw_spiff_instances_per_s"] = round(raw, 1)
    with tempfile.TemporaryDirectory() as tmp:
        lite = govflow_in_fresh_process(f"sqlite://{tmp}/bench.sqlite3", auto, DATA, args.n)
        lite_long = govflow_in_fresh_process(f"sqlite://{tmp}/bench_long.sqlite3", long100, {"counter": 0},
                                             max(20, args.n // 10))
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            offload = pool.submit(_offload_sync, f"sqlite://{tmp}/bench_offload.sqlite3", auto, DATA,
                                  args.n).result()
        # the same model deployed by a person: every script and condition runs in the sandbox pool
        isolated = govflow_in_fresh_process(f"sqlite://{tmp}/bench_iso.sqlite3", auto, DATA, args.n,
                                            deployed_by="designer-bench")
    results["govflow_sqlite"] = lite
    results["ratio_sqlite_vs_raw"] = round(lite["instances_per_s"] / raw, 2)
    results["govflow_sqlite_designer_deployed"] = isolated
    results["steps_off_the_event_loop"] = offload
    if not args.no_postgres:
        asyncio.run(_reset_pg_database(PG_URL))
        pg = govflow_in_fresh_process(PG_URL, auto, DATA, args.n)
        results["govflow_postgres"] = pg
        results["ratio_postgres_vs_raw"] = round(pg["instances_per_s"] / raw, 2)
    results["long_100_tasks"] = {
        "raw_spiff_instances_per_s": round(raw_long, 1),
        "govflow_sqlite": lite_long,
        "ratio_sqlite_vs_raw": round(lite_long["instances_per_s"] / raw_long, 2),
        "raw_ms_per_task": round(1000 / raw_long / 100, 3),
    }
    results["target"] = "govflow on SQLite >= 0.5x raw SpiffWorkflow"
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(results, ensure_ascii=False, indent=2)
    print(text)
    if args.json:  # as the other benchmarks do: `make bench`'s goal table reads this run, not an older file
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
