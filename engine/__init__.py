"""Build the engine from settings: the one place that picks its parts (wiring for app and CLI)."""

from __future__ import annotations

from functools import partial

from engine.bpmn.lint import load_departments
from engine.config import Settings
from engine.kernel.cases import CaseEngine, EngineDeps
from engine.kernel.connectors import ConnectorRegistry
from engine.store.db import ping as ping_database


def build_engine(settings: Settings, *, connectors: ConnectorRegistry | None = None,
                 deps_overrides: dict | None = None) -> CaseEngine:
    from engine.bpmn.sandbox import SandboxScriptEngine
    from engine.kernel.sla import WorkingCalendar
    from engine.platform.connectors.builtin import install_shared_data
    from engine.workbench.task_ops import countersign_outcome, install

    departments_file = settings.PROCESSES_DIR / "departments.yaml"
    departments = load_departments(departments_file) if departments_file.exists() else {}
    from engine.accountability.privacy import PiiKeys
    from engine.bpmn.serializer import StateSerializer

    overrides = dict(deps_overrides or {})
    overrides.setdefault("offload_steps", bool(settings.EXCHANGE_URL))
    pii_keys = PiiKeys.from_settings(settings)
    overrides.setdefault("pii_keys", pii_keys)
    overrides.setdefault("serializer", StateSerializer(
        key=pii_keys.encryption_key, old_keys=pii_keys.retired_encryption_keys))
    overrides.setdefault("calendar", WorkingCalendar.load(settings.PROCESSES_DIR / "calendar.yaml"))
    deps = EngineDeps(
        script_engine_factory=partial(SandboxScriptEngine, timeout_ms=settings.SCRIPT_TIMEOUT_MS,
                                      extra_globals={"countersign": countersign_outcome}),
        connectors=connectors if connectors is not None else ConnectorRegistry(),
        departments=departments,
        **overrides,
    )
    if connectors is None:  # a caller-supplied registry is the caller's full set
        from engine.certificates.connector import install_certificates

        install_shared_data(deps, settings)
        install_certificates(deps, settings)
    return install(CaseEngine(deps))  # 加签 guards complete_task


__all__ = ["build_engine", "load_departments", "ping_database"]
