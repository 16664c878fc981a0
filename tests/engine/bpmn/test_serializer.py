"""Case state serialization: spec by reference, loss-free round trips, old formats migrate."""

from __future__ import annotations

import json

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine.bpmn.parser import build_bundle
from engine.bpmn.sandbox import SandboxScriptEngine
from engine.bpmn.serializer import STATE_FORMAT, StateSerializer, migrate
from engine.errors import ModelError
from tests.conftest import FIXTURES, model_files


def _bundle(name: str):
    return build_bundle(model_files(name))


def test_state_leaves_spec_out_and_round_trips_every_wait_state() -> None:
    bundle = _bundle("approval")
    serializer = StateSerializer()
    workflow = BpmnWorkflow(bundle.spec, bundle.subprocess_specs, script_engine=SandboxScriptEngine())
    for task in workflow.get_tasks():
        task.data["nested"] = {"list": [1, 2, {"k": "值"}], "n": None}
    workflow.do_engine_steps()
    steps = [{"accepted": True, "age": 64}, {"review_opinion": "同意"}]
    for data in steps:
        text = serializer.dump(workflow)
        envelope = json.loads(text)
        assert envelope["format"] == STATE_FORMAT and "spec" not in envelope["workflow"]
        workflow = serializer.load(text, bundle, SandboxScriptEngine())
        assert serializer.dump(workflow) == text  # nothing lost, nothing reordered
        [task] = workflow.get_tasks(state=TaskState.READY, manual=True)
        assert task.data["nested"] == {"list": [1, 2, {"k": "值"}], "n": None}
        task.data.update(data)
        task.run()
        workflow.do_engine_steps()
    assert workflow.completed and workflow.data["score"] == 128 and workflow.data["review_opinion"] == "同意"


def test_golden_format0_state_migrates_and_continues() -> None:
    bundle = _bundle("approval")
    old = (FIXTURES / "state" / "format0_approval_at_review.json").read_text(encoding="utf-8")
    serializer = StateSerializer()
    workflow = serializer.load(old, bundle, SandboxScriptEngine())
    [task] = workflow.get_tasks(state=TaskState.READY, manual=True)
    assert task.task_spec.name == "review"
    assert task.data["applicant_name"] == "王五" and task.data["score"] == 132
    task.run()
    workflow.do_engine_steps()
    assert workflow.completed
    assert json.loads(serializer.dump(workflow))["format"] == STATE_FORMAT


def test_unknown_or_future_formats_are_refused() -> None:
    with pytest.raises(ModelError):
        migrate({"format": STATE_FORMAT + 1, "workflow": {}})
    with pytest.raises(ModelError):
        StateSerializer().load('{"format": 1, "workflow": {"tasks": {}}}', None, SandboxScriptEngine())  # type: ignore[arg-type]


def test_encrypted_state_hides_personal_data_and_round_trips() -> None:
    bundle = _bundle("approval")
    plain, sealed = StateSerializer(), StateSerializer(key=b"k" * 32)
    workflow = BpmnWorkflow(bundle.spec, bundle.subprocess_specs, script_engine=SandboxScriptEngine())
    for task in workflow.get_tasks():
        task.data["applicant"] = {"id_number": "310104196103150273", "phone": "13812345678"}
    workflow.do_engine_steps()
    text = sealed.dump(workflow)
    assert text.startswith("enc1:") and "310104196103150273" not in text and "13812345678" not in text
    assert sealed.dump(workflow) == text  # deterministic: stored states stay comparable
    restored = sealed.load(text, bundle, SandboxScriptEngine())
    assert plain.dump(restored) == plain.dump(workflow)
    assert sealed.load(plain.dump(workflow), bundle, SandboxScriptEngine())  # plain states still load
    with pytest.raises(ModelError, match="no key"):
        plain.load(text, bundle, SandboxScriptEngine())
    with pytest.raises(ModelError, match="decrypted"):
        StateSerializer(key=b"x" * 32).load(text, bundle, SandboxScriptEngine())
    tampered = text[:-8] + ("A" if text[-8] != "A" else "B") + text[-7:]
    with pytest.raises(ModelError):
        sealed.load(tampered, bundle, SandboxScriptEngine())
