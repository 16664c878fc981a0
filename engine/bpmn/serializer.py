"""Workflow state <-> text, with the process spec stored by reference.

SpiffWorkflow's serializer writes the whole process spec into every workflow. A case only needs
its task tree and data: the spec lives once in the definition version the case points to. The
state is kept as text (not ``jsonb``): SpiffWorkflow stores task data as a change against the
parent task and restores tasks in their stored order, so a store that reorders keys would
silently lose data.

State envelope (``STATE_FORMAT``)::

    {"format": 1, "spiff": "<spiff serializer version>", "workflow": {...tasks, data, ...}}

A change of envelope format adds a function to ``MIGRATIONS`` and a golden fixture of the old
format under ``tests/fixtures/state/`` that a test loads.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from engine.bpmn.parser import ProcessBundle
from engine.errors import ModelError

STATE_FORMAT = 1
ENCRYPTED_PREFIX = "enc1:"
_STATE_AD = b"govflow.case.state"
_SUMMARY_AD = b"govflow.case.summary"  # a summary cannot pass for a state, nor the reverse
_MESSAGE_AD = b"govflow.message.payload"


class _SpecByReferenceConverter(BpmnWorkflowConverter):
    """Leaves ``spec`` and ``subprocess_specs`` out; restores them from a bundle."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], bundle: ProcessBundle | None = None) -> BpmnWorkflow:
        if bundle is None:
            raise ModelError("a stored case state needs its process definition to load")
        from uuid import UUID

        workflow = self.target_class(bundle.spec, bundle.subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _config() -> dict[Any, Any]:
    config = dict(SPIFF_CONFIG)
    config[BpmnWorkflow] = _SpecByReferenceConverter
    return config


class StateSerializer:
    """Dumps and loads case state; the script engine is re-attached after every load.

    With a ``key``, the state is encrypted at rest (AES-SIV, ``enc1:`` prefix): case data holds
    forms with ID numbers and phones. AES-SIV is deterministic, so the same state always gives
    the same text and stored states can still be compared; plain states load as before.
    """

    def __init__(self, key: bytes | None = None, old_keys: list[bytes] | None = None) -> None:
        registry = BpmnWorkflowSerializer.configure(_config())
        self._serializer = BpmnWorkflowSerializer(registry)
        self._registry = registry
        self._cipher = None
        self._old_ciphers: list[Any] = []
        if key is not None:
            import hashlib

            from cryptography.hazmat.primitives.ciphers.aead import AESSIV

            self._cipher = AESSIV(hashlib.sha512(b"govflow case state\0" + key).digest())
            # keys before a rotation (GOVFLOW_PII_KEY lists them): states they sealed still load,
            # and the next save re-seals them under the active key
            self._old_ciphers = [AESSIV(hashlib.sha512(b"govflow case state\0" + k).digest())
                                 for k in old_keys or []]

    @property
    def registry(self) -> Any:
        """SpiffWorkflow's converter registry (spec diffs for case migration need it)."""
        return self._registry

    @property
    def spiff_version(self) -> str:
        return str(self._serializer.VERSION)

    def dump(self, workflow: BpmnWorkflow) -> str:
        envelope = {
            "format": STATE_FORMAT,
            "spiff": self.spiff_version,
            "workflow": self._serializer.to_dict(workflow),
        }
        return self._seal(json.dumps(envelope, separators=(",", ":"), ensure_ascii=False), _STATE_AD)

    def dump_summary(self, summary: dict[str, Any]) -> str:
        """A case's summary (decision and result, ``engine.kernel.summary``) as stored beside the state:
        sealed like the state, because a decision's inputs may be personal data."""
        text = json.dumps(summary, separators=(",", ":"), ensure_ascii=False)
        return self._seal(text, _SUMMARY_AD)

    def dump_payload(self, payload: Any) -> str:
        """A BPMN message's payload as stored while it waits for its receiver (``bpmn_messages``): sealed
        like the state, because it carries case data to another case."""
        return self._seal(json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str), _MESSAGE_AD)

    def load_payload(self, text: str) -> Any:
        return json.loads(self.decode(text, _MESSAGE_AD))

    def load_summary(self, text: str) -> dict[str, Any]:
        value = json.loads(self.decode(text, _SUMMARY_AD))
        if not isinstance(value, dict):
            raise ModelError("stored case summary is not an object")
        return value

    def _seal(self, text: str, ad: bytes) -> str:
        if self._cipher is None:
            return text
        import base64

        sealed = self._cipher.encrypt(text.encode("utf-8"), [ad])
        return ENCRYPTED_PREFIX + base64.b64encode(sealed).decode("ascii")

    def decode(self, text: str, ad: bytes = _STATE_AD) -> str:
        """The JSON text of a stored state (or summary), decrypting it when it is encrypted."""
        if not text.startswith(ENCRYPTED_PREFIX):
            return text
        if self._cipher is None:
            raise ModelError("stored case state is encrypted but no key is configured (GOVFLOW_PII_KEY)")
        import base64

        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.b64decode(text[len(ENCRYPTED_PREFIX):].encode("ascii"), validate=True)
        except ValueError as exc:
            raise ModelError("stored case state cannot be decrypted (wrong key or tampered)") from exc
        for cipher in (self._cipher, *self._old_ciphers):
            try:
                return cipher.decrypt(raw, [ad]).decode("utf-8")
            except (InvalidTag, ValueError):
                continue
        raise ModelError("stored case state cannot be decrypted (wrong key or tampered)")

    def load(self, text: str, bundle: ProcessBundle, script_engine: PythonScriptEngine) -> BpmnWorkflow:
        try:
            envelope = migrate(json.loads(self.decode(text)))
            workflow = self._serializer.from_dict(envelope["workflow"], bundle=bundle)
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"stored case state cannot be read ({exc.__class__.__name__}: {exc})") from None
        if not isinstance(workflow, BpmnWorkflow):
            raise ModelError("stored case state is not a workflow")
        workflow.script_engine = script_engine
        return workflow


def _migrate_0_to_1(envelope: dict[str, Any]) -> dict[str, Any]:
    """Format 0 was SpiffWorkflow's own serialization with the spec inside; drop the spec."""
    workflow = dict(envelope)
    workflow.pop("spec", None)
    workflow.pop("subprocess_specs", None)
    workflow.pop("serializer_version", None)
    return {"format": 1, "spiff": "1.4", "workflow": workflow}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _migrate_0_to_1}


def migrate(envelope: dict[str, Any]) -> dict[str, Any]:
    """Bring a stored state up to ``STATE_FORMAT``, one version step at a time."""
    version = envelope.get("format", 0) if "workflow" in envelope else 0
    while version < STATE_FORMAT:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ModelError(f"stored case state has unknown format {version}")
        envelope = step(envelope)
        version = envelope["format"]
    if version > STATE_FORMAT:
        raise ModelError(f"stored case state format {version} is newer than this engine ({STATE_FORMAT})")
    return envelope
