"""Every timeline entry has a Chinese label, for the citizen and for staff: the event kinds the code
writes (``CaseEvent.create(kind=…)``, step events ``{"kind": …}``, the workbench's ``_event(task, …)``)
are read from the source, so a new kind without a label fails here instead of showing a raw code."""

from __future__ import annotations

import re
from pathlib import Path

from engine.citizen.case_views import EVENT_LABELS, STAFF_ONLY_KINDS
from engine.workbench.staff import STAFF_EVENT_LABELS

ROOT = Path(__file__).resolve().parents[3]
PATTERNS = (re.compile(r'CaseEvent\.create\([^)]*?kind="(\w+)"', re.S), re.compile(r'"kind": "(\w+)", "task_id"'),
            re.compile(r'\{"kind": "(\w+)"\}'), re.compile(r'_event\(\w+, "(\w+)"'))
INTERNAL = {"bpmn_event"}  # Spiff's own bookkeeping, never shown


def written_kinds() -> set[str]:
    kinds: set[str] = set()
    for path in [*(ROOT / "engine").rglob("*.py"), *(ROOT / "mobile_api").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        for pattern in PATTERNS:
            kinds.update(pattern.findall(text))
    return kinds - INTERNAL


def test_the_scan_finds_the_kinds_the_issue_named() -> None:
    assert {"task_claimed", "signer_added", "completion_withdrawn", "supplement_requested",
            "review_decided", "task_transferred", "case_completed"} <= written_kinds()


def test_every_kind_has_a_chinese_label_for_staff_and_citizens() -> None:
    han = re.compile(r"[\u4e00-\u9fff]")
    for kind in sorted(written_kinds()):
        assert han.search(STAFF_EVENT_LABELS.get(kind, "")), f"staff timeline shows raw {kind!r}"
        if kind not in STAFF_ONLY_KINDS:
            assert han.search(EVENT_LABELS.get(kind, "")), f"citizen timeline shows raw {kind!r}"
