"""The model linter: every rule gives a located finding, and nothing ever raises."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bpmn.lint import Finding, LintReport, lint_bundle, load_departments

ROOT = Path(__file__).resolve().parents[3]
ASSORTED = ROOT / "tests" / "fixtures" / "assorted"
MODELS = ROOT / "tests" / "fixtures" / "models"
DEPARTMENTS = load_departments(ROOT / "processes" / "departments.yaml")

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="D" '
        'targetNamespace="http://govflow.example/test">\n<bpmn:process id="p" isExecutable="true">\n')
TAIL = "\n</bpmn:process>\n</bpmn:definitions>\n"
DMN_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="defs" name="t" '
            'namespace="http://govflow.example/dmn">\n')


def bpmn(body: str) -> str:
    return HEAD + body + TAIL


def dmn_table(rules: str, inputs: str = "age") -> str:
    """One decision table with one input per comma-separated expression and one output."""
    columns = "".join(
        f'<input id="in{i}"><inputExpression id="ie{i}" typeRef="string"><text>{expr}</text>'
        f"</inputExpression></input>\n" for i, expr in enumerate(inputs.split(",")))
    return (DMN_HEAD + '<decision id="dec" name="Dec">\n<decisionTable id="table">\n' + columns
            + '<output id="out" name="result" typeRef="string"/>\n' + rules
            + "</decisionTable>\n</decision>\n</definitions>\n")


def rule(n: int, *entries: str, output: str = '"x"') -> str:
    cells = "".join(f'<inputEntry id="r{n}e{i}"><text>{e}</text></inputEntry>' for i, e in enumerate(entries))
    return f'<rule id="r{n}">{cells}<outputEntry id="r{n}o"><text>{output}</text></outputEntry></rule>\n'


def fixture_bundle(path: Path) -> dict[str, str]:
    """A BPMN fixture with its folder's DMN files and forms, as ``govflow validate`` builds it."""
    files = {path.name: path.read_text(encoding="utf-8")}
    for sibling in path.parent.glob("*.dmn"):
        files[sibling.name] = sibling.read_text(encoding="utf-8")
    for form in (path.parent / "forms").glob("*.json"):
        files[f"forms/{form.name}"] = form.read_text(encoding="utf-8")
    return files


def lint_fixture(name: str) -> LintReport:
    return lint_bundle(fixture_bundle(ASSORTED / name), departments=DEPARTMENTS)


def only_error(report: LintReport) -> Finding:
    assert len(report.errors) == 1, [f.one_line() for f in report.findings]
    return report.errors[0]


# ------------------------------------------------------------------ API shape


def test_finding_one_line_format() -> None:
    finding = Finding("error", "approval.bpmn", 42, "review", "user task is not in any lane")
    assert finding.one_line() == "approval.bpmn:42 review: user task is not in any lane"
    assert Finding("error", "a.bpmn", None, None, "bad").one_line() == "a.bpmn: bad"


def test_load_departments_reads_codes_and_names() -> None:
    assert DEPARTMENTS["window"] == "政务服务中心综合窗口"
    assert DEPARTMENTS["mca"] == "民政局"


def test_approval_model_is_clean_with_departments() -> None:
    report = lint_bundle(fixture_bundle(MODELS / "approval.bpmn"), departments=DEPARTMENTS)
    assert report.ok, [f.one_line() for f in report.findings]
    assert report.process_ids == ["approval"]


# ------------------------------------------------------------------ fixtures


@pytest.mark.parametrize("name, process_id", [
    ("ok_camunda7.bpmn", "camunda_subsidy"),
    ("ok_bpmnio_minimal.bpmn", "Process_1"),
    ("ok_parallel.bpmn", "parallel_licence"),
    ("dmn/ok_business_rule.bpmn", "business_rule"),
])
def test_ok_fixtures_have_no_findings(name: str, process_id: str) -> None:
    report = lint_fixture(name)
    assert report.findings == [], [f.one_line() for f in report.findings]
    assert report.process_ids == [process_id]


