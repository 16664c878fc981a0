"""Build the engine from settings: the one place that picks its parts (wiring for app and CLI)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from engine.bpmn.lint import load_departments
from engine.config import Settings
from engine.kernel.cases import CaseEngine, EngineDeps
from engine.kernel.connectors import ConnectorRegistry
from engine.store.db import ping as ping_database


def build_engine(settings: Settings, *, connectors: ConnectorRegistry | None = None,
                 deps_overrides: dict | None = None) -> CaseEngine:
    from engine.bpmn.pool import shared_pool
    from engine.bpmn.sandbox import SandboxScriptEngine
    from engine.kernel.sla import WorkingCalendar
    from engine.platform.connectors.builtin import install_shared_data
    from engine.workbench.task_ops import countersign_outcome, install

    departments_file = settings.PROCESSES_DIR / "departments.yaml"
    departments = load_departments(departments_file) if departments_file.exists() else {}
    from engine.accountability.privacy import PiiKeys
    from engine.bpmn.serializer import StateSerializer

    overrides = dict(deps_overrides or {})
    overrides.setdefault("offload_steps", True)  # a step never runs on the event loop
    pii_keys = PiiKeys.from_settings(settings)
    overrides.setdefault("pii_keys", pii_keys)
    overrides.setdefault("serializer", StateSerializer(
        key=pii_keys.encryption_key, old_keys=pii_keys.retired_encryption_keys))
    overrides.setdefault("message_keep", timedelta(days=float(settings.MESSAGE_KEEP_DAYS)))
    overrides.setdefault("calendar", WorkingCalendar.load(settings.PROCESSES_DIR / "calendar.yaml"))
    helpers = {"countersign": countersign_outcome}
    # pre-started, in the background. Not preloading the helpers' module (engine.workbench.task_ops):
    # with it, a SQLite server's /ready timed out at start-up (cause not found yet); a worker's first
    # countersign() job pays that import instead
    pool = shared_pool(settings.SANDBOX_WORKERS, settings.SANDBOX_MEMORY_MB)
    if "connector_policy" not in overrides and settings.PROCESSES_DIR.is_dir():
        from engine.citizen.catalog import Catalog

        # what each item's process may call and issue, enforced at run time (engine.kernel.policy)
        overrides["connector_policy"] = Catalog.load(settings.PROCESSES_DIR).policy_for_service
    deps = EngineDeps(
        script_engine_factory=partial(SandboxScriptEngine, timeout_ms=settings.SCRIPT_TIMEOUT_MS,
                                      extra_globals=helpers, pool=pool),
        connectors=connectors if connectors is not None else ConnectorRegistry(),
        departments=departments,
        **overrides,
    )
    if connectors is None:  # a caller-supplied registry is the caller's full set
        from engine.certificates.connector import install_certificates

        install_shared_data(deps, settings)
        install_certificates(deps, settings)
    if not deps.step_hooks:
        from engine.citizen.catalog import Catalog
        from engine.platform.notify import install_notifications

        try:
            names = {item.slug: item.name for item in Catalog.load(settings.PROCESSES_DIR).items(include_platform=True)}
        except Exception:  # noqa: BLE001 - names are cosmetic in messages; the slug stands in
            names = {}
        install_notifications(deps, settings, names)  # the outbox: notification rows with every step
    from engine.accountability import audit

    audit.configure(settings)  # batch (pending records + sequencer) or inline audit chaining
    return install(CaseEngine(deps))  # 加签 guards complete_task


__all__ = ["build_engine", "load_departments", "ping_database"]
