"""Build the engine from settings: the one place that picks its parts (wiring for app and CLI)."""

from __future__ import annotations

from functools import partial
from engine.bpmn.lint import load_departments
from engine.cases import CaseEngine, EngineDeps
from engine.config import Settings
from engine.connectors import ConnectorRegistry


def build_engine(settings: Settings, *, connectors: ConnectorRegistry | None = None,
                 deps_overrides: dict | None = None) -> CaseEngine:
    from engine.bpmn.sandbox import SandboxScriptEngine

    departments_file = settings.PROCESSES_DIR / "departments.yaml"
    departments = load_departments(departments_file) if departments_file.exists() else {}
    deps = EngineDeps(
        script_engine_factory=partial(SandboxScriptEngine, timeout_ms=settings.SCRIPT_TIMEOUT_MS),
        connectors=connectors or ConnectorRegistry(),
        departments=departments,
        **(deps_overrides or {}),
    )
    return CaseEngine(deps)


__all__ = ["build_engine", "load_departments"]
