"""``validate``: lint one BPMN or DMN document the way a deploy would, without storing anything.

A BPMN document is linted in its bundle: the forms and DMN tables of the latest deployed
version of its process are carried over, as a deploy would do (``engine.designer.bundle``).
Hostile or non-model input raises (4xx); model problems are answered as findings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from engine.bpmn.lint import lint_bundle
from engine.designer import findings
from engine.designer.bundle import Upload, assemble
from engine.designer.deploy import PolicyOf, policy_findings
from engine.designer.model_input import read_model


async def validate(data: bytes | str, *, departments: Mapping[str, str] | None,
                   policy_of: PolicyOf | None = None) -> dict[str, Any]:
    """``{valid, errors, warnings, process_ids, decision_ids}`` for one uploaded document
    (with ``policy_of``: also checked against its service item's connector policy)."""
    model = read_model(data, "model")
    process_id = None
    if model.kind == "bpmn" and model.process_ids():
        assembled = await assemble(Upload(bpmn=model.text))
        files, process_id = assembled.files, assembled.process_id
    else:
        files = {"model.dmn" if model.kind == "dmn" else "model.bpmn": model.text}
    report = await asyncio.to_thread(lint_bundle, files, departments=departments)  # ~25-70 ms: off the loop
    errors = [*report.errors, *(policy_findings(files, process_id, policy_of) if process_id else [])]
    return {
        "valid": not errors,
        "errors": [findings.to_dict(f) for f in errors],
        "warnings": [findings.to_dict(f) for f in report.warnings],
        "process_ids": report.process_ids, "decision_ids": report.decision_ids,
    }


__all__ = ["validate"]
