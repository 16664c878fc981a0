"""``govflow validate``: one OK/ERROR line per file, whatever it is thrown at."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.bpmn.lint import load_departments
from engine.bpmn.validate import ValidationLine, exit_code, validate_paths

ROOT = Path(__file__).resolve().parents[3]
ASSORTED = ROOT / "tests" / "fixtures" / "assorted"
MODELS = ROOT / "tests" / "fixtures" / "models"
DEPARTMENTS = load_departments(ROOT / "processes" / "departments.yaml")

# file (relative to the assorted folder) -> (ok, fragment of the line after "OK/ERROR <path>: ")
EXPECTED = {
    "bad_billion_laughs.bpmn": (False, "bad_billion_laughs.bpmn: DOCTYPE and entity declarations are not"),
    "bad_bpmnio_default_not_executable.bpmn": (False, "no executable process"),
    "bad_broken_xml.bpmn": (False, "bad_broken_xml.bpmn:5: not well-formed XML"),
    "bad_camunda_juel_condition.bpmn": (False, "bad_camunda_juel_condition.bpmn:10 f_yes: condition"),
    "bad_empty.bpmn": (False, "file is empty"),
    "bad_form_schema.bpmn": (False, "bad_form_schema.bpmn:15 fill: form forms/broken_schema.json is not"),
    "bad_maven_pom.bpmn": (False, "bad_maven_pom.bpmn:2: not a BPMN or DMN document (root element <project>"),
    "bad_missing_form.bpmn": (False, "bad_missing_form.bpmn:15 fill: form 'no_such_form.json'"),
    "bad_plain_text.bpmn": (False, "not well-formed XML"),
    "bad_script_import_os.bpmn": (False, "bad_script_import_os.bpmn:7 read_env: script line 2"),
    "bad_signavio_no_flow_ids.bpmn": (False, "bad_signavio_no_flow_ids.bpmn:13 signavio_flow: sequence flow "
                                             "sid-start -> sid-check has no id"),
    "bad_timer_duration.bpmn": (False, "bad_timer_duration.bpmn:7 wait: timeDuration '3 working days'"),
    "bad_unknown_lane.bpmn": (False, "bad_unknown_lane.bpmn:5 Lane_finance: lane '财务科' is not a known"),
    "bad_unresolved_error_ref.bpmn": (False, "bad_unresolved_error_ref.bpmn:9 registry_failed: errorRef"),
    "bad_user_task_no_lane.bpmn": (False, "bad_user_task_no_lane.bpmn:11 review: user task is not in any"),
    "ok_bpmnio_minimal.bpmn": (True, "Process_1"),
    "ok_camunda7.bpmn": (True, "camunda_subsidy"),
    "ok_parallel.bpmn": (True, "parallel_licence"),
    "dmn/ok_business_rule.bpmn": (True, "business_rule"),
    "dmn/ok_subsidy_level.dmn": (True, "subsidy_level"),
    "dmn_multi/bad_two_decisions.dmn": (False, "bad_two_decisions.dmn:15 days: 2 decisions in one file"),
}


def one(path: Path | str) -> ValidationLine:
    lines = validate_paths([path], departments=DEPARTMENTS)
    assert len(lines) == 1, [line.text for line in lines]
    return lines[0]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture(name: str) -> None:
    ok, fragment = EXPECTED[name]
    path = ASSORTED / name
    line = one(path)
    prefix = f"{'OK' if ok else 'ERROR'} {path}: "
    assert line.ok is ok and line.path == str(path)
    assert line.text.startswith(prefix), line.text
    assert fragment in line.text[len(prefix):], line.text
    assert "\n" not in line.text


def test_folder_gives_one_line_per_model_file() -> None:
    # dmn/ok_subsidy_level.dmn sits next to a BPMN file, so it is judged on that file's line
    listed = {name: ok for name, (ok, _) in EXPECTED.items() if name != "dmn/ok_subsidy_level.dmn"}
    lines = validate_paths([ASSORTED], departments=DEPARTMENTS)
    assert [Path(line.path).relative_to(ASSORTED).as_posix() for line in lines] == sorted(
        listed, key=lambda name: (name.count("/"), name))
    assert {Path(line.path).relative_to(ASSORTED).as_posix(): line.ok for line in lines} == listed
    assert exit_code(lines) == 1


def test_folder_of_a_process_gives_one_line_per_bpmn_file() -> None:
    lines = validate_paths([ASSORTED / "dmn"], departments=DEPARTMENTS)
    expected = f"OK {ASSORTED / 'dmn' / 'ok_business_rule.bpmn'}: business_rule"
    assert [line.text for line in lines] == [expected]


def test_error_line_counts_further_errors() -> None:
    assert one(ASSORTED / "bad_signavio_no_flow_ids.bpmn").text.endswith(" (+1 more)")


def test_approval_fixture_is_ok() -> None:
    line = one(MODELS / "approval.bpmn")
    assert line.ok and line.text == f"OK {MODELS / 'approval.bpmn'}: approval"
    assert exit_code([line]) == 0


def test_bpmn_files_in_one_folder_are_judged_separately(tmp_path: Path) -> None:
    (tmp_path / "good.bpmn").write_bytes((ASSORTED / "ok_bpmnio_minimal.bpmn").read_bytes())
    (tmp_path / "bad.bpmn").write_bytes((ASSORTED / "bad_user_task_no_lane.bpmn").read_bytes())
    lines = validate_paths([tmp_path], departments=DEPARTMENTS)
    assert [(Path(line.path).name, line.ok) for line in lines] == [("bad.bpmn", False), ("good.bpmn", True)]


def test_broken_dmn_sibling_fails_the_bpmn_that_would_load_it(tmp_path: Path) -> None:
    (tmp_path / "rule.bpmn").write_bytes((ASSORTED / "dmn" / "ok_business_rule.bpmn").read_bytes())
    (tmp_path / "level.dmn").write_bytes((ASSORTED / "dmn" / "ok_subsidy_level.dmn").read_bytes())
    assert all(line.ok for line in validate_paths([tmp_path], departments=DEPARTMENTS))
    (tmp_path / "two.dmn").write_bytes((ASSORTED / "dmn_multi" / "bad_two_decisions.dmn").read_bytes())
    lines = validate_paths([tmp_path], departments=DEPARTMENTS)
    assert len(lines) == 1 and not lines[0].ok and "two.dmn:15 days" in lines[0].text
    named = validate_paths([tmp_path / "level.dmn", tmp_path / "two.dmn"], departments=DEPARTMENTS)
    assert [line.ok for line in named] == [True, False]


def test_folder_walk_skips_forms_demo_and_hidden(tmp_path: Path) -> None:
    model = (ASSORTED / "ok_bpmnio_minimal.bpmn").read_bytes()
    for sub in ("forms", "demo", ".git", "nested/deeper"):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
        (tmp_path / sub / "m.bpmn").write_bytes(model)
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")
    lines = validate_paths([tmp_path], departments=DEPARTMENTS)
    assert [Path(line.path).relative_to(tmp_path).as_posix() for line in lines] == ["nested/deeper/m.bpmn"]


def hostile_inputs(tmp: Path) -> dict[str, Path]:
    """Files nobody should feed a model validator, keyed by what they are."""
    cases = {
        "missing": tmp / "does_not_exist.bpmn",
        "empty_dir": tmp / "empty_dir",
        "empty": tmp / "empty.bpmn",
        "whitespace": tmp / "spaces.bpmn",
        "binary": tmp / "junk.bpmn",
        "utf16": tmp / "utf16.bpmn",
        "bad_utf8": tmp / "latin1.bpmn",
        "html": tmp / "page.bpmn",
        "huge": tmp / "huge.bpmn",
        "doctype": tmp / "xxe.bpmn",
        "dmn_junk": tmp / "junk.dmn",
        "deep": tmp / "deep.bpmn",
    }
    cases["empty_dir"].mkdir()
    cases["empty"].write_bytes(b"")
    cases["whitespace"].write_bytes(b"  \n\t\n")
    cases["binary"].write_bytes(bytes(range(256)) * 8)
    cases["utf16"].write_bytes((ASSORTED / "ok_bpmnio_minimal.bpmn").read_text(encoding="utf-8")
                               .replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"))
    cases["bad_utf8"].write_bytes('<?xml version="1.0"?><a name="caf\xe9"/>'.encode("latin-1"))
    cases["html"].write_text("<!DOCTYPE html><html><body><p>not a model</p></body></html>", encoding="utf-8")
    with cases["huge"].open("wb") as handle:
        handle.write(b"<a>" + b" " * 3_000_000 + b"</a>")
    cases["doctype"].write_text('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                                "<d>&x;</d>", encoding="utf-8")
    cases["dmn_junk"].write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    cases["deep"].write_text("<a>" * 100_000 + "</a>" * 100_000, encoding="utf-8")
    return cases


HOSTILE = ["missing", "empty_dir", "empty", "whitespace", "binary", "utf16", "bad_utf8", "html", "huge",
           "doctype", "dmn_junk", "deep"]


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_input_gives_one_error_line(tmp_path: Path, kind: str) -> None:
    path = hostile_inputs(tmp_path)[kind]
    line = one(path)
    assert not line.ok and line.text.startswith(f"ERROR {path}: ") and "\n" not in line.text
    assert exit_code([line]) == 1


@pytest.mark.parametrize("kind, fragment", [
    ("missing", "no such file or folder"), ("empty_dir", "no .bpmn or .dmn files"),
    ("empty", "file is empty"),
    ("utf16", "UTF-16 or binary"), ("bad_utf8", "not valid UTF-8"), ("huge", "larger than"),
    ("doctype", "DOCTYPE"), ("html", "DOCTYPE"),
])
def test_hostile_input_reasons(tmp_path: Path, kind: str, fragment: str) -> None:
    assert fragment in one(hostile_inputs(tmp_path)[kind]).text


def test_all_hostile_inputs_together(tmp_path: Path) -> None:
    cases = hostile_inputs(tmp_path)
    lines = validate_paths(list(cases.values()), departments=None)
    assert len(lines) == len(cases) and not any(line.ok for line in lines)


def test_other_files_named_explicitly(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello", encoding="utf-8")
    assert one(notes).text == f"ERROR {notes}: not a .bpmn or .dmn file"
    exported = tmp_path / "exported.xml"
    exported.write_bytes((ASSORTED / "ok_bpmnio_minimal.bpmn").read_bytes())
    assert one(exported).text == f"OK {exported}: Process_1"


def test_ok_line_counts_warnings(tmp_path: Path) -> None:
    text = (ASSORTED / "ok_camunda7.bpmn").read_text(encoding="utf-8").replace(' default="Flow_reject"', "")
    text = text.replace('sourceRef="Gateway_decide" targetRef="End_rejected" />',
                        'sourceRef="Gateway_decide" targetRef="End_rejected"><bpmn:conditionExpression>'
                        "not complete</bpmn:conditionExpression></bpmn:sequenceFlow>")
    path = tmp_path / "no_default.bpmn"
    path.write_text(text, encoding="utf-8")
    assert one(path).text == f"OK {path}: camunda_subsidy (1 warning)"


def test_exit_code() -> None:
    ok = ValidationLine("a", True, "OK a: p")
    bad = ValidationLine("b", False, "ERROR b: x")
    assert exit_code([ok]) == 0 and exit_code([ok, bad]) == 1 and exit_code([]) == 1
