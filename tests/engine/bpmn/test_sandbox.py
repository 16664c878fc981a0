"""Sandboxed script engine: known escapes are refused, normal BPMN/DMN code still works."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from engine.bpmn.sandbox import (
    SandboxEnvironment,
    SandboxLimitError,
    SandboxScriptEngine,
    SandboxTaskViolation,
    SandboxTimeout,
    Violation,
    check_expression,
    check_script,
)
from engine.errors import ModelError, SandboxViolation


def messages(source: str) -> str:
    return " | ".join(v.message for v in check_script(source))


# ---------------------------------------------------------------- escapes refused at check time
CHECK_TIME_ESCAPES = [
    ("().__class__.__bases__[0].__subclasses__()", "names starting with '_' are not allowed: __class__"),
    ("__import__('os')", "names starting with '_' are not allowed: __import__"),
    ("import os", "import is not allowed"),
    ("from os import path", "import is not allowed"),
    ('"{0.__class__}".format(1)', "str.format() is not allowed"),
    ('def f():\n    return 1\nx = "{.__globals__}".format(f)', "str.format() is not allowed"),
    ("'{x.__class__}'.format_map({'x': 1})", "str.format_map() is not allowed"),
    ("g = (i for i in [1]); fr = g.gi_frame.f_back", "attribute not allowed: gi_frame"),
    ("g = (i for i in [1]); fr = g.gi_frame.f_back", "attribute not allowed: f_back"),
    ("getattr(1, '__class__')", "'getattr' is not allowed"),
    ("eval('1')", "'eval' is not allowed"),
    ("exec('x=1')", "'exec' is not allowed"),
    ("open('/etc/passwd')", "'open' is not allowed"),
    ("type(1)", "'type' is not allowed"),
    ("f = lambda: 1\ncells = f.__closure__", "names starting with '_' are not allowed: __closure__"),
    ("g = globals()", "'globals' is not allowed"),
    ("v = vars()", "'vars' is not allowed"),
    ("s = object.__subclasses__()", "'object' is not allowed"),
    ("try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    tb = e.__traceback__.tb_frame",
     "names starting with '_' are not allowed: __traceback__"),
    ("x = int.mro()", "attribute not allowed: mro"),
    ("global x\nx = 1", "'global' is not allowed"),
    ("def f():\n    nonlocal x", "'nonlocal' is not allowed"),
    ("async def f():\n    pass", "async/await is not allowed"),
    ("def g():\n    yield 1", "'yield' is not allowed"),
    ("class A:\n    pass", "class definitions are not allowed"),
    ("print(1)", "'print' is not allowed"),
    ("x = [*a, *a]", "'*' unpacking"),
    ("a[0:0] = a", "slice assignment is not allowed"),
    ("s = f'{x:{w}}'", "inside an f-string format spec"),
    ("s = f'{x:>100000000}'", "width or precision is too large"),
]


@pytest.mark.parametrize(("source", "expected"), CHECK_TIME_ESCAPES)
def test_escape_refused_at_check_time(source: str, expected: str) -> None:
    assert expected in messages(source)
    context: dict[str, Any] = {"a": [1], "x": 1, "w": 5}
    with pytest.raises(SandboxViolation) as info:  # execution refuses too, before running anything
        SandboxEnvironment().execute(source, context)
    assert expected in info.value.message
    assert isinstance(info.value, ModelError)
    assert context == {"a": [1], "x": 1, "w": 5}


def test_violation_carries_line_and_syntax_errors_are_violations() -> None:
    assert check_script("x = 1\ny = 2\nimport os") == [Violation(3, "import is not allowed")]
    assert check_script("x = 1\ny = (")[0].line == 2
    assert check_expression("\n\n  (x and\n  y.__class__)\n")[0].line == 2  # counted after strip()
    assert check_script("x = 1 +")[0].message.startswith("syntax error")
    assert check_expression("x = 1")[0].message.startswith("syntax error")  # eval mode: no statements
    assert check_expression("age >= 60 and name.__class__") == [
        Violation(1, "names starting with '_' are not allowed: __class__")]
    assert check_script("x = a + 1") == [] and check_expression(" age >= 60 ") == []


def test_getattr_guard_refuses_blocked_names_at_run_time() -> None:
    from engine.bpmn.sandbox import _GUARDS  # defence in depth behind the compile-time check

    for name in ("format", "format_map", "gi_frame", "f_back", "tb_frame", "__class__", "_private"):
        with pytest.raises(AttributeError):
            _GUARDS["_getattr_"]("text", name)


# ---------------------------------------------------------------- escapes refused at run time
RUN_TIME_LIMITS = [
    "x = 10**10**10",
    "x = pow(10, 10**8)",
    "x = 'a' * 10**10",
    "x = [i for i in range(10**12)]",
    "x = 1 << 10**9",
    "x = '%*d' % (10**9, 1)",
    "x = 'x'.ljust(10**10)",
    "x = ('a' * 10**6).replace('a', 'a' * 100)",
    "lst = [1]\nx = list(map(lst.append, lst))",
    "x = int(Decimal('1e999999'))",
    "n = 2\nfor i in range(100):\n    n *= n",
    "s = 'a' * 10**6\nx = str([s] * 10**6)",
    "s = 'a' * 10**6\nfor i in range(40):\n    s = f'{s}{s}'",
    "b = ('a' * 10**6).encode()\nfor i in range(40):\n    b = b.hex().encode()",
]


@pytest.mark.parametrize("source", RUN_TIME_LIMITS)
def test_resource_bombs_are_refused(source: str) -> None:
    assert check_script(source) == []
    started = time.monotonic()
    with pytest.raises(SandboxLimitError, match="too large"):
        SandboxEnvironment().execute(source, {})
    assert time.monotonic() - started < 10  # a hang guard, not a speed target


@pytest.mark.parametrize("source", [
    "while True:\n    pass",
    "while True:\n    try:\n        while True:\n            pass\n    except:\n        pass",
    "def f(n):\n    return f(n - 1) + f(n - 1) if n else 1\nx = f(60)",
    "f = lambda n: f(n - 1) + f(n - 1) if n else 1\nx = f(60)",
    "lst = [1]\nx = [lst.append(i) for i in lst]",
])
def test_endless_code_times_out(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(SandboxTimeout, match="exceeded its time limit of 200 ms"):
        SandboxEnvironment(timeout_ms=200).execute(source, {})
    assert time.monotonic() - started < 10  # stopped by the limit, not by the test's patience


def test_timeout_works_in_worker_threads_and_expressions() -> None:
    env = SandboxEnvironment(timeout_ms=150)

    def spin() -> str:
        try:
            env.evaluate("[1 for a in range(10**6) for b in range(10**6)]", {})
        except SandboxTimeout as err:
            return str(err)
        return "finished"

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: spin(), range(3)))
    assert all("time limit" in r for r in results)
    assert env.evaluate("sum(i for i in range(1000))", {}) == 499500  # the deadline was reset


# ---------------------------------------------------------------- normal code works
def test_script_task_code_runs_and_writes_task_data() -> None:
    context: dict[str, Any] = {"a": 1, "items": [3, 1, 2], "fees": {"base": 10}, "name": "张三"}
    SandboxEnvironment().execute(
        "x = a + 1\n"
        "ratio = a / 4 * 2.5 - 7 // 2 + 7 % 3 + 2 ** 10 + (1 << 3)\n"
        "fees['extra'] = 5\n"
        "fees['base'] += 1\n"
        "items.append(4)\n"
        "n = 0\n"
        "n += 10\n"
        "squares = [i * i for i in items if i > 1]\n"
        "index = {str(k): v for k, v in enumerate(sorted(items, key=lambda v: -v))}\n"
        "first, *rest = items\n"
        "def double(v):\n"
        "    return v * 2\n"
        "doubled = list(map(double, items))\n"
        "total = 0\n"
        "for v in items:\n"
        "    if v % 2 == 0:\n"
        "        continue\n"
        "    total += v\n"
        "while n < 20:\n"
        "    n += 1\n"
        "label = f'{name}:{x:>3}|{ratio:.1f}' + '-' * 3\n"
        "ok = all([isinstance(x, int), any(items), max(items) == 4, min(items) == 1, len(items) == 4])\n"
        "q, r = divmod(17, 5)\n"
        "kinds = ', '.join(sorted({'b', 'a'}))\n"
        "try:\n"
        "    bad = 1 / 0\n"
        "except ZeroDivisionError:\n"
        "    bad = None\n",
        context,
    )
    assert context["x"] == 2 and context["fees"] == {"base": 11, "extra": 5}
    assert context["items"] == [3, 1, 2, 4] and context["squares"] == [9, 4, 16]
    assert context["index"] == {"0": 4, "1": 3, "2": 2, "3": 1}
    assert (context["first"], context["rest"]) == (3, [1, 2, 4])
    assert context["doubled"] == [6, 2, 4, 8] and context["total"] == 4 and context["n"] == 20
    assert context["ratio"] == 1 / 4 * 2.5 - 7 // 2 + 7 % 3 + 2 ** 10 + (1 << 3)
    assert context["label"] == "张三:  2|1030.6---" and context["ok"] is True
    assert (context["q"], context["r"], context["kinds"], context["bad"]) == (3, 2, "a, b", None)
    assert "double" not in context and "__builtins__" not in context
    assert not any(k.startswith("_") for k in context)
    json.dumps(context)  # still plain JSON: no helpers, functions or guards left behind


def test_no_functions_classes_modules_or_iterators_leak_into_task_data() -> None:
    context: dict[str, Any] = {}
    SandboxEnvironment().execute(
        "f = lambda: 1\nd = date\nfn = len\nit = map(str, [1])\nr = range(3)\ngen = (i for i in [1])\n"
        "meth = [1].append\nkept = 1",
        context)
    assert context == {"kept": 1}


def test_dates_and_helpers() -> None:
    clock = lambda: datetime(2026, 11, 29, 9, 30)  # noqa: E731
    env = SandboxEnvironment(extra_globals={"now": clock})
    assert env.evaluate("age_on('1950-03-01', date(2026, 11, 29))", {}) == 76
    assert env.evaluate("age_on('1950-11-30', '2026-11-29')", {}) == 75  # the day before the birthday
    assert env.evaluate("age_on(birth, today())", {"birth": "1966-11-29"}) == 60
    assert env.evaluate("today()", {}) == date(2026, 11, 29)
    assert env.evaluate("now() + timedelta(days=1)", {}) == datetime(2026, 11, 30, 9, 30)
    assert env.evaluate("parse_date('2026-01-02T10:00:00')", {}) == date(2026, 1, 2)
    assert env.evaluate("(parse_date(d) - date(2026, 1, 1)).days", {"d": "2026-03-01"}) == 59
    assert env.evaluate("(now() + timedelta(hours=2)).isoformat()", {}) == "2026-11-29T11:30:00"
    assert env.evaluate("date(2026, 1, 5).strftime('%Y年%m月%d日')", {}) == "2026年01月05日"
    assert isinstance(SandboxEnvironment().evaluate("now()", {}), datetime)  # default: real time
    with pytest.raises(ValueError, match="not an ISO date"):
        env.evaluate("parse_date('29/11/2026')", {})


def test_decimal() -> None:
    env = SandboxEnvironment()
    assert env.evaluate("Decimal('10.05') * 3", {}) == Decimal("30.15")
    assert env.evaluate("(Decimal('2') / 3).quantize(Decimal('0.01'))", {}) == Decimal("0.67")
    assert env.evaluate("isinstance(Decimal('1'), Decimal) and isinstance(x, (int, Decimal))", {"x": 1})
    assert env.evaluate("sum([Decimal('0.1')] * 3, Decimal(0))", {}) == Decimal("0.3")


def test_condition_expressions_and_external_context() -> None:
    env = SandboxEnvironment()
    data = {"age": 65, "region": "3101", "docs": ["id", "photo"]}
    assert env.evaluate("age >= 60 and region[:4] == '3101' and 'photo' in docs", data) is True
    assert env.evaluate("dmninputexpr > 60", data, {"dmninputexpr": 61}) is True
    assert env.evaluate("len(docs) == 2", data) is True and data == {"age": 65, "region": "3101",
                                                                    "docs": ["id", "photo"]}
    context: dict[str, Any] = {"a": 1}
    env.execute("b = a + helper", context, {"helper": 2})
    assert context == {"a": 1, "b": 3}  # external names are visible but not kept


def test_task_data_may_shadow_helpers() -> None:
    context: dict[str, Any] = {"date": "2026-01-01", "now": "later", "len": 3}
    SandboxEnvironment().execute("copy = date + now\nn = len", context)
    assert context == {"date": "2026-01-01", "now": "later", "len": 3, "copy": "2026-01-01later", "n": 3}


def test_dmn_style_expressions() -> None:
    """What DMNEngine builds: '(input) == (entry)', 'input' + '>= 60', '?' -> dmninputexpr."""
    engine = SandboxScriptEngine()
    with pytest.raises(SyntaxError):  # needs_eq() relies on a SyntaxError for operator entries
        engine.validate(">= 60")
    engine.validate("v >= 60")
    engine.validate("'approve'")
    with pytest.raises(SandboxViolation, match="import is not allowed"):
        engine.validate("import os")
    env = engine.environment
    data = {"age": 65, "region": "3101"}
    assert env.evaluate("(region) == ('3101')", data) is True
    assert env.evaluate("age>= 60", data) is True
    assert env.evaluate("region in ['3101', '3102']", data) is True
    assert env.evaluate("18 <= dmninputexpr < 60", data, {"dmninputexpr": 65}) is False


def test_service_call() -> None:
    calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def handler(name: str, params: dict[str, Any], data: dict[str, Any]) -> Any:
        calls.append((name, params, data))
        return {"ok": True, "echo": params["id_no"]}

    env = SandboxEnvironment(service_handler=handler)
    data = {"x": 1}
    result = env.call_service(data, operation_name="population.lookup",
                              operation_params={"id_no": {"value": "110", "type": "str"}})
    assert json.loads(result) == {"ok": True, "echo": "110"}
    assert calls == [("population.lookup", {"id_no": "110"}, {"x": 1})]
    with pytest.raises(RuntimeError, match="no service handler"):
        SandboxEnvironment().call_service({}, operation_name="x", operation_params={})


def test_compiled_code_is_cached_and_engines_are_cheap() -> None:
    from engine.bpmn.sandbox import _compile

    assert _compile("exec", "x = 1") is _compile("exec", "x = 1")
    first, second = SandboxScriptEngine(), SandboxScriptEngine()
    data_a, data_b = {"x": 1}, {"x": 2}
    first.environment.execute("y = x + 1", data_a)
    second.environment.execute("y = x + 1", data_b)
    assert (data_a["y"], data_b["y"]) == (2, 3)  # engines share compiled code, never data


# ---------------------------------------------------------------- end to end with SpiffWorkflow
BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
    id="defs" targetNamespace="http://govflow.example/test">
  <bpmn:process id="proc" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="prepare" name="准备数据">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>SCRIPT</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:businessRuleTask id="decide" name="规则">
      <bpmn:extensionElements>
        <spiffworkflow:calledDecisionId>senior</spiffworkflow:calledDecisionId>
      </bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:businessRuleTask>
    <bpmn:exclusiveGateway id="gw" default="f_manual">
      <bpmn:incoming>f3</bpmn:incoming>
      <bpmn:outgoing>f_ok</bpmn:outgoing><bpmn:outgoing>f_manual</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:scriptTask id="approve"><bpmn:incoming>f_ok</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
      <bpmn:script>outcome = 'approved'</bpmn:script></bpmn:scriptTask>
    <bpmn:scriptTask id="manual"><bpmn:incoming>f_manual</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing>
      <bpmn:script>outcome = 'manual'</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming><bpmn:incoming>f5</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="prepare"/>
    <bpmn:sequenceFlow id="f2" sourceRef="prepare" targetRef="decide"/>
    <bpmn:sequenceFlow id="f3" sourceRef="decide" targetRef="gw"/>
    <bpmn:sequenceFlow id="f_ok" sourceRef="gw" targetRef="approve">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">decision == 'approve' and age &gt;= 60
      </bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_manual" sourceRef="gw" targetRef="manual"/>
    <bpmn:sequenceFlow id="f4" sourceRef="approve" targetRef="end"/>
    <bpmn:sequenceFlow id="f5" sourceRef="manual" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""

DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="dmn_defs" name="rules"
             namespace="http://govflow.example/test">
  <decision id="senior" name="优待">
    <decisionTable id="senior_table" hitPolicy="FIRST">
      <input id="in_age" label="年龄">
        <inputExpression id="e_age" typeRef="integer"><text>age</text></inputExpression>
      </input>
      <input id="in_region" label="户籍">
        <inputExpression id="e_region" typeRef="string"><text>region</text></inputExpression>
      </input>
      <output id="out_decision" label="决定" name="decision" typeRef="string"/>
      <rule id="r_young">
        <inputEntry id="r1a"><text>&lt; 60</text></inputEntry><inputEntry id="r1b"><text>-</text></inputEntry>
        <outputEntry id="r1o"><text>'reject'</text></outputEntry>
      </rule>
      <rule id="r_local">
        <inputEntry id="r2a"><text>60 &lt;= ? &lt; 150</text></inputEntry>
        <inputEntry id="r2b"><text>? in ['3101', '3102']</text></inputEntry>
        <outputEntry id="r2o"><text>'approve'</text></outputEntry>
      </rule>
      <rule id="r_other">
        <inputEntry id="r3a"><text>&gt;= 60</text></inputEntry>
        <inputEntry id="r3b"><text>-</text></inputEntry>
        <outputEntry id="r3o"><text>'manual'</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>
"""

