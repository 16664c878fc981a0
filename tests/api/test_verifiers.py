"""Registered verifiers (用证方) over real HTTP on both database passes: an admin registers a hospital
and gets its key once (only a hash is stored); the hospital scans 1,000 codes from one address
without being throttled while an anonymous scanner at that address is; the holder's access log
names the hospital and its purpose; a wrong, disabled or over-quota key is refused."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest
from sanic import Sanic

from engine.store.certificate_models import RegisteredVerifier
from engine.store.shared_models import DataAccessLog
from tests.api.helpers import OpenApiClient, error_of, running_api, seed_staff
from tests.api.helpers import staff_login as token
from tests.api.test_certificates_api import VERIFY, qr_token, wang_with_a_senior_card

A = "/api/v1/admin/verifiers"
HOSPITAL, PURPOSE = "上海市第一人民医院", "老年人就诊优待身份核验"


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch) as served:
        await seed_staff({"admin": (["window"], ["admin"]), "mca01": (["mca"], ["officer"])})
        yield served


async def _register(api: OpenApiClient, admin: str, **body: object) -> dict:
    created = await api.call("POST", A, token=admin, json={"name": HOSPITAL, "purpose": PURPOSE, **body})
    assert created.status_code == 201, created.text
    return created.json()


async def test_a_registered_verifier_scans_a_thousand_codes_and_is_named_in_the_holders_log(
        api: OpenApiClient) -> None:
    holder = await wang_with_a_senior_card(api)
    qr = await qr_token(api, holder)
    admin = await token(api, "admin")
    error_of(await api.call("POST", A, token=await token(api, "mca01"), json={"name": "x", "purpose": "y"}), 403,
             "forbidden_role")
    error_of(await api.call("POST", A, token=admin, json={"name": HOSPITAL}), 422, "validation_failed")
    error_of(await api.call("POST", A, token=admin, json={"name": HOSPITAL, "purpose": PURPOSE,
                                                          "quota_per_hour": 0}), 422, "validation_failed")
    hospital = await _register(api, admin, quota_per_hour=2000)
    key = hospital["api_key"]
    stored = await RegisteredVerifier.get(id=hospital["id"])
    assert key.startswith("gvk_") and stored.key_hash != key and key not in repr(stored.__dict__)  # hashed at rest
    listed = (await api.call("GET", A, token=admin)).json()["items"]
    assert [(v["name"], v["active"]) for v in listed] == [(HOSPITAL, True)] and key not in str(listed)

    # the address is first throttled anonymously (120 per minute) ...
    statuses = [(await api.client.post(VERIFY, json={"token": qr})).status_code for _ in range(121)]
    assert statuses[:120] == [200] * 120 and statuses[120] == 429
    started = time.monotonic()
    for _ in range(1000):  # ... yet the hospital's key at that address scans 1,000 codes unthrottled
        answer = await api.client.post(VERIFY, json={"token": qr}, headers={"X-Verifier-Key": key})
        assert answer.status_code == 200, answer.text
    elapsed = time.monotonic() - started
    assert answer.json()["valid"] is True and answer.json()["verifier"] == HOSPITAL
    print(f"1000 keyed verifications in {elapsed:.1f}s ({1000 / elapsed:.0f}/s)")
    await api.app.ctx.access_log.flush()  # scans' access-log rows are written in batches
    assert await DataAccessLog.filter(actor__startswith="verifier:").count() == 1000
    assert await DataAccessLog.filter(actor__startswith="ip:").count() == 120

    log = await api.call("GET", "/api/v1/me/access-log", token=holder.token)
    assert log.status_code == 200, log.text
    newest = log.json()["items"][0]
    assert (newest["actor"], newest["purpose"]) == (f"用证方：{HOSPITAL}", f"扫码核验：{PURPOSE}")

    # a wrong key, then a disabled one, is refused; nothing is counted against the certificate
    error_of(await api.client.post(VERIFY, json={"token": qr}, headers={"X-Verifier-Key": key[:-2] + "xx"}), 401,
             "verifier_key_invalid")
    error_of(await api.client.post(VERIFY, json={"token": qr}, headers={"X-Verifier-Key": "nonsense"}), 401,
             "verifier_key_invalid")
    disabled = await api.call("POST", f"{A}/{hospital['id']}/disable", token=admin)
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    error_of(await api.client.post(VERIFY, json={"token": qr}, headers={"X-Verifier-Key": key}), 401,
             "verifier_key_invalid")
    error_of(await api.call("POST", f"{A}/999/disable", token=admin), 404, "not_found")


async def test_a_verifier_has_a_quota_of_its_own(api: OpenApiClient) -> None:
    holder = await wang_with_a_senior_card(api)
    qr = await qr_token(api, holder)
    admin = await token(api, "admin")
    small, other = await _register(api, admin, quota_per_hour=3), await _register(api, admin, name="某银行网点")
    for _ in range(3):
        ok = await api.call("POST", VERIFY, json={"token": qr}, headers={"X-Verifier-Key": small["api_key"]})
        assert ok.status_code == 200, ok.text
    error_of(await api.call("POST", VERIFY, json={"token": qr}, headers={"X-Verifier-Key": small["api_key"]}), 429,
             "rate_limited")
    assert (await api.call("POST", VERIFY, json={"token": qr},
                           headers={"X-Verifier-Key": other["api_key"]})).status_code == 200  # not shared
