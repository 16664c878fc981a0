"""The staff workbench: staff accounts, inbox, task detail, task operations, window intake.

The names the HTTP edge (``mobile_api``) uses; it imports nothing else of this package."""

from engine.workbench.cases import receipt, search_cases
from engine.workbench.files import open_case_file, reveal_field
from engine.workbench.intake import MAX_FILES, Upload, window_intake
from engine.workbench.staff import HumanTask, StaffUser, link_identity
from engine.workbench.task_detail import application_spec, task_detail

__all__ = [
    "application_spec",
    "HumanTask",
    "link_identity",
    "MAX_FILES",
    "open_case_file",
    "receipt",
    "reveal_field",
    "search_cases",
    "StaffUser",
    "task_detail",
    "Upload",
    "window_intake",
]