GOOD_SCRIPT = "age = age_on(birth_date, date(2026, 11, 29))\nregion = id_no[:4]"


def run_model(script: str, data: dict[str, Any], engine: SandboxScriptEngine | None = None) -> BpmnWorkflow:
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(BPMN.replace("SCRIPT", script).encode())
    parser.add_dmn_str(DMN.encode())
    workflow = BpmnWorkflow(parser.get_spec("proc"), script_engine=engine or SandboxScriptEngine())
    workflow.get_tasks(state=TaskState.READY)[0].data.update(data)
    workflow.do_engine_steps()
    return workflow


@pytest.mark.parametrize(("birth", "id_no", "outcome", "decision"), [
    ("1950-03-01", "310101195003010011", "approved", "approve"),
    ("1950-03-01", "440101195003010011", "manual", "manual"),
    ("1990-03-01", "310101199003010011", "manual", "reject"),
])
def test_bpmn_script_dmn_and_gateway_run_end_to_end(birth: str, id_no: str, outcome: str,
                                                    decision: str) -> None:
    workflow = run_model(GOOD_SCRIPT, {"birth_date": birth, "id_no": id_no})
    assert workflow.completed
    data = workflow.data
    assert (data["outcome"], data["decision"]) == (outcome, decision)
    assert data["age"] == (76 if birth.startswith("1950") else 36)


