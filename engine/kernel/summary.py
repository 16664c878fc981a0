"""What the applicant's view needs of a case's data, in one shape across processes.

``summary_of`` is computed from the workflow's current data at every store (``engine.kernel.cases``) and
kept beside the state (``cases.summary``, sealed like it), so showing a case — the most frequent
read — never rebuilds the workflow.
"""

from __future__ import annotations

from typing import Any


def outcome_of(data: dict[str, Any]) -> dict[str, Any]:
    """The result: ``{outcome, reason, decided_by?}``."""
    result = data.get("result") if isinstance(data.get("result"), dict) else {}
    outcome = result.get("outcome") or data.get("outcome")
    reason = result.get("reason") or data.get("result_message") or data.get("reject_reason")
    view = {"outcome": outcome, "reason": reason}
    if result.get("decided_by"):
        view["decided_by"] = result["decided_by"]
    return {k: v for k, v in view.items() if v is not None}


def decision_of(data: dict[str, Any]) -> dict[str, Any] | None:
    """The automatic decision (秒批) with its rule, reason and input snapshot, when there was one."""
    decision = data.get("decision")
    if not isinstance(decision, dict) or "outcome" not in decision:
        return None
    keys = ("outcome", "rule", "reason", "inputs", "table")
    return {k: decision[k] for k in keys if k in decision}


def summary_of(data: dict[str, Any]) -> dict[str, Any]:
    """``{"decision": ..., "result": ...}`` of a case's current data (``engine.kernel.cases.current_data``)."""
    return {"decision": decision_of(data), "result": outcome_of(data)}


def result_columns(data: dict[str, Any]) -> dict[str, str | None]:
    """The plain ``cases.outcome`` / ``cases.decided_by`` columns: the outcome (cut to 16 characters) and
    ``auto`` when a rule decided it (``result.decided_by == "auto"``, or an automatic decision made the
    outcome with no officer named), ``officer`` when an officer did, else None."""
    result = outcome_of(data)
    outcome = result.get("outcome")
    if not isinstance(outcome, str) or not outcome:
        return {"outcome": None, "decided_by": None}
    decided = result.get("decided_by")
    if decided not in ("auto", "officer"):
        decision = decision_of(data)
        decided = "auto" if decision is not None and decision.get("outcome") == outcome else None
    return {"outcome": outcome[:16], "decided_by": decided}


__all__ = ["decision_of", "outcome_of", "result_columns", "summary_of"]
