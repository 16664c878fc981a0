"""Lint a bundle of BPMN/DMN models before the engine is trusted with it.

SpiffWorkflow 3.2 accepts some broken models silently (a sequence flow without ``id`` is
dropped, so a case "completes" right after its start event) and fails on others with bare
TypeError/KeyError tracebacks. The linter turns all of that into located findings
(file, line, element id) and adds the house rules: lanes name departments, forms exist and
are JSON Schemas, and every script and expression passes the sandbox.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

from engine.bpmn.errors import parse_error_parts
from engine.bpmn.lint_rules import BpmnRules, DmnRules, Sink
from engine.bpmn.parser import build_bundle, model_kind, new_parser, parse_xml
from engine.bpmn.timers import quote_bare_timers
from engine.errors import ModelError

MODEL_SUFFIXES = (".bpmn", ".dmn", ".xml")
_LINE_IN_MESSAGE = re.compile(r"line (\d+)\)$")


@dataclass(frozen=True)
class Finding:
    """One problem in a bundle, located as precisely as the source allows."""

    severity: str  # "error" | "warning"
    file: str
    line: int | None
    element_id: str | None
    message: str
    code: str = ""  # stable code when the rule sets one (see engine.designer.findings for the rest)

    def one_line(self) -> str:
        """``approval.bpmn:42 review: user task is not in any lane``."""
        where = self.file + (f":{self.line}" if self.line else "")
        if self.element_id:
            where += f" {self.element_id}"
        return f"{where}: {self.message}" if where else self.message


@dataclass
class LintReport:
    """All findings of one bundle plus the process and decision ids it defines."""

    findings: list[Finding] = field(default_factory=list)
    process_ids: list[str] = field(default_factory=list)
    decision_ids: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


def load_departments(path: Path) -> dict[str, str]:
    """Department code -> Chinese name from ``departments.yaml`` (a list of {code, name})."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    if isinstance(data, Mapping):
        return {str(k): str(v) for k, v in data.items()}
    return {str(item["code"]): str(item.get("name", item["code"])) for item in data}


def lint_bundle(files: dict[str, str], *, departments: Mapping[str, str] | None = None) -> LintReport:
    """Lint a bundle (file name -> text). Never raises: every failure becomes a finding."""
    linter = _Linter(files, departments)
    try:
        linter.run()
    except Exception as exc:  # a linter bug must still give a clean, located answer
        detail = f"{exc.__class__.__name__}: {exc}"
        linter.add("error", "<bundle>", None, None, f"internal linter failure ({detail})")
    return linter.report