def test_ok_dmn_alone() -> None:
    path = ASSORTED / "dmn" / "ok_subsidy_level.dmn"
    report = lint_bundle({path.name: path.read_text(encoding="utf-8")})
    assert report.findings == [] and report.decision_ids == ["subsidy_level"] and report.process_ids == []


@pytest.mark.parametrize("name, line, element_id, fragment", [
    ("bad_signavio_no_flow_ids.bpmn", 13, "signavio_flow", "sid-start -> sid-check has no id"),
    ("bad_script_import_os.bpmn", 7, "read_env", "script line 2"),
    ("bad_camunda_juel_condition.bpmn", 10, "f_yes", "condition"),
    ("bad_unknown_lane.bpmn", 5, "Lane_finance", "lane '财务科' is not a known department"),
    ("bad_user_task_no_lane.bpmn", 11, "review", "user task is not in any lane"),
    ("bad_missing_form.bpmn", 15, "fill", "form 'no_such_form.json'"),
    ("bad_form_schema.bpmn", 15, "fill", "forms/broken_schema.json is not a valid JSON Schema"),
    ("bad_timer_duration.bpmn", 7, "wait", "timeDuration '3 working days' is not a valid ISO 8601 duration"),
    ("bad_unresolved_error_ref.bpmn", 9, "registry_failed", "errorRef 'Error_registry_down' does not match"),
])
def test_bad_fixture_first_error(name: str, line: int, element_id: str, fragment: str) -> None:
    report = lint_fixture(name)
    first = report.errors[0]
    assert (first.file, first.line, first.element_id) == (name, line, element_id), first.one_line()
    assert fragment in first.message


def test_signavio_reports_every_flow_without_id() -> None:
    errors = lint_fixture("bad_signavio_no_flow_ids.bpmn").errors
    assert [e.line for e in errors] == [13, 14]
    assert all("SpiffWorkflow silently drops" in e.message for e in errors)


def test_script_violation_names_the_import() -> None:
    error = lint_fixture("bad_script_import_os.bpmn").errors[0]
    assert "import" in error.message


@pytest.mark.parametrize("name, fragment", [
    ("bad_broken_xml.bpmn", "not well-formed XML"),
    ("bad_empty.bpmn", "file is empty"),
    ("bad_plain_text.bpmn", "not well-formed XML"),
    ("bad_maven_pom.bpmn", "not a BPMN or DMN document (root element <project>"),
    ("bad_billion_laughs.bpmn", "DOCTYPE and entity declarations are not allowed"),
    ("bad_bpmnio_default_not_executable.bpmn", "no executable process"),
])
def test_unreadable_fixtures(name: str, fragment: str) -> None:
    error = only_error(lint_fixture(name))
    assert error.file == name and fragment in error.message


def test_broken_xml_finding_has_the_line() -> None:
    assert only_error(lint_fixture("bad_broken_xml.bpmn")).line == 5


def test_two_decisions_in_one_dmn() -> None:
    path = ASSORTED / "dmn_multi" / "bad_two_decisions.dmn"
    error = only_error(lint_bundle({path.name: path.read_text(encoding="utf-8")}))
    assert (error.line, error.element_id) == (15, "days")
    assert "one decision per DMN file" in error.message


def test_lanes_are_not_checked_without_departments() -> None:
    assert lint_bundle(fixture_bundle(ASSORTED / "bad_unknown_lane.bpmn")).ok


# ------------------------------------------------------------------ BPMN rules


def test_sequence_flow_refs_must_exist() -> None:
    report = lint_bundle({"a.bpmn": bpmn(
        '<bpmn:startEvent id="s"/>\n<bpmn:endEvent id="e"/>\n'
        '<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="nowhere"/>\n'
        '<bpmn:sequenceFlow id="f2" sourceRef="ghost" targetRef="e"/>')})
    assert [(e.line, e.element_id) for e in report.errors] == [(6, "f1"), (7, "f2")]
    assert "targetRef 'nowhere'" in report.errors[0].message
    assert "sourceRef 'ghost'" in report.errors[1].message


