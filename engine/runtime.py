"""Build the engine from settings: the one place that picks its parts (wiring for app and CLI)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import yaml

from engine.cases import CaseEngine, EngineDeps
from engine.config import Settings
from engine.connectors import ConnectorRegistry


def load_departments(path: Path) -> dict[str, str]:
    """Department code -> Chinese name from ``departments.yaml`` (a list of {code, name})."""
    items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return {str(item["code"]): str(item["name"]) for item in items}


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