class _Linter(Sink):
    """One lint run; collects findings into ``report``."""

    def __init__(self, files: dict[str, str], departments: Mapping[str, str] | None) -> None:
        self.files = files
        self.departments = departments
        self.report = LintReport()
        self.bpmn: dict[str, etree._Element] = {}
        self.dmn: dict[str, etree._Element] = {}
        self._form_problems: dict[str, str | None] = {}

    def add(self, severity: str, file: str, line: int | None, element_id: str | None, message: str,
            code: str = "") -> None:
        finding = Finding(severity, file, line, element_id, " ".join(message.split()), code)
        if finding not in self.report.findings:
            self.report.findings.append(finding)

    def run(self) -> None:
        self._load()
        if not self.bpmn and not self.dmn:
            if not self.report.findings:
                self.add("error", "<bundle>", None, None, "no BPMN or DMN file in the bundle")
            return
        processes = [(name, el) for name, root in self.bpmn.items() for el in BpmnRules.processes(root)]
        decisions = [(name, el) for name, root in self.dmn.items() for el in DmnRules.decisions(root)]
        self._unique(processes, "process")
        self._unique(decisions, "decision")
        process_ids = {el.get("id"): el.get("isExecutable", "true") == "true"
                       for _, el in processes if el.get("id")}
        decision_ids = list(dict.fromkeys(el.get("id") for _, el in decisions if el.get("id")))
        self.report.process_ids = list(process_ids)
        self.report.decision_ids = decision_ids
        for name, root in self.bpmn.items():
            BpmnRules(self, name, root, process_ids, set(decision_ids), self.departments).run()
        for name, root in self.dmn.items():
            DmnRules(self, name, root).run()
        if self.bpmn and not any(process_ids.values()):
            first = next(iter(self.bpmn))
            self.add("error", first, None, None,
                     'no executable process: the engine only starts processes with isExecutable="true"')
        self._engine_checks()
        if self.report.ok and any(process_ids.values()):
            try:
                build_bundle(self.files)
            except ModelError as exc:
                self.add("error", next(iter(self.bpmn)), None, None, exc.message)

    def _unique(self, elements: list[tuple[str, etree._Element]], kind: str) -> None:
        """The engine keys processes and decisions by id, so a second definition would hide the first."""
        seen: dict[str, str] = {}
        for name, el in elements:
            key = el.get("id")
            if key and key in seen:
                self.add("error", name, el.sourceline, key,
                         f"{kind} id '{key}' is also defined in {seen[key]}")
            elif key:
                seen[key] = name

    def _load(self) -> None:
        for name in sorted(self.files):
            if not name.lower().endswith(MODEL_SUFFIXES):
                continue
            try:
                root = parse_xml(self.files[name].encode("utf-8"), name)
            except ModelError as exc:
                at = _LINE_IN_MESSAGE.search(exc.message)
                self.add("error", name, int(at.group(1)) if at else None, None,
                         exc.message.removeprefix(f"{name}: "))
                continue
            except (UnicodeError, ValueError) as exc:
                self.add("error", name, None, None, f"cannot be read as XML ({exc})")
                continue
            kind = model_kind(root)
            if kind == "bpmn":
                self.bpmn[name] = root
            elif kind == "dmn":
                self.dmn[name] = root
            else:
                tag = etree.QName(root)
                ns = f" in namespace {tag.namespace}" if tag.namespace else ""
                self.add("error", name, root.sourceline, None,
                         f"not a BPMN or DMN document (root element <{tag.localname}>{ns})")

    def form_problem(self, key: str) -> str | None:
        """Why the form at bundle key ``key`` is unusable, or None when it is a valid JSON Schema."""
        if key not in self._form_problems:
            self._form_problems[key] = _form_problem(self.files.get(key))
        return self._form_problems[key]

    def _engine_checks(self) -> None:
        """Run SpiffWorkflow's own XSD validation and parser; its exceptions become findings."""
        parser = new_parser()
        roots: dict[str, etree._Element] = {}
        for name in [*self.bpmn, *self.dmn]:
            root = roots[name] = parse_xml(self.files[name].encode("utf-8"), name)  # fresh: Spiff mutates
            try:
                if name in self.bpmn:
                    quote_bare_timers(root)
                    parser.add_bpmn_xml(root, filename=name)
                else:
                    parser.add_dmn_xml(root, filename=name)
            except Exception as exc:
                self._from_exception(exc, name, root)
        if not self.report.ok:
            return
        for pid, process_parser in list(parser.process_parsers.items()):
            if not process_parser.process_executable:
                continue
            try:
                parser.get_spec(pid)
            except Exception as exc:
                name = process_parser.filename or next(iter(self.bpmn))
                self._from_exception(exc, name, roots.get(name))
        for dmn_parser in list(parser.dmn_parsers.values()):
            try:
                dmn_parser.parse()
                if not dmn_parser.decision.decisionTables:
                    raise ValueError("decision has no decision table")
            except Exception as exc:
                name = dmn_parser.filename or next(iter(self.dmn))
                self._from_exception(exc, name, roots.get(name))

    def _from_exception(self, exc: BaseException, name: str, root: etree._Element | None) -> None:
        parts = parse_error_parts(exc)
        file = parts.file_name or name
        faulted = [f for f in self.report.errors if f.file == file]
        if faulted and (not isinstance(exc, ValidationException)
                        or any(f.element_id == parts.element_id for f in faulted if parts.element_id)):
            return  # a crash on a file, or element, the rules already faulted is a consequence, not news
        line = parts.line
        if line is None and parts.element_id and root is not None:
            found = root.xpath("//*[@id=$i]", i=parts.element_id)
            line = found[0].sourceline if found else None
        self.add("error", file, line, parts.element_id, parts.message)


def _form_problem(text: str | None) -> str | None:
    if text is None:
        return "missing"
    try:
        schema = json.loads(text)
    except ValueError as exc:
        return f"is not valid JSON ({exc})"
    if not isinstance(schema, (dict, bool)):
        return "is not a JSON Schema (expected an object)"
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        path = "/".join(str(p) for p in exc.path)
        return f"is not a valid JSON Schema ({exc.message}{' at ' + path if path else ''})"
    if isinstance(schema, dict):
        from forms.registry import default_registry

        problems = default_registry().ref_problems(schema)
        if problems:
            return f"has unresolved references ({'; '.join(problems[:3])})"
    return None


__all__ = ["Finding", "LintReport", "lint_bundle", "load_departments"]
