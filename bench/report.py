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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--journey", default=str(RESULTS / "journey.json"))
    parser.add_argument("--scale", default=str(RESULTS / "scale.json"))
    parser.add_argument("--timers", default=str(RESULTS / "timers.json"))
    args = parser.parse_args()
    for path, render in ((args.journey, journey), (args.scale, scale), (args.timers, timers)):
        report = _load(path)
        if report is not None:
            print("\n".join(render(report)) + "\n")


if __name__ == "__main__":
    main()
