"""The staff lockout over HTTP behind a trusted proxy: it is keyed by (account, client address), so
five wrong passwords from one address lock that address out of that account while the owner logs in
from another — nobody can keep an account such as ``admin`` locked from anywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sanic import Sanic

from engine.platform.seed import hash_password
from engine.store.models import StaffUser
from engine.workbench import staff as desk
from tests.api.helpers import OpenApiClient, error_of, running_api

LOGIN, PASSWORD = "/api/v1/staff/login", "correct horse battery staple"


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch, PROXIES_COUNT=1) as served:
        await StaffUser.create(username="admin", name="admin", password_hash=hash_password(PASSWORD),
                               departments=["samr"], roles=["admin"])
        yield served


async def login(api: OpenApiClient, password: str, address: str) -> object:
    return await api.call("POST", LOGIN, json={"username": "admin", "password": password},
                          headers={"X-Forwarded-For": address})


async def test_an_attacker_locks_only_their_own_address_out(api: OpenApiClient) -> None:
    attacker, owner = "203.0.113.7", "198.51.100.2"
    for _ in range(desk.MAX_FAILURES - 1):
        error_of(await login(api, "guess", attacker), 401, "invalid_credentials")
    error_of(await login(api, "guess", attacker), 429, "account_locked")
    error_of(await login(api, PASSWORD, attacker), 429, "account_locked")  # that address stays out
    owner_login = await login(api, PASSWORD, owner)
    assert owner_login.status_code == 200, owner_login.text  # the account itself is not locked
