"""Fixtures shared by the engine's package tests: seeded staff and the application service
(both bound to the per-test database through the ``engine`` fixture of ``tests/conftest.py``)."""

from __future__ import annotations

import pytest

from engine.accountability.privacy import PiiKeys
from engine.citizen.applications import ApplicationService
from engine.citizen.catalog import Catalog
from engine.platform.seed import hash_password
from engine.store.models import StaffUser
from tests.engine.helpers import PASSWORD, STAFF_ROWS
from tests.processes.test_business_startup import NOW


@pytest.fixture
async def people(engine) -> dict[str, StaffUser]:  # noqa: ANN001 - the db-bound engine fixture
    """Officers samr01/samr02 (samr), psb01 (psb) and the samr supervisor samr_sup."""
    hashed = hash_password(PASSWORD)
    return {name: await StaffUser.create(username=name, name=name, password_hash=hashed, departments=depts,
                                         roles=roles) for name, (depts, roles) in STAFF_ROWS.items()}


@pytest.fixture
def applications(engine, settings) -> ApplicationService:  # noqa: ANN001
    """The application service on the shipped catalogue, its clock fixed at ``NOW``."""
    engine.deps.clock = lambda: NOW
    return ApplicationService(engine, Catalog.load(settings.PROCESSES_DIR),
                              pii_key=PiiKeys.from_settings(settings).blind_index_key)
