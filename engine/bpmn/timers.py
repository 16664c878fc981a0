"""Timer values as designers write them.

SpiffWorkflow evaluates ``timeDate``/``timeDuration``/``timeCycle`` as Python expressions, so a
duration must be the string ``'PT5M'``. Designers used to Camunda or Flowable write the bare ISO
8601 value (``PT5M``, ``R3/PT1H``, ``2030-01-01T09:00:00``). Both are accepted: a bare value
that parses as the ISO 8601 form the timer kind needs is quoted before SpiffWorkflow parses the
model (``quote_bare_timers``), so the stored XML stays as the designer wrote it and the engine
runs it. Anything else stays a Python expression (e.g. a variable holding the due date).
"""

from __future__ import annotations

import ast
from datetime import datetime

from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

TIMER_KINDS = ("timeDate", "timeDuration", "timeCycle")
_BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"


def timer_problem(kind: str, value: str) -> str | None:
    """Why SpiffWorkflow's timer parsing would reject ``value``, or None when it accepts it."""
    try:
        if kind == "timeDuration":
            TimerEventDefinition.parse_iso_duration(value)
        elif kind == "timeCycle":
            TimerEventDefinition.parse_iso_recurring_interval(value)
        elif not isinstance(TimerEventDefinition.parse_time_or_duration(value), datetime):
            return "is not an ISO 8601 date-time"
    except Exception:
        expected = {"timeDuration": "duration such as 'PT2H' or 'P3D'",
                    "timeCycle": "repeating interval such as 'R3/PT1H'"}.get(kind, "date-time")
        return f"is not a valid ISO 8601 {expected}"
    return None


def is_bare_iso(kind: str, text: str | None) -> bool:
    """True when ``text`` is an unquoted ISO 8601 value of the timer ``kind`` (Camunda style)."""
    value = (text or "").strip()
    if not value or value[0] in "'\"" or len(value) > 100:
        return False
    try:
        tree = ast.parse(value, mode="eval").body
        if isinstance(tree, ast.Constant) and isinstance(tree.value, str):
            return False  # already a Python string
    except (SyntaxError, ValueError):
        pass
    return timer_problem(kind, value) is None


def quote_bare_timers(root: etree._Element) -> int:
    """Quote bare ISO 8601 timer values in a parsed BPMN document, in place; returns how many."""
    changed = 0
    for kind in TIMER_KINDS:
        for el in root.iter(f"{_BPMN}{kind}"):
            if is_bare_iso(kind, el.text):
                el.text = repr((el.text or "").strip())
                changed += 1
    return changed


__all__ = ["TIMER_KINDS", "is_bare_iso", "quote_bare_timers", "timer_problem"]