def test_process_without_start_event() -> None:
    error = only_error(lint_bundle({"a.bpmn": bpmn('<bpmn:endEvent id="e"/>')}))
    assert (error.element_id, error.message) == ("p", "process has no start event")


def test_file_without_process() -> None:
    text = HEAD.replace('<bpmn:process id="p" isExecutable="true">\n', "") + "</bpmn:definitions>\n"
    report = lint_bundle({"a.bpmn": text})
    assert "no bpmn:process in the file" in report.errors[0].message


def test_call_activity_and_business_rule_targets() -> None:
    report = lint_bundle({"a.bpmn": bpmn(
        '<bpmn:startEvent id="s"/>\n<bpmn:callActivity id="call" calledElement="missing_proc"/>\n'
        '<bpmn:businessRuleTask id="rule"><bpmn:extensionElements>'
        "<spiffworkflow:calledDecisionId>missing_dec</spiffworkflow:calledDecisionId>"
        "</bpmn:extensionElements></bpmn:businessRuleTask>\n"
        '<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="call"/>\n'
        '<bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="rule"/>')})
    assert [(e.element_id, e.line) for e in report.errors] == [("call", 5), ("rule", 6)]
    assert "called process 'missing_proc' is not in the bundle" in report.errors[0].message
    assert "decision 'missing_dec' is not in the bundle" in report.errors[1].message


def test_business_rule_task_resolves_decision_from_bundle() -> None:
    files = fixture_bundle(ASSORTED / "dmn" / "ok_business_rule.bpmn")
    assert lint_bundle(files).ok
    del files["ok_subsidy_level.dmn"]
    assert "decision 'subsidy_level' is not in the bundle" in only_error(lint_bundle(files)).message


GATEWAY = ('<bpmn:startEvent id="s"/>\n<bpmn:exclusiveGateway id="g"{default}/>\n'
           '<bpmn:endEvent id="e1"/>\n<bpmn:endEvent id="e2"/>\n'
           '<bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="g"/>\n'
           '<bpmn:sequenceFlow id="f1" sourceRef="g" targetRef="e1">'
           "<bpmn:conditionExpression>x &gt; 1</bpmn:conditionExpression></bpmn:sequenceFlow>\n"
           '<bpmn:sequenceFlow id="f2" sourceRef="g" targetRef="e2">{cond}</bpmn:sequenceFlow>')


def test_gateway_without_default_is_a_warning() -> None:
    report = lint_bundle({"a.bpmn": bpmn(GATEWAY.format(
        default="", cond="<bpmn:conditionExpression>x &lt;= 1</bpmn:conditionExpression>"))})
    assert report.ok
    assert [(w.element_id, w.line) for w in report.warnings] == [("g", 5)]
    assert "no default flow" in report.warnings[0].message


def test_gateway_flow_without_condition_and_not_default() -> None:
    report = lint_bundle({"a.bpmn": bpmn(GATEWAY.format(default="", cond=""))})
    assert [(e.element_id, e.line) for e in report.errors] == [("f2", 10)]
    assert "without a condition and is not its default" in report.errors[0].message


def test_gateway_with_default_is_clean() -> None:
    report = lint_bundle({"a.bpmn": bpmn(GATEWAY.format(default=' default="f2"', cond=""))})
    assert report.findings == []


def test_condition_expressions_are_sandboxed() -> None:
    report = lint_bundle({"a.bpmn": bpmn(GATEWAY.format(
        default=' default="f2"', cond="").replace("x &gt; 1", "__import__('os').system('id') == 0"))})
    assert [(e.element_id, e.line) for e in report.errors] == [("f1", 9)]


def test_service_task_parameters_are_sandboxed() -> None:
    report = lint_bundle({"a.bpmn": bpmn(
        '<bpmn:startEvent id="s"/>\n<bpmn:serviceTask id="svc"><bpmn:extensionElements>\n'
        '<spiffworkflow:serviceTaskOperator id="http/GetRequest" resultVariable="r">'
        "<spiffworkflow:parameters>\n"
        '<spiffworkflow:parameter id="url" type="str" value="__import__(\'os\').getcwd()"/>\n'
        "</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator>\n"
        "</bpmn:extensionElements></bpmn:serviceTask>\n"
        '<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="svc"/>')})
    error = only_error(report)
    assert (error.element_id, error.line) == ("svc", 7) and "parameter 'url'" in error.message


