"""The register cache QR verification reads: two caches on one shared store stand for two API
processes; a committed state change in one reaches the other at its next scan. The same for the
registered verifiers' rows: a verifier disabled in one process is refused by the other."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from engine.certificates.keys import KeyRing
from engine.certificates.signing import CertState
from engine.certificates.state_cache import VERSION_KEY, StateCache, state_changed
from engine.certificates.store import set_state, store_certificate
from engine.certificates.verifiers import VERIFIER_VERSION_KEY, VerifierCache, VerifierKeyInvalid
from engine.platform.kv import MemoryKV, create_kv
from engine.store.certificate_models import Certificate, RegisteredVerifier
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


# --- the rule every versioned cache keeps, and the registered verifiers' rows ----------------


def test_a_value_is_kept_only_under_the_version_read_before_it() -> None:
    from engine.certificates.state_cache import VersionedCache

    cache: VersionedCache[str] = VersionedCache(MemoryKV())
    cache.adopt("v1")
    cache.keep("k", "read under v1", "v1")
    assert cache.cached("k") == "read under v1"
    cache.adopt("v2")  # another request saw a newer version: everything older is gone ...
    assert cache.cached("k") is None
    cache.keep("k", "read under v1 by a slow request", "v1")  # ... and a slow reader cannot put it back
    assert cache.cached("k") is None
    cache.keep("k", "read under v2", None)  # a read made while the store was down is not kept either
    assert cache.cached("k") is None


@asynccontextmanager
async def _two_processes_stores() -> AsyncIterator[tuple[Any, Any]]:
    """Two connections to one shared store, as two API processes have: two Redis clients in the
    PostgreSQL pass (GOVFLOW_TEST_REDIS), else one in-process store."""
    from tests.conftest import REDIS_URL

    if not REDIS_URL:
        shared = MemoryKV()
        yield shared, shared
        return
    prefix = f"test:{uuid.uuid4().hex}:"
    one, two = create_kv(REDIS_URL, prefix=prefix), create_kv(REDIS_URL, prefix=prefix)
    try:
        yield one, two
    finally:
        await one.delete(VERIFIER_VERSION_KEY, VERSION_KEY)
        await one.close()
        await two.close()


async def test_a_disabled_verifier_is_refused_by_every_process_at_its_next_scan(db: str) -> None:
    from engine.certificates import verifiers

    async with _two_processes_stores() as (kv_one, kv_two):
        one, two = VerifierCache(kv_one), VerifierCache(kv_two)
        row, key = await verifiers.register("上海市第一人民医院", "就诊优待核验", 100, created_by="test")
        assert (await one.authenticate(key)).id == row.id and (await two.authenticate(key)).id == row.id
        assert one.peek(key).id == row.id and two.peek(key) is not None  # kept: no SQL at the next scan

        # behind the caches' back (no version bump): both keep answering from memory
        await RegisteredVerifier.filter(id=row.id).update(quota_per_hour=7)
        assert (await one.authenticate(key)).quota_per_hour == 100
        assert (await two.authenticate(key, version=await two.version())).quota_per_hour == 100

        previous, verifiers.VERIFIER_CACHE = verifiers.VERIFIER_CACHE, one
        try:
            await verifiers.disable(row.id, actor="admin")  # committed, then the shared version moves
        finally:
            verifiers.VERIFIER_CACHE = previous
        # the other process still holds the old row in memory, but its next scan's version disowns it
        assert two.peek(key) is not None
        for cache in (two, one):
            with pytest.raises(VerifierKeyInvalid):
                await cache.authenticate(key, version=await cache.version())
            assert cache.peek(key) is None  # the disabled row is kept: refused without SQL
        with pytest.raises(VerifierKeyInvalid):
            await two.authenticate(key[:-2] + "xx")  # a wrong secret under a known prefix
        with pytest.raises(VerifierKeyInvalid):
            await two.authenticate("gvk_nosuchprefix_secret")
        assert two.cached("nosuchprefix") is None  # unknown prefixes are not kept


async def test_with_the_store_down_every_verifier_check_reads_the_database(db: str) -> None:
    from engine.certificates import verifiers

    cache = VerifierCache(_DownKV())
    row, key = await verifiers.register("某银行网点", "开户核验", created_by="test")
    assert (await cache.authenticate(key)).id == row.id
    await RegisteredVerifier.filter(id=row.id).update(active=False)
    with pytest.raises(VerifierKeyInvalid):
        await cache.authenticate(key)
