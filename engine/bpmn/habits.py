"""Camunda/Flowable habits, recognised so the linter can show the Python form to write instead.

Those engines evaluate ``${amount > 100 && approved}`` (JUEL) and run Groovy or JavaScript
script tasks; SpiffWorkflow evaluates Python. The translations here are suggestions for the
designer's eyes (a lint message), never executed.
"""

from __future__ import annotations

import re

PYTHON_FORMATS = {"", "python", "python3", "py", "text/x-python"}
_FOREIGN = re.compile(r"^\s*[$#]\{(?P<body>.*)\}\s*$", re.DOTALL)
_GET_VARIABLE = re.compile(r"""execution\.getVariable\(\s*["'](\w+)["']\s*\)""")
_SET_VARIABLE = re.compile(r"""^execution\.setVariable\(\s*["'](\w+)["']\s*,\s*(.*)\)$""")
_DECLARATION = re.compile(r"^(?:var|let|const|def|final|String|int|long|double|boolean|Integer)\s+(\w+\s*=)")
_WORDS = [
    (re.compile(r"&&"), " and "), (re.compile(r"\|\|"), " or "), (re.compile(r"!(?!=)"), "not "),
    (re.compile(r"\beq\b"), "=="), (re.compile(r"\bne\b"), "!="), (re.compile(r"\bgt\b"), ">"),
    (re.compile(r"\blt\b"), "<"), (re.compile(r"\bge\b"), ">="), (re.compile(r"\ble\b"), "<="),
    (re.compile(r"\band\b"), "and"), (re.compile(r"\bempty\s+(\w+)"), r"not \1"),
    (re.compile(r"\btrue\b"), "True"), (re.compile(r"\bfalse\b"), "False"), (re.compile(r"\bnull\b"), "None"),
    (re.compile(r"===?"), "=="), (re.compile(r"!==?"), "!="),
]


def foreign_language(script_format: str | None) -> str | None:
    """The script language when it is not Python (e.g. ``groovy``), else None."""
    value = (script_format or "").strip()
    return None if value.lower() in PYTHON_FORMATS else value


def _python_expression(text: str) -> str:
    text = _GET_VARIABLE.sub(r"\1", text)
    for pattern, replacement in _WORDS:
        text = pattern.sub(replacement, text)
    text = text.replace("not  ", "not ").replace("not =", "!=")
    return " ".join(text.split())


def foreign_expression(source: str) -> str | None:
    """The Python form of a ``${...}``/``#{...}`` expression, or None when ``source`` is not one."""
    match = _FOREIGN.match(source)
    if match is None:
        return None
    return _python_expression(match.group("body")) or "True"


def python_script(source: str) -> str:
    """A Python rendering of a short Groovy/JavaScript script, line by line (``; `` joined)."""
    lines = []
    for raw in re.split(r"[;\n]", source):
        line = raw.strip()
        if not line or line.startswith("//"):
            continue
        line = _DECLARATION.sub(r"\1", line)
        setter = _SET_VARIABLE.match(line)
        if setter:
            line = f"{setter.group(1)} = {setter.group(2)}"
        lines.append(_python_expression(line))
    return "; ".join(lines) or "(Python script)"


__all__ = ["foreign_expression", "foreign_language", "python_script"]
