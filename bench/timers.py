"""Timer precision: many timers due in the same minute, fired by real ``govflow worker`` processes.

A fresh PostgreSQL database (committed migrations, dropped afterwards) gets ``--timers`` cases of a
small process (start → timer catch event with a ``timeDate`` from the case data → script → end).
Their due times are spread evenly over one whole minute that starts after the cases are made.
Then 1 (and 2) ``govflow worker`` processes (``engine.kernel.jobs.JobRunner``, default poll interval)
run until every job is done. From the database: lateness (``fired_at - due_at``) p50/p99/max, how
many fired more than 1 s late, duplicates (a case whose after-timer step ran twice, a job fired
twice) and jobs left pending or failed.

    python bench/timers.py                      # 2 000 timers, 1 and 2 workers
    python bench/timers.py --timers 10000       # the issue's size
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import REDIS_URL, flush_redis, load, percentiles, pg_database  # noqa: E402

MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D_bench_timer"
                  targetNamespace="http://govflow.example/bench">
  <bpmn:process id="bench_timer" name="定时器基准" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="wait" name="到期">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition id="wait_timer"><bpmn:timeDate>due</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:scriptTask id="after" name="到期处理">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>fired = True</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait" />
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="after" />
    <bpmn:sequenceFlow id="f3" sourceRef="after" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


async def make_cases(engine: Any, definition: Any, n: int, first_due: datetime, concurrency: int) -> None:
    """``n`` cases whose timers fall evenly over the minute from ``first_due``."""
    from tqdm import tqdm

    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    bar = tqdm(total=n, desc="cases", unit="cases", file=sys.stderr, mininterval=1.0)

    async def starter() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            due = first_due + timedelta(seconds=60 * i / n)
            await engine.start_case(definition, service="bench-timer", data={"due": due.isoformat()})
            bar.update(1)

    await asyncio.gather(*(starter() for _ in range(concurrency)))
    bar.close()


async def run_round(workers: int, n: int, margin_s: float, concurrency: int) -> dict[str, Any]:
    from tortoise import Tortoise

    from engine import build_engine
    from engine.config import Settings
    from engine.store.db import init_db
    from engine.store.models import CaseEvent, Job
    govflow = str(Path(sys.executable).with_name("govflow"))
    async with pg_database("govflow_bench_timers") as url:
        settings = Settings(DATABASE_URL=url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVFLOW_")}
        env.update({"GOVFLOW_DATABASE_URL": url, "GOVFLOW_REDIS_URL": REDIS_URL, "GOVFLOW_LOG_LEVEL": "WARNING"})
        migrating = await asyncio.create_subprocess_exec(govflow, "migrate", env=env, cwd=ROOT,
                                                         stdout=asyncio.subprocess.DEVNULL)
        if await migrating.wait() != 0:  # a subprocess: aerich cannot run twice in one process
            raise RuntimeError("govflow migrate failed")
        await init_db(url)
        try:
            engine = build_engine(settings)
            definition = await engine.deploy({"bench_timer.bpmn": MODEL})
            # how fast can cases be made here, now? (the calibration cases wait a day and are left alone)
            began = time.perf_counter()
            await make_cases(engine, definition, 50, datetime.now(timezone.utc) + timedelta(days=1), concurrency)
            rate = 50 / (time.perf_counter() - began)
            setup_s = n / rate * 1.3 + margin_s
            first_due = datetime.now(timezone.utc) + timedelta(seconds=setup_s)
            first_due = first_due.replace(second=0, microsecond=0) + timedelta(minutes=1)  # a whole minute
            made_at = time.perf_counter()
            await make_cases(engine, definition, n, first_due, concurrency)
            setup_took = time.perf_counter() - made_at
            spare = (first_due - datetime.now(timezone.utc)).total_seconds()
            if spare < 0:
                print(f"warning: making the cases overran the first due time by {-spare:.1f} s", file=sys.stderr)
            await flush_redis(REDIS_URL)
            procs = [await asyncio.create_subprocess_exec(govflow, "worker", env=env, cwd=ROOT,
                                                          stdout=asyncio.subprocess.DEVNULL)
                     for _ in range(workers)]
            load_before = load()
            try:
                deadline = first_due + timedelta(minutes=10)
                while datetime.now(timezone.utc) < deadline:
                    done = await Job.filter(status="done").count()
                    if done >= n:
                        break
                    await asyncio.sleep(1.0)
            finally:
                for proc in procs:
                    proc.terminate()
                for proc in procs:
                    await proc.wait()
            load_after = load()
            jobs = await Job.filter(due_at__gte=first_due, due_at__lt=first_due + timedelta(minutes=1)).values(
                "status", "due_at", "fired_at")
            late = [(j["fired_at"] - j["due_at"]).total_seconds() for j in jobs if j["fired_at"] is not None]
            after_runs = await CaseEvent.filter(kind="step_done", task_name="到期处理").count()
            cases_fired = len({e["case_id"] for e in await CaseEvent.filter(
                kind="step_done", task_name="到期处理").values("case_id")})
            statuses: dict[str, int] = {}
            for job in jobs:
                statuses[job["status"]] = statuses.get(job["status"], 0) + 1
            last_fire = max((j["fired_at"] for j in jobs if j["fired_at"] is not None), default=None)
            return {
                "workers": workers, "timers": n, "jobs": statuses,
                "lateness_ms": percentiles(late), "early": sum(1 for x in late if x < 0),
                "later_than_1s": sum(1 for x in late if x > 1.0),
                "duplicates": after_runs - cases_fired,
                "last_fired_s_after_first_due": round((last_fire - first_due).total_seconds(), 2)
                if last_fire else None,
                "setup_seconds": round(setup_took, 1), "load_before": load_before, "load_after": load_after,
            }
        finally:
            await Tortoise.close_connections()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timers", type=int, default=2000, help="timers due in the minute (default 2000)")
    parser.add_argument("--workers", default="1,2", help="worker counts to run, e.g. 1,2")
    parser.add_argument("--concurrency", type=int, default=8, help="cases started at once during setup")
    parser.add_argument("--margin", type=float, default=10.0, help="seconds of slack before the due minute")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "timers.json"))
    args = parser.parse_args()
    report: dict[str, Any] = {"bench": "timers", "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                              "rounds": []}
    for workers in [int(w) for w in args.workers.split(",")]:
        result = await run_round(workers, args.timers, args.margin, args.concurrency)
        report["rounds"].append(result)
        print(f"{workers} worker(s): lateness p99 {result['lateness_ms']['p99']} ms, "
              f"duplicates {result['duplicates']}", file=sys.stderr)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)  # after each round: keep what is done
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str))
    await flush_redis(REDIS_URL)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str))
    print(json.dumps(report, ensure_ascii=False, indent=2, default=str))


if __name__ == "__main__":
    asyncio.run(main())
