"""Versioned API blueprints (served under ``/api/v1``), one module per area."""

from __future__ import annotations

from sanic import Blueprint


def v1_blueprints() -> list[Blueprint]:
    """Every area's blueprint; the app factory groups them under ``/api/v1``."""
    from mobile_api.api import (
        access_log,
        applications,
        auth,
        bpmn_messages,
        certificates,
        designer,
        documents,
        messages,
        services,
        staff,
        staff_certificates,
        staff_delegation,
        staff_files,
        staff_intake,
        staff_ops,
        stats,
        uploads,
        verifiers,
    )

    return [auth.blueprint(), certificates.blueprint(), services.blueprint(), applications.blueprint(),
            staff.blueprint(), staff_intake.blueprint(),
            staff_ops.blueprint(), staff_certificates.blueprint(), designer.blueprint(), access_log.blueprint(),
            uploads.blueprint(), staff_files.blueprint(), messages.blueprint(), verifiers.blueprint(),
            stats.blueprint(), documents.blueprint(), staff_delegation.blueprint(), bpmn_messages.blueprint()]
