"""Lint explains correlation mistakes of BPMN messages between cases in Chinese: a message with no
correlation property, a catch whose correlation key is never set or names a property the message
does not carry, a message only received here with no sender named; the shipped models are clean."""

from __future__ import annotations

from pathlib import Path

from engine.bpmn.lint import LintReport, lint_bundle, load_departments
from engine.bpmn.parser import read_folder

ROOT = Path(__file__).resolve().parents[3]
DEPARTMENTS = load_departments(ROOT / "processes" / "departments.yaml")


def model(*, correlated: bool = True, set_key: str | None = "order_no", sender: bool = True,
          throw: bool = False) -> dict[str, str]:
    prop = ('<bpmn:correlationProperty id="order_no" name="订单号"><bpmn:correlationPropertyRetrievalExpression '
            'messageRef="m"><bpmn:formalExpression>order_no</bpmn:formalExpression>'
            '</bpmn:correlationPropertyRetrievalExpression></bpmn:correlationProperty>') if correlated else ""
    marked = ('<bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property name="sender" '
              'value="external" /></spiffworkflow:properties></bpmn:extensionElements>') if sender else ""
    key = (f'<bpmn:extensionElements><spiffworkflow:processVariableCorrelation><spiffworkflow:propertyId>{set_key}'
           '</spiffworkflow:propertyId><spiffworkflow:expression>order_no</spiffworkflow:expression>'
           '</spiffworkflow:processVariableCorrelation></bpmn:extensionElements>') if set_key else ""
    end = ('<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming><bpmn:messageEventDefinition id="throw_def" '
           'messageRef="m" /></bpmn:endEvent>') if throw else '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
    text = f'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="D" targetNamespace="http://govflow.example/test">
<bpmn:message id="m" name="order_done">{marked}</bpmn:message>
{prop}
<bpmn:process id="p" isExecutable="true">
<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
<bpmn:intermediateCatchEvent id="wait" name="等待"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
<bpmn:messageEventDefinition id="wait_def" messageRef="m">{key}</bpmn:messageEventDefinition>
</bpmn:intermediateCatchEvent>
{end}
<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait" />
<bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="end" />
</bpmn:process>
</bpmn:definitions>
'''
    return {"p.bpmn": text}


def codes(report: LintReport) -> dict[str, str]:
    return {f.code: f.message for f in report.findings if f.code.startswith("message_")}


def test_a_correlated_message_with_a_named_sender_is_clean() -> None:
    assert codes(lint_bundle(model(), departments=DEPARTMENTS)) == {}
    assert codes(lint_bundle(model(sender=False, throw=True), departments=DEPARTMENTS)) == {}


def test_a_message_without_correlation_property_is_explained() -> None:
    found = codes(lint_bundle(model(correlated=False, set_key=None), departments=DEPARTMENTS))
    assert set(found) == {"message_no_correlation"}
    assert "消息「order_done」没有关联属性" in found["message_no_correlation"]


def test_a_catch_whose_correlation_key_is_never_set_is_an_error() -> None:
    report = lint_bundle(model(set_key=None), departments=DEPARTMENTS)
    assert "关联键从未被设置" in codes(report)["message_correlation_never_set"]
    assert any(f.code == "message_correlation_never_set" and f.element_id == "wait" for f in report.errors)


def test_a_catch_setting_a_property_the_message_lacks_is_an_error() -> None:
    found = codes(lint_bundle(model(set_key="uscc"), departments=DEPARTMENTS))
    assert "「uscc」不是该消息的关联属性" in found["message_unknown_correlation"]
    assert "message_correlation_never_set" in found


def test_a_message_only_received_with_no_sender_named_is_a_warning() -> None:
    report = lint_bundle(model(sender=False), departments=DEPARTMENTS)
    assert "没有发送方" in codes(report)["message_no_sender"] and not report.errors


def test_the_shipped_message_models_are_clean() -> None:
    for folder in ("business-startup", "seal-engraving"):
        report = lint_bundle(read_folder(ROOT / "processes" / folder), departments=DEPARTMENTS)
        assert not report.errors and codes(report) == {}, [f.one_line() for f in report.findings]
