"""engine.platform.kv against both implementations: the in-process fallback and a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from engine.errors import DependencyDown
from engine.platform.kv import KV, MemoryKV, RedisKV, create_kv
from mobile_api.errors import status_of
from tests.api.conftest import CLOSED_REDIS_URL, REDIS_TEST_URL


@pytest.fixture(params=["memory", "redis"])
async def kv(request: pytest.FixtureRequest) -> AsyncIterator[KV]:
    """A KV under a random prefix; the Redis keys it leaves are deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex}:"
    store = create_kv("" if request.param == "memory" else REDIS_TEST_URL, prefix=prefix)
    try:
        yield store
    finally:
        await store.close()
        if request.param == "redis":
            raw = aioredis.from_url(REDIS_TEST_URL)
            keys = [key async for key in raw.scan_iter(match=f"{prefix}*")]
            if keys:
                await raw.delete(*keys)
            await raw.aclose()


def test_create_kv_picks_the_implementation() -> None:
    assert isinstance(create_kv(""), MemoryKV) and create_kv("").kind == "memory"
    assert isinstance(create_kv(REDIS_TEST_URL), RedisKV) and create_kv(REDIS_TEST_URL).kind == "redis"


async def test_set_get_delete(kv: KV) -> None:
    assert await kv.get("a") is None
    await kv.set("a", "1")
    assert await kv.get("a") == "1" and await kv.ttl("a") is None
    assert await kv.delete("a", "never-set") == 1
    assert await kv.get("a") is None
    await kv.ping()


async def test_exists_any_sees_any_live_key_of_several(kv: KV) -> None:
    assert await kv.exists_any("x", "y") is False and await kv.exists_any() is False
    await kv.set("y", "1")
    assert await kv.exists_any("x", "y") is True and await kv.exists_any("y") is True
    await kv.set("gone", "1", ex=0.2)
    await asyncio.sleep(0.35)
    assert await kv.exists_any("x", "gone") is False


async def test_set_nx_only_sets_once(kv: KV) -> None:
    assert await kv.set_nx("idem", "first", ex=30) is True
    assert await kv.set_nx("idem", "second", ex=30) is False
    assert await kv.get("idem") == "first"
    ttl = await kv.ttl("idem")
    assert ttl is not None and 25 < ttl <= 30


async def test_keys_expire(kv: KV) -> None:
    await kv.set("short", "x", ex=0.6)
    assert await kv.set_nx("nx-short", "y", ex=0.6) is True
    assert await kv.get("short") == "x"
    await asyncio.sleep(0.9)
    assert await kv.get("short") is None and await kv.ttl("short") is None
    assert await kv.set_nx("nx-short", "z", ex=5) is True  # free again after expiry


async def test_incr_window_counts_within_a_window_then_resets(kv: KV) -> None:
    counts = [await kv.incr_window("rl:ip:1.2.3.4", 0.6) for _ in range(3)]
    assert counts == [1, 2, 3]
    ttl = await kv.ttl("rl:ip:1.2.3.4")
    assert ttl is not None and 0 < ttl <= 0.6  # the window is not extended by later hits
    assert await kv.incr_window("rl:ip:5.6.7.8", 0.6) == 1  # keys are independent
    await asyncio.sleep(0.9)
    assert await kv.incr_window("rl:ip:1.2.3.4", 0.6) == 1


async def test_incr_window_is_atomic_under_concurrency(kv: KV) -> None:
    counts = await asyncio.gather(*(kv.incr_window("rl:burst", 10) for _ in range(50)))
    assert sorted(counts) == list(range(1, 51))


async def test_incr_window_read_counts_and_reads_other_keys_in_one_call(kv: KV) -> None:
    await kv.set("version:a", "v1")
    assert await kv.incr_window_read("rl:verify", 0.6, "version:a", "version:missing") == (1, ["v1", None])
    await kv.set("version:a", "v2")  # read afresh on every call, missing keys keep their place
    assert await kv.incr_window_read("rl:verify", 0.6, "version:missing", "version:a") == (2, [None, "v2"])
    assert await kv.incr_window_read("rl:verify", 0.6) == (3, [])
    assert await kv.incr_window("rl:verify", 0.6) == 4  # the same counter as incr_window's
    ttl = await kv.ttl("rl:verify")
    assert ttl is not None and 0 < ttl <= 0.6
    await asyncio.sleep(0.9)
    assert await kv.incr_window_read("rl:verify", 0.6, "version:a") == (1, ["v2"])
    counts = await asyncio.gather(*(kv.incr_window_read("rl:burst", 10, "version:a") for _ in range(30)))
    assert sorted(c for c, _ in counts) == list(range(1, 31)) and {v[0] for _, v in counts} == {"v2"}


async def test_publish_subscribe_delivers_in_order(kv: KV) -> None:
    async with await kv.subscribe("case:42") as sub:
        assert await kv.publish("case:42", "step_done") == 1
        assert await kv.publish("case:42", "case_completed") == 1
        assert await kv.publish("case:other", "ignored") == 0
        got = [await asyncio.wait_for(sub.__anext__(), 5) for _ in range(2)]
    assert got == ["step_done", "case_completed"]
    assert await kv.publish("case:42", "after close") == 0


async def test_subscribers_each_get_every_message(kv: KV) -> None:
    async with await kv.subscribe("live") as first, await kv.subscribe("live") as second:
        # Redis counts subscriber connections, and a process's subscriptions share one
        assert await kv.publish("live", "hello") == (2 if kv.kind == "memory" else 1)
        received = await asyncio.gather(asyncio.wait_for(first.__anext__(), 5),
                                        asyncio.wait_for(second.__anext__(), 5))
    assert received == ["hello", "hello"]


async def test_prefixes_isolate_namespaces() -> None:
    a, b = MemoryKV(prefix="a:"), MemoryKV(prefix="b:")
    await a.set("k", "1")
    assert await b.get("k") is None


async def test_redis_down_is_dependency_down() -> None:
    down = create_kv(CLOSED_REDIS_URL)
    try:
        calls = (lambda: down.ping(), lambda: down.get("k"), lambda: down.set_nx("k", "v"),
                 lambda: down.incr_window("k", 1), lambda: down.incr_window_read("k", 1, "v"),
                 lambda: down.publish("c", "m"), lambda: down.subscribe("c"))
        for call in calls:
            with pytest.raises(DependencyDown) as info:
                await call()
            assert status_of(info.value) == 503 and info.value.code == "dependency_unavailable"
    finally:
        await down.close()