def test_model_importing_os_fails_naming_the_task() -> None:
    with pytest.raises(SandboxViolation) as info:
        run_model("x = 1\nimport os", {"birth_date": "1950-03-01", "id_no": "3101"})
    err = info.value
    assert isinstance(err, SandboxTaskViolation) and isinstance(err, WorkflowTaskException)
    assert err.task.task_spec.bpmn_id == "prepare" and err.line_number == 2
    assert err.error_line == "import os"
    assert "task prepare (准备数据)" in err.message and "import is not allowed" in err.message
    assert err.detail == {"violations": [{"line": 2, "message": "import is not allowed"}]}


def test_run_time_errors_name_task_and_line() -> None:
    with pytest.raises(WorkflowTaskException) as info:
        run_model("x = 1\ny = x / 0", {"birth_date": "1950-03-01", "id_no": "3101"})
    assert info.value.task.task_spec.bpmn_id == "prepare" and info.value.line_number == 2
    assert "ZeroDivisionError" in str(info.value)

    engine = SandboxScriptEngine(timeout_ms=100)
    with pytest.raises(WorkflowTaskException) as info:
        run_model("x = 1\nwhile True:\n    x += 1", {"birth_date": "1950-03-01", "id_no": "3101"}, engine)
    assert "time limit of 100 ms" in str(info.value) and info.value.task.task_spec.bpmn_id == "prepare"
    assert info.value.line_number in (2, 3)
