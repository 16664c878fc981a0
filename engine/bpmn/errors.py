"""Turn SpiffWorkflow parser and runtime exceptions into one-line, located reasons."""

from __future__ import annotations

from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException


def describe_parse_error(exc: BaseException) -> str:
    """One line: ``file:line element-id: message`` with whatever location the error carries."""
    if isinstance(exc, ValidationException):
        where = _location(exc.file_name, exc.line_number, exc.id)
        message = str(exc.args[0]) if exc.args else exc.__class__.__name__
        return f"{where}{_one_line(message)}"
    if isinstance(exc, SpiffWorkflowException):
        return _one_line(str(exc))
    detail = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
    return _one_line(f"the engine cannot read this model ({detail})")


def describe_run_error(exc: BaseException) -> str:
    """Where a running case failed: task, line of the script, message."""
    task = getattr(exc, "task", None)
    parts = []
    if task is not None:
        spec = task.task_spec
        parts.append(f"task {spec.bpmn_id or spec.name}" + (f" ({spec.bpmn_name})" if spec.bpmn_name else ""))
    line = getattr(exc, "line_number", None)
    if line:
        parts.append(f"line {line}")
    prefix = ", ".join(parts)
    message = _one_line(str(exc.args[0]) if exc.args else exc.__class__.__name__)
    return f"{prefix}: {message}" if prefix else message


def _location(file_name: str | None, line: object, element_id: str | None) -> str:
    where = file_name or ""
    if line not in (None, ""):
        where += f":{line}"
    if element_id:
        where += f" {element_id}"
    return f"{where}: " if where else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())
