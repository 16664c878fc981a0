"""Body of ``govflow validate FILE...``: one OK/ERROR line per model file.

Every input, however hostile (missing path, binary junk, UTF-16, DOCTYPE bombs, huge files),
yields an ERROR line rather than an exception, so the command is safe to point at any folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.bpmn.lint import lint_bundle
from engine.bpmn.parser import MAX_MODEL_BYTES

MODEL_SUFFIXES = (".bpmn", ".dmn")
SKIPPED_DIRS = {"forms", "demo"}


@dataclass
class ValidationLine:
    """The verdict on one file; ``text`` is the full line to print."""

    path: str
    ok: bool
    text: str


def validate_paths(paths: Sequence[str | Path], *,
                   departments: Mapping[str, str] | None = None) -> list[ValidationLine]:
    """Lint each file named, and each model file found in a folder named; one line per file.

    A BPMN file is linted with the DMN files next to it and its folder's forms/*.json; a DMN
    file named on its own, or alone in its folder, is linted on its own.
    """
    lines: list[ValidationLine] = []
    for raw in paths:
        path = Path(raw)
        try:
            if path.is_dir():
                found = _model_files(path)
                if not found:
                    lines.append(_error(str(path), "no .bpmn or .dmn files in this folder"))
                lines.extend(_validate_file(p, departments) for p in found)
            else:
                lines.append(_validate_file(path, departments))
        except Exception as exc:  # last resort: the command must never show a traceback
            lines.append(_error(str(path), f"cannot be validated ({exc.__class__.__name__}: {exc})"))
    return lines


def exit_code(lines: Sequence[ValidationLine]) -> int:
    """0 when every line is OK (and there is at least one), else 1."""
    return 0 if lines and all(line.ok for line in lines) else 1


def _model_files(folder: Path) -> list[Path]:
    """Model files under ``folder`` that get a line of their own (forms/, demo/, hidden skipped).

    Every *.bpmn file is listed. A *.dmn file is listed only when its folder has no BPMN file:
    next to BPMN files it belongs to their bundles and its problems show on their lines.
    """
    found: list[Path] = []
    for current, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        models = [n for n in sorted(names) if n.lower().endswith(MODEL_SUFFIXES) and not n.startswith(".")]
        has_bpmn = any(n.lower().endswith(".bpmn") for n in models)
        found.extend(Path(current) / n for n in models if n.lower().endswith(".bpmn") or not has_bpmn)
    return found


def _validate_file(path: Path, departments: Mapping[str, str] | None) -> ValidationLine:
    shown = str(path)
    if path.suffix.lower() not in (*MODEL_SUFFIXES, ".xml") and path.exists():
        return _error(shown, "not a .bpmn or .dmn file")
    try:
        text = _read_model(path)
    except _Unreadable as exc:
        return _error(shown, str(exc))
    files = {path.name: text}
    if path.suffix.lower() == ".bpmn":
        files.update(_siblings(path))
    report = lint_bundle(files, departments=departments)
    if not report.ok:
        errors = report.errors
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return _error(shown, errors[0].one_line() + more)
    # Siblings add only decisions and forms, so a BPMN file's process ids are all its own.
    ids = report.process_ids if path.suffix.lower() == ".bpmn" else report.process_ids + report.decision_ids
    warnings = len(report.warnings)
    note = f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""
    return ValidationLine(shown, True, f"OK {shown}: {', '.join(ids) or '-'}{note}")


def _siblings(path: Path) -> dict[str, str]:
    """The DMN files next to a BPMN file and its folder's forms/*.json, as bundle entries.

    Other BPMN files are left out so each is judged on its own. An unreadable DMN file is left
    out (a task calling it then misses its decision); an unreadable form is kept as empty text,
    so the task naming it is told the form is not valid JSON.
    """
    files: dict[str, str] = {}
    folder = path.parent
    candidates = [(p.name, p) for p in sorted(folder.glob("*")) if p.suffix.lower() == ".dmn"]
    forms = folder / "forms"
    if forms.is_dir():
        candidates += [(f"forms/{p.name}", p) for p in sorted(forms.glob("*.json"))]
    for key, sibling in candidates:
        try:
            files[key] = _read_model(sibling)
        except _Unreadable:
            if key.startswith("forms/"):
                files[key] = ""
    return files


class _Unreadable(Exception):
    """The file cannot be read as model text; the message is the reason."""


def _read_model(path: Path) -> str:
    """Read a model file as UTF-8 text, refusing anything that is not a small regular text file."""
    try:
        if not path.exists():
            raise _Unreadable("no such file or folder")
        if not path.is_file():
            raise _Unreadable("not a regular file")
        size = path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise _Unreadable(f"file is larger than {MAX_MODEL_BYTES} bytes ({size} bytes)")
        with path.open("rb") as handle:
            data = handle.read(MAX_MODEL_BYTES + 1)
    except OSError as exc:
        raise _Unreadable(f"cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_MODEL_BYTES:
        raise _Unreadable(f"file is larger than {MAX_MODEL_BYTES} bytes")
    if not data.strip():
        raise _Unreadable("file is empty")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:1024]:
        raise _Unreadable("file is UTF-16 or binary; models must be UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Unreadable(f"file is not valid UTF-8 text (byte {exc.start})") from None


def _error(path: str, reason: str) -> ValidationLine:
    return ValidationLine(path, False, f"ERROR {path}: {' '.join(reason.split())}")


__all__ = ["ValidationLine", "validate_paths", "exit_code"]