def test_pre_and_post_scripts_are_sandboxed() -> None:
    report = lint_bundle({"a.bpmn": bpmn(
        '<bpmn:startEvent id="s"/>\n<bpmn:task id="t"><bpmn:extensionElements>\n'
        "<spiffworkflow:preScript>import subprocess</spiffworkflow:preScript>\n"
        "</bpmn:extensionElements></bpmn:task>\n"
        '<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/>')})
    error = only_error(report)
    assert (error.element_id, error.line) == ("t", 6) and error.message.startswith("pre-script")


@pytest.mark.parametrize("kind, value, fragment", [
    ("timeDuration", "'PT1X'", "is not a valid ISO 8601 duration"),
    ("timeDate", "'2024-13-01T00:00:00'", "is not a valid ISO 8601 date-time"),
    ("timeDate", "'P1D'", "is not an ISO 8601 date-time"),
    ("timeCycle", "'every day'", "is not a valid ISO 8601 repeating interval"),
    ("timeDuration", "__import__('os')", ""),
    ("timeDuration", "", "is empty"),
])
def test_bad_timers(kind: str, value: str, fragment: str) -> None:
    report = lint_bundle({"a.bpmn": bpmn(
        f'<bpmn:startEvent id="s"><bpmn:timerEventDefinition id="td">\n<bpmn:{kind}>{value}</bpmn:{kind}>\n'
        "</bpmn:timerEventDefinition></bpmn:startEvent>")})
    error = report.errors[0]
    assert (error.element_id, error.line) == ("s", 5) and fragment in error.message


@pytest.mark.parametrize("kind, value", [
    ("timeDuration", "'PT2H'"), ("timeDuration", "'P3D'"), ("timeDate", "'2030-01-01T09:00:00+08:00'"),
    ("timeCycle", "'R3/PT1H'"), ("timeDuration", "deadline"), ("timeDuration", "f'PT{hours}H'"),
    # Camunda/Flowable habit: bare ISO 8601 values are accepted (and quoted when parsed)
    ("timeDuration", "PT5M"), ("timeCycle", "R3/PT1H"), ("timeDate", "2030-01-01T09:00:00+08:00"),
    ("timeDate", "2030-01-01"),
])
def test_good_timers(kind: str, value: str) -> None:
    report = lint_bundle({"a.bpmn": bpmn(
        f'<bpmn:startEvent id="s"><bpmn:timerEventDefinition id="td">\n<bpmn:{kind}>{value}</bpmn:{kind}>\n'
        "</bpmn:timerEventDefinition></bpmn:startEvent>")})
    assert report.findings == [], [f.one_line() for f in report.findings]


def test_unresolved_message_ref() -> None:
    report = lint_bundle({"a.bpmn": bpmn(
        '<bpmn:startEvent id="s"><bpmn:messageEventDefinition id="md" messageRef="Message_x"/>'
        "</bpmn:startEvent>")})
    error = only_error(report)
    assert error.element_id == "s" and "messageRef 'Message_x'" in error.message


def test_user_task_inside_laned_subprocess_is_in_a_lane() -> None:
    report = lint_bundle({"a.bpmn": bpmn(
        '<bpmn:laneSet id="ls"><bpmn:lane id="l" name="window"><bpmn:flowNodeRef>s</bpmn:flowNodeRef>'
        "<bpmn:flowNodeRef>sub</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>\n"
        '<bpmn:startEvent id="s"/>\n<bpmn:subProcess id="sub"><bpmn:startEvent id="ss"/>'
        '<bpmn:userTask id="u"/><bpmn:endEvent id="se"/>'
        '<bpmn:sequenceFlow id="g1" sourceRef="ss" targetRef="u"/>'
        '<bpmn:sequenceFlow id="g2" sourceRef="u" targetRef="se"/></bpmn:subProcess>\n'
        '<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>')}, departments=DEPARTMENTS)
    assert report.findings == [], [f.one_line() for f in report.findings]


