"""The API fixtures (a served app on a free port: ``make_app``, ``fresh_db``) for tests/security too."""

from tests.api.conftest import fresh_db, make_app  # noqa: F401 - re-exported fixtures
