"""Turn SpiffWorkflow parser and runtime exceptions into one-line, located reasons."""

from __future__ import annotations

from dataclasses import dataclass

from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException

from engine.errors import ScriptError

# Namespace URIs that make lxml/XSD messages unreadable, shown as their usual prefixes.
_NS_PREFIXES = {
    "{http://www.omg.org/spec/BPMN/20100524/MODEL}": "bpmn:",
    "{http://www.omg.org/spec/BPMN/20100524/DI}": "bpmndi:",
    "{http://spiffworkflow.org/bpmn/schema/1.0/core}": "spiffworkflow:",
    "{https://www.omg.org/spec/DMN/20191111/MODEL/}": "dmn:",
    "{http://www.omg.org/spec/DMN/20180521/MODEL/}": "dmn:",
    "{https://www.omg.org/spec/DMN/20230324/MODEL/}": "dmn:",
    "{http://www.omg.org/spec/DMN/20151101/dmn.xsd}": "dmn:",
}


class ScriptTimeout(ScriptError):
    """A script or expression ran past its time bound (``GOVFLOW_SCRIPT_TIMEOUT_MS``); in the
    sandbox process pool its worker was killed and replaced."""

    code = "script_timeout"
    default_message = "流程脚本运行超时，已被终止"


class ScriptTooLarge(ScriptError):
    """A script or expression asked for an operation too large to run (a huge number, text,
    list, sort or memory use); refused before it ran, or its worker ran out of memory."""

    code = "script_too_large"
    default_message = "流程脚本的运算规模超出限制，已被拒绝"


@dataclass(frozen=True)
class ParseErrorParts:
    """What a parser exception says about where it happened (any part may be unknown)."""

    file_name: str | None
    line: int | None
    element_id: str | None
    message: str


def parse_error_parts(exc: BaseException) -> ParseErrorParts:
    """Split a parser exception into file, line, element id and a one-line message.

    Spiff 3.2 raises bare TypeError/KeyError/AttributeError on some malformed models; those
    get a message saying the engine cannot read the model plus the original detail.
    """
    if isinstance(exc, ValidationException):
        message = str(exc.args[0]) if exc.args else exc.__class__.__name__
        line = exc.line_number if isinstance(exc.line_number, int) and exc.line_number > 0 else None
        return ParseErrorParts(exc.file_name or None, line, exc.id or None, _one_line(message))
    if isinstance(exc, SpiffWorkflowException):
        return ParseErrorParts(None, None, None, _one_line(str(exc)))
    if isinstance(exc, KeyError) and exc.args:
        detail = f"a required attribute or reference {exc.args[0]!r} is missing"
    else:
        detail = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
    return ParseErrorParts(None, None, None, _one_line(f"the engine cannot read this model ({detail})"))


def describe_parse_error(exc: BaseException) -> str:
    """One line: ``file:line element-id: message`` with whatever location the error carries."""
    parts = parse_error_parts(exc)
    return f"{_location(parts.file_name, parts.line, parts.element_id)}{parts.message}"


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
    """Collapse whitespace and shorten namespace URIs so the reason fits one line."""
    for uri, prefix in _NS_PREFIXES.items():
        text = text.replace(uri, prefix)
    return " ".join(text.split())
