"""The staff workbench: staff accounts, inbox, task detail, task operations, window intake.

The names the HTTP edge (``mobile_api``) uses; it imports nothing else of this package."""

from engine.workbench.intake import MAX_FILES, Upload, window_intake
from engine.workbench.staff import HumanTask, StaffUser
from engine.workbench.task_detail import task_detail

__all__ = ["HumanTask", "MAX_FILES", "StaffUser", "task_detail", "Upload", "window_intake"]
