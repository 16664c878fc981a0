"""Modelling conventions that the linter, the clocks and the case views all read.

A lane named ``applicant`` (or 申请人) holds the steps that wait for the citizen: the SLA clock
pauses while one is open, and the linter accepts it without a department.
"""

from __future__ import annotations

APPLICANT_LANES = frozenset({"applicant", "申请人"})

__all__ = ["APPLICANT_LANES"]