def test_spiff_parser_errors_become_findings() -> None:
    # passes the linter's own rules, but SpiffWorkflow refuses two flows out of a plain task
    report = lint_bundle({"a.bpmn": bpmn(
        '<bpmn:startEvent id="s"/>\n<bpmn:task id="t"/>\n<bpmn:endEvent id="e1"/>\n<bpmn:endEvent id="e2"/>\n'
        '<bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="t"/>\n'
        '<bpmn:sequenceFlow id="f1" sourceRef="t" targetRef="e1"/>\n'
        '<bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e2"/>')})
    error = only_error(report)
    assert (error.element_id, error.line) == ("t", 5) and "Multiple outgoing flows" in error.message


def test_xsd_failures_become_findings() -> None:
    report = lint_bundle({"a.bpmn": bpmn('<bpmn:startEvent id="s"/>\n<bpmn:bogus id="x"/>')})
    error = only_error(report)
    assert error.line == 5 and "bpmn:bogus" in error.message


# ------------------------------------------------------------------ DMN rules


def test_dmn_input_entries_are_checked_as_the_engine_builds_them() -> None:
    text = dmn_table(
        rule(1, "&gt;= 60") + rule(2, "18 &lt; ? &lt; 60") + rule(3, "-") + rule(4, "")
        + rule(5, 'in ["a", "b"]')
        + rule(6, "__import__('os')") + rule(7, ".__class__") + rule(8, "? + __import__('os').getpid()"))
    report = lint_bundle({"t.dmn": text})
    assert [e.element_id for e in report.errors] == ["r6e0", "r7e0", "r8e0"], [
        f.one_line() for f in report.findings]
    assert report.decision_ids == ["dec"]


def test_dmn_tuple_entry_is_a_warning() -> None:
    report = lint_bundle({"t.dmn": dmn_table(rule(1, '"a","b"'))})
    assert report.ok and [w.element_id for w in report.warnings] == ["r1e0"]
    assert "tuple" in report.warnings[0].message


def test_dmn_entry_that_is_not_an_expression() -> None:
    report = lint_bundle({"t.dmn": dmn_table(rule(1, "&gt;= "))})
    assert "neither a value nor a comparison" in only_error(report).message


def test_dmn_input_and_output_expressions_are_sandboxed() -> None:
    report = lint_bundle({"t.dmn": dmn_table(rule(1, "1", output="open('/etc/passwd').read()"),
                                             inputs="__import__('os').getpid()")})
    assert [e.element_id for e in report.errors] == ["ie0", "r1o"], [f.one_line() for f in report.findings]


def test_dmn_table_without_id() -> None:
    text = dmn_table(rule(1, "1")).replace('<decisionTable id="table">', "<decisionTable>")
    report = lint_bundle({"t.dmn": text})
    error = only_error(report)
    assert (error.element_id, error.message) == ("dec", "decision table has no id")


def test_dmn_decision_without_table() -> None:
    text = DMN_HEAD + '<decision id="dec" name="D"><literalExpression><text>1</text></literalExpression>' \
                      "</decision></definitions>"
    assert "no decision table" in only_error(lint_bundle({"t.dmn": text})).message


def test_dmn_rule_with_too_many_entries() -> None:
    report = lint_bundle({"t.dmn": dmn_table(rule(1, "1", "2"))})
    assert only_error(report).element_id == "r1"


# ------------------------------------------------------------------ never raises


