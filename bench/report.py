"""Markdown tables for the README from the benchmarks' JSON (bench/results/*.json).

Usage: ``python bench/report.py [--journey F] [--scale F] [--timers F]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _load(path: str) -> dict[str, Any] | None:
    file = Path(path)
    return json.loads(file.read_text(encoding="utf-8")) if file.exists() else None


def _ms(figures: dict[str, Any], *keys: str) -> str:
    return " / ".join("—" if figures.get(k) is None else f"{figures[k]:g}" for k in keys)


def journey(report: dict[str, Any]) -> list[str]:
    lines = [f"Journey ({report['when']}, {report['clients']} clients, {report['journeys_per_setup']} journeys "
             f"per setup, load at start {report['load_start']['load1']} on {report['load_start']['cpus']} cores):",
             "",
             "| setup | journeys/s | errors | apply p50/p95/p99 ms | apply→approved p50/p95/p99 ms | "
             "catalogue req/s (vs ceiling) | case detail req/s (vs ceiling) | ceiling req/s | load |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in report["setups"]:
        if "failed" in s:
            lines.append(f"| {s['name']} | failed: {s['failed']} | | | | | | | |")
            continue
        ceiling = report["ceiling"][s["name"]]
        reads = s.get("reads", {})

        def read(kind: str, reads: dict[str, Any] = reads) -> str:
            r = reads.get(kind)
            return f"{r['requests_per_s']:g} ({r['vs_ceiling'] * 100:.0f} %)" if r else "—"

        lines.append(
            f"| {s['name']} | **{s['journeys_per_s']:g}** | {s['errors']} | "
            f"{_ms(s['apply_ms'], 'p50', 'p95', 'p99')} | {_ms(s['apply_to_approved_ms'], 'p50', 'p95', 'p99')} | "
            f"{read('catalogue')} | {read('case_detail')} | {ceiling['requests_per_s']:g} | "
            f"{s['load_before']['load1']}→{s['load_after']['load1']} |")
    if "pg2_vs_pg1" in report:
        lines += ["", f"2 workers vs 1 worker (PostgreSQL + Redis): **{report['pg2_vs_pg1']}×**"]
    measured = [s for s in report["setups"] if "cpu_ms_per_journey" in s]
    if measured:
        lines += ["", "Where the cores went while the journeys ran (CPU ms per journey; the load generator "
                  "includes the fake WeChat server):", "",
                  "| setup | server | load generator | PostgreSQL | Redis | cores busy |", "|---|---|---|---|---|---|"]
        for s in measured:
            cpu = s["cpu_ms_per_journey"]
            lines.append(f"| {s['name']} | {cpu['server']:g} | {cpu['load_generator']:g} | {cpu['postgres']:g} | "
                         f"{cpu['redis']:g} | {s['cpu_s']['cores_busy']:g} of {report['load_start']['cpus']} |")
    return lines


def scale(report: dict[str, Any]) -> list[str]:
    lines = [f"Scale ({report['when']}, inbox of `{report['department']}` = 1/{report['departments']} of the tasks, "
             f"{report['samples']} samples each):", "",
             "| open tasks | certificates | load time (s) | inbox p50/p99 ms | verify p50/p99 ms | "
             "vs smallest (inbox p99, verify p99) | load |", "|---|---|---|---|---|---|---|"]
    for s in report["sizes"]:
        took = sum(v for k, v in s["load_seconds"].items())
        vs = s.get("vs_smallest", {})
        lines.append(f"| {s['tasks']:,} | {s['certificates']:,} | {took:.0f} | {_ms(s['inbox_ms'], 'p50', 'p99')} | "
                     f"{_ms(s['verify_ms'], 'p50', 'p99')} | {vs.get('inbox_p99', '—')}× / {vs.get('verify_p99', '—')}× "
                     f"| {s['load']['load1']} |")
    return lines


def timers(report: dict[str, Any]) -> list[str]:
    lines = [f"Timers ({report['when']}):", "",
             "| workers | timers in one minute | lateness p50/p99/max ms | > 1 s late | duplicates | jobs | load |",
             "|---|---|---|---|---|---|---|"]
    for r in report["rounds"]:
        lines.append(f"| {r['workers']} | {r['timers']:,} | {_ms(r['lateness_ms'], 'p50', 'p99', 'max')} | "
                     f"{r['later_than_1s']} | {r['duplicates']} | {r['jobs']} | "
                     f"{r['load_before']['load1']}→{r['load_after']['load1']} |")
    return lines


# Issue #19's goals: (label, goal text, test on the measured figure); figures come from the latest
# bench/results/{audit,reads,journey,engine}.json, each run measured against its own ceiling.
GOALS: list[tuple[str, str, Any]] = [
    ("audit appends/s, PostgreSQL, 32 writers ÷ 1 writer", "≥ 3×", lambda v: v >= 3),
    ("audit appends/s, PostgreSQL, 32 writers", "≥ 5,000/s", lambda v: v >= 5000),
    ("QR verification ÷ bare-Sanic ceiling (wrk, 2 workers)", "≥ 0.06×", lambda v: v >= 0.06),
    ("case detail ÷ ceiling", "≥ 0.08×", lambda v: v >= 0.08),
    ("catalogue ÷ ceiling", "≥ 0.5×", lambda v: v >= 0.5),
    ("server CPU ms per journey (pg1)", "≤ 10 ms", lambda v: v <= 10),
    ("govflow ÷ raw SpiffWorkflow, SQLite", "≥ 0.7×", lambda v: v >= 0.7),
    ("govflow ÷ raw SpiffWorkflow, PostgreSQL", "≥ 0.5×", lambda v: v >= 0.5),
    ("2 workers ÷ 1 worker journeys/s", "≥ 1.6×", lambda v: v >= 1.6),
]


def _figures(results: Path) -> dict[str, tuple[Any, str]]:
    """The goal table's measured values, each with where and when it was measured."""
    audit, reads = _load(str(results / "audit.json")), _load(str(results / "reads.json"))
    journey_, engine = _load(str(results / "journey.json")), _load(str(results / "engine.json"))
    found: dict[str, tuple[Any, str]] = {}
    if audit and "postgres_batch" in audit:
        load = audit.get("load_average", ["?"])[0]
        batch = audit["postgres_batch"]
        found[GOALS[0][0]] = (batch["scaling_32_vs_1"], f"bench/audit.py, load {load:.1f}" if load != "?" else "")
        found[GOALS[1][0]] = (batch["runs"]["32"]["appends_per_s"], found[GOALS[0][0]][1])
    if reads:
        where = f"bench/reads.py {reads['when']}, load {reads['load_start']['load1']}"
        for goal, key in ((GOALS[2][0], "verify"), (GOALS[3][0], "case_detail"), (GOALS[4][0], "catalogue")):
            found[goal] = (reads["govflow"][key]["vs_ceiling"], where)
    if journey_:
        where = f"bench/journey.py {journey_['when']}, load {journey_['load_start']['load1']}"
        setups = {s["name"]: s for s in journey_["setups"] if "failed" not in s}
        if "pg1" in setups:
            found[GOALS[5][0]] = (setups["pg1"]["cpu_ms_per_journey"]["server"], where)
        if "pg1" in setups and "pg2" in setups:
            found[GOALS[8][0]] = (round(setups["pg2"]["journeys_per_s"] / setups["pg1"]["journeys_per_s"], 2), where)
    if engine:
        where = f"bench/engine.py n={engine['n']}" + (f", load {engine['load_average'][0]:.1f}" if "load_average" in engine else "")
        # against raw SpiffWorkflow measured in the same process around the run (bench/engine.py
        # since 2026-12-07), else against the one raw run at the start
        found[GOALS[6][0]] = (engine["govflow_sqlite"].get("ratio_vs_adjacent_raw", engine["ratio_sqlite_vs_raw"]), where)
        if "ratio_postgres_vs_raw" in engine:
            found[GOALS[7][0]] = (engine["govflow_postgres"].get("ratio_vs_adjacent_raw", engine["ratio_postgres_vs_raw"]),
                                  where)
    return found


def goals(results: Path = RESULTS) -> list[str]:
    found = _figures(results)
    lines = ["Goals of issue #19 (each ratio from one run):", "",
             "| measure | measured | goal | met | where |", "|---|---|---|---|---|"]
    for label, goal, met in GOALS:
        if label not in found:
            lines.append(f"| {label} | — | {goal} | not measured | |")
            continue
        value, where = found[label]
        lines.append(f"| {label} | {value:g} | {goal} | {'yes' if met(value) else 'no'} | {where} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--goals", action="store_true", help="only the table of issue #19's goals")
    parser.add_argument("--journey", default=str(RESULTS / "journey.json"))
    parser.add_argument("--scale", default=str(RESULTS / "scale.json"))
    parser.add_argument("--timers", default=str(RESULTS / "timers.json"))
    args = parser.parse_args()
    if args.goals:
        print("\n".join(goals()))
        return
    for path, render in ((args.journey, journey), (args.scale, scale), (args.timers, timers)):
        report = _load(path)
        if report is not None:
            print("\n".join(render(report)) + "\n")


if __name__ == "__main__":
    main()
