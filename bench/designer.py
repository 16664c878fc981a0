"""Designer benchmark: how long lint (the validate endpoint's work) and the generated diagram layout
take for each shipped process, in memory (no HTTP, no database).

Prints one JSON document: per process the median milliseconds of ``lint_bundle`` on its bundle
and of ``with_layout`` on its BPMN. Usage: ``python bench/designer.py [--n 20]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.bpmn.layout import with_layout  # noqa: E402
from engine.bpmn.lint import lint_bundle, load_departments  # noqa: E402
from engine.bpmn.parser import read_folder  # noqa: E402


def _median_ms(func, n: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(n):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    departments = load_departments(ROOT / "processes" / "departments.yaml")
    result = {}
    for folder in sorted(p for p in (ROOT / "processes").iterdir() if list(p.glob("*.bpmn"))):
        files = read_folder(folder)
        bpmn = next(text for name, text in files.items() if name.endswith(".bpmn"))
        result[folder.name] = {
            "bpmn_kb": round(len(bpmn.encode()) / 1024, 1),
            "lint_ms": _median_ms(lambda files=files: lint_bundle(files, departments=departments), args.n),
            "layout_ms": _median_ms(lambda bpmn=bpmn: with_layout(bpmn), args.n),
        }
    print(json.dumps({"runs": args.n, "processes": result}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