@pytest.mark.parametrize("files", [
    {},
    {"forms/a.json": "{}"},
    {"a.bpmn": ""},
    {"a.bpmn": "\x00\x01\x02 junk"},
    {"a.bpmn": "<html><body>hi</body></html>"},
    {"a.bpmn": "<" * 10_000},
    {"a.bpmn": "<a>" * 5_000 + "</a>" * 5_000},
    {"a.bpmn": "x" * 3_000_000},
    {"a.bpmn": "\ud800 lone surrogate"},
    {"a.dmn": DMN_HEAD + "</definitions>"},
    {"a.bpmn": bpmn('<bpmn:startEvent id="s"/>'), "forms/x.json": "not json"},
    {"a.bpmn": bpmn('<bpmn:scriptTask id="t"><bpmn:script>' + "(" * 500 + ")" * 500 + "</bpmn:script>"
                    "</bpmn:scriptTask>")},
])
def test_lint_never_raises(files: dict[str, str]) -> None:
    report = lint_bundle(files)
    assert isinstance(report, LintReport)
    for finding in report.findings:
        assert "\n" not in finding.one_line()


def test_duplicate_process_ids_across_files() -> None:
    body = '<bpmn:startEvent id="s"/>'
    report = lint_bundle({"a.bpmn": bpmn(body), "b.bpmn": bpmn(body).replace('id="D"', 'id="D2"')})
    error = only_error(report)
    assert (error.file, error.element_id, error.line) == ("b.bpmn", "p", 3)
    assert "also defined in a.bpmn" in error.message


def test_violation_line_in_a_pretty_printed_expression() -> None:
    report = lint_bundle({"a.bpmn": bpmn(GATEWAY.format(default=' default="f2"', cond="").replace(
        "x &gt; 1", "\n      (x &gt; 1 and\n       __import__('os') is None)\n    "))})
    error = only_error(report)
    assert (error.element_id, error.line) == ("f1", 11) and error.message.startswith("condition line 2")


# ------------------------------------------------------------------ assignment rules (会签, 回避)
ASSIGNED = """<bpmn:laneSet id="ls"><bpmn:lane id="l" name="mca"><bpmn:flowNodeRef>handle</bpmn:flowNodeRef>
<bpmn:flowNodeRef>sign</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
<bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
<bpmn:userTask id="handle" name="经办"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
<bpmn:userTask id="sign" name="复核">{props}<bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>{multi}
</bpmn:userTask>
<bpmn:endEvent id="e"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="handle" />
<bpmn:sequenceFlow id="f2" sourceRef="handle" targetRef="sign" />
<bpmn:sequenceFlow id="f3" sourceRef="sign" targetRef="e" />"""
MULTI = ('<bpmn:multiInstanceLoopCharacteristics isSequential="false"><bpmn:loopCardinality>2'
         '</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics>')


def _assigned(multi: bool, **props: str) -> LintReport:
    entries = "".join(f'<spiffworkflow:property name="{k}" value="{v}" />' for k, v in props.items())
    block = f"<bpmn:extensionElements><spiffworkflow:properties>{entries}</spiffworkflow:properties>" \
            "</bpmn:extensionElements>" if props else ""
    return lint_bundle({"a.bpmn": bpmn(ASSIGNED.format(props=block, multi=MULTI if multi else ""))})


def test_countersign_must_say_whether_signers_are_distinct() -> None:
    silent = _assigned(True)
    assert silent.ok and [(w.element_id, w.code) for w in silent.warnings] == [("sign", "assignment_rule")]
    assert "distinctSigners" in silent.warnings[0].message
    assert _assigned(True, distinctSigners="true").findings == []
    assert _assigned(True, distinctSigners="false").findings == []
    assert _assigned(False).findings == []  # a single-instance task has nothing to say


@pytest.mark.parametrize(("multi", "props", "fragment"), [
    (True, {"distinctSigners": "maybe"}, "write true or false"),
    (False, {"distinctSigners": "true"}, "multi-instance (会签) user task only"),
    (False, {"recuseFrom": "nope"}, "names 'nope', which is no user or manual task"),
    (False, {"recuseFrom": "sign"}, "names the task itself"),
])
def test_bad_assignment_rules_are_errors(multi: bool, props: dict[str, str], fragment: str) -> None:
    error = only_error(_assigned(multi, **props))
    assert error.element_id == "sign" and fragment in error.message


def test_recusal_from_an_earlier_step_is_clean() -> None:
    assert _assigned(False, recuseFrom="handle").findings == []
