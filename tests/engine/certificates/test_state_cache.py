"""The register cache QR verification reads: two caches on one shared store stand for two API
processes; a committed state change in one reaches the other at its next scan."""

from __future__ import annotations

import hashlib

from engine.certificates.keys import KeyRing
from engine.certificates.signing import CertState
from engine.certificates.state_cache import StateCache, state_changed
from engine.certificates.store import set_state, store_certificate
from engine.platform.kv import MemoryKV
from engine.store.certificate_models import Certificate
from tests.engine.certificates.test_certificates import CITIZEN_ID, cert_data, issue


async def _stored() -> str:
    signed = issue(cert_data(), serial=1, signer=KeyRing.generate_dev().active)
    await store_certificate(signed, case_id=None, holder_code_hash=hashlib.sha256(CITIZEN_ID.encode()).hexdigest(),
                            holder_code_masked="110***********002X", holder_code_enc=None)
    return signed.identifier


async def test_a_state_change_reaches_every_process_cache_at_its_next_read(db: str) -> None:
    shared = MemoryKV()
    one, two = StateCache(shared), StateCache(shared)
    identifier = await _stored()
    assert (await one.get(identifier)).state == "01" and (await two.get(identifier)).state == "01"

    # behind the caches' back (no state_changed): both keep answering from memory, without SQL
    await Certificate.filter(identifier=identifier).update(state="02")
    assert (await one.get(identifier)).state == "01" and (await two.get(identifier)).state == "01"

    from engine.certificates import state_cache

    previous, state_cache.STATE_CACHE = state_cache.STATE_CACHE, one
    try:
        await set_state(identifier, CertState.REVOKED)  # the committed change bumps the shared version
    finally:
        state_cache.STATE_CACHE = previous
    assert (await two.get(identifier)).state == "03" and (await one.get(identifier)).state == "03"


async def test_unknown_identifiers_are_not_cached_and_entries_expire(db: str) -> None:
    cache = StateCache(MemoryKV(), ttl_s=0)
    assert await cache.get("no-such-certificate") is None
    identifier = await _stored()
    assert (await cache.get(identifier)).state == "01"
    await Certificate.filter(identifier=identifier).update(state="02")
    assert (await cache.get(identifier)).state == "02"  # ttl 0: every read goes to the register


async def test_without_a_shared_store_the_process_invalidates_itself(db: str) -> None:
    from engine.certificates import state_cache

    identifier = await _stored()
    assert (await state_cache.STATE_CACHE.get(identifier)).state == "01"
    await Certificate.filter(identifier=identifier).update(state="02")
    await state_changed()
    assert (await state_cache.STATE_CACHE.get(identifier)).state == "02"


class _DownKV:
    async def get(self, key: str) -> str | None:
        raise ConnectionError("redis down")

    async def set(self, key: str, value: str, *, ex: float | None = None) -> None:
        raise ConnectionError("redis down")


async def test_with_the_store_down_every_scan_reads_the_register(db: str) -> None:
    cache = StateCache(_DownKV())
    identifier = await _stored()
    assert (await cache.get(identifier)).state == "01"
    await Certificate.filter(identifier=identifier).update(state="03")
    assert (await cache.get(identifier)).state == "03"
    await cache.state_changed()  # logged, not raised: the change itself is committed
