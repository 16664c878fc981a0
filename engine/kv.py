"""Shared key-value layer: rate limits, refresh-token revocation, idempotency keys, pub/sub.

Two implementations of one small interface (``KV``):

- ``RedisKV`` (``redis.asyncio``) when ``GOVFLOW_REDIS_URL`` is set: shared by every API
  process and worker, so it is what a multi-process deployment needs;
- ``MemoryKV`` otherwise: plain dicts and queues inside this process. It serves **a single
  process only** — two processes each see their own counters, keys and channels.

Values and messages are ``str``; callers encode JSON themselves. Nothing connects at import
time or in ``create_kv``: Redis connects on first use, and a Redis that cannot be reached
surfaces as ``engine.errors.DependencyDown``.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable
from contextlib import suppress
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from engine.errors import DependencyDown

T = TypeVar("T")

_REDIS_DOWN = (redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.ReadOnlyError, OSError)

# Atomic fixed-window counter: the first hit in a window starts its expiry.
_INCR_WINDOW_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
"""


class Subscription(ABC):
    """Messages published on one channel after ``subscribe`` returned, in order.

    Use as ``async with await kv.subscribe(ch) as sub: async for msg in sub: ...``.
    """

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    @abstractmethod
    async def __anext__(self) -> str: ...

    @abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()


class KV(Protocol):
    """The interface the API layer relies on; ``kind`` is ``"redis"`` or ``"memory"``."""

    kind: str

    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str, *, ex: float | None = None) -> None: ...
    async def set_nx(self, key: str, value: str, *, ex: float | None = None) -> bool:
        """Set only when absent (idempotency keys, locks); True when this call set it."""
    async def delete(self, *keys: str) -> int: ...
    async def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires; None when it is absent or never expires."""
    async def incr_window(self, key: str, window_s: float) -> int:
        """Count one hit in the fixed window that started with the first hit; returns the count."""
    async def ping(self) -> None: ...
    async def publish(self, channel: str, message: str) -> int:
        """Deliver to current subscribers; returns how many received it."""
    async def subscribe(self, channel: str) -> Subscription:
        """Subscribed once this returns: later publishes are not missed."""
    async def close(self) -> None: ...


def create_kv(url: str, *, prefix: str = "govflow:") -> KV:
    """``RedisKV`` for a ``redis://``/``rediss://``/``unix://`` URL, ``MemoryKV`` for an empty one.

    ``prefix`` namespaces every key and channel (tests use a random one).
    """
    if not url:
        return MemoryKV(prefix=prefix)
    return RedisKV(url, prefix=prefix)


# --------------------------------------------------------------------------- in-process

class MemoryKV:
    """In-process fallback: correct for one process only (see module docstring)."""

    kind = "memory"
    _SWEEP_EVERY = 1000

    def __init__(self, *, prefix: str = "") -> None:
        self.prefix = prefix
        self._data: dict[str, tuple[str, float | None]] = {}
        self._channels: dict[str, set[asyncio.Queue[str]]] = {}
        self._writes = 0

    def _live(self, key: str) -> tuple[str, float | None] | None:
        item = self._data.get(self.prefix + key)
        if item is not None and item[1] is not None and item[1] <= time.monotonic():
            del self._data[self.prefix + key]
            return None
        return item

    def _put(self, key: str, value: str, ex: float | None) -> None:
        self._writes += 1
        if self._writes % self._SWEEP_EVERY == 0:
            now = time.monotonic()
            for k in [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]:
                del self._data[k]
        self._data[self.prefix + key] = (value, time.monotonic() + ex if ex is not None else None)

    async def get(self, key: str) -> str | None:
        item = self._live(key)
        return item[0] if item else None

    async def set(self, key: str, value: str, *, ex: float | None = None) -> None:
        self._put(key, value, ex)

    async def set_nx(self, key: str, value: str, *, ex: float | None = None) -> bool:
        if self._live(key) is not None:
            return False
        self._put(key, value, ex)
        return True

    async def delete(self, *keys: str) -> int:
        found = [k for k in keys if self._live(k) is not None]
        for k in found:
            del self._data[self.prefix + k]
        return len(found)

    async def ttl(self, key: str) -> float | None:
        item = self._live(key)
        if item is None or item[1] is None:
            return None
        return max(0.0, item[1] - time.monotonic())

    async def incr_window(self, key: str, window_s: float) -> int:
        item = self._live(key)
        if item is None:
            self._put(key, "1", window_s)
            return 1
        count = int(item[0]) + 1
        self._data[self.prefix + key] = (str(count), item[1])
        return count

    async def ping(self) -> None:
        return None

    async def publish(self, channel: str, message: str) -> int:
        queues = self._channels.get(self.prefix + channel, set())
        for queue in queues:
            if queue.full():  # a slow subscriber loses its oldest message, never blocks publishers
                queue.get_nowait()
            queue.put_nowait(message)
        return len(queues)

    async def subscribe(self, channel: str) -> Subscription:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)
        self._channels.setdefault(self.prefix + channel, set()).add(queue)
        return _MemorySubscription(self, self.prefix + channel, queue)

    def _unsubscribe(self, channel: str, queue: asyncio.Queue[str]) -> None:
        queues = self._channels.get(channel)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._channels[channel]

    async def close(self) -> None:
        self._data.clear()
        self._channels.clear()


class _MemorySubscription(Subscription):
    def __init__(self, kv: MemoryKV, channel: str, queue: asyncio.Queue[str]) -> None:
        self._kv, self._channel, self._queue = kv, channel, queue
        self._closed = False

    async def __anext__(self) -> str:
        if self._closed:
            raise StopAsyncIteration
        return await self._queue.get()

    async def close(self) -> None:
        self._closed = True
        self._kv._unsubscribe(self._channel, self._queue)


# --------------------------------------------------------------------------- Redis

async def _guard(call: Awaitable[T]) -> T:
    """Await a Redis call; connection trouble becomes ``DependencyDown`` (HTTP 503)."""
    try:
        return await call
    except _REDIS_DOWN as exc:
        raise DependencyDown("缓存服务（Redis）暂不可用，请稍后重试", detail=str(exc)) from exc


class RedisKV:
    """Redis-backed KV shared by every process that points at the same server."""

    kind = "redis"

    def __init__(self, url: str, *, prefix: str = "", connect_timeout_s: float = 2.0,
                 timeout_s: float = 5.0) -> None:
        self.prefix = prefix
        self._client: Any = aioredis.from_url(
            url, decode_responses=True, socket_connect_timeout=connect_timeout_s,
            socket_timeout=timeout_s, health_check_interval=30,
        )
        self._incr_window = self._client.register_script(_INCR_WINDOW_LUA)

    async def get(self, key: str) -> str | None:
        value: str | None = await _guard(self._client.get(self.prefix + key))
        return value

    async def set(self, key: str, value: str, *, ex: float | None = None) -> None:
        await _guard(self._client.set(self.prefix + key, value, px=_ms(ex)))

    async def set_nx(self, key: str, value: str, *, ex: float | None = None) -> bool:
        return bool(await _guard(self._client.set(self.prefix + key, value, px=_ms(ex), nx=True)))

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        return int(await _guard(self._client.delete(*(self.prefix + k for k in keys))))

    async def ttl(self, key: str) -> float | None:
        ms = int(await _guard(self._client.pttl(self.prefix + key)))
        return ms / 1000 if ms >= 0 else None

    async def incr_window(self, key: str, window_s: float) -> int:
        window_ms = _ms(window_s) or 1
        return int(await _guard(self._incr_window(keys=[self.prefix + key], args=[window_ms])))

    async def ping(self) -> None:
        await _guard(self._client.ping())

    async def publish(self, channel: str, message: str) -> int:
        return int(await _guard(self._client.publish(self.prefix + channel, message)))

    async def subscribe(self, channel: str) -> Subscription:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await _guard(pubsub.subscribe(self.prefix + channel))
        except BaseException:
            with suppress(Exception):
                await pubsub.aclose()
            raise
        return _RedisSubscription(pubsub)

    async def close(self) -> None:
        with suppress(*_REDIS_DOWN):
            await self._client.aclose()


class _RedisSubscription(Subscription):
    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub
        self._closed = False

    async def __anext__(self) -> str:
        while not self._closed:
            message = await _guard(self._pubsub.get_message(ignore_subscribe_messages=True, timeout=None))
            if message is not None and message.get("type") == "message":
                return str(message["data"])
        raise StopAsyncIteration

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with suppress(*_REDIS_DOWN):
            await self._pubsub.unsubscribe()
        with suppress(*_REDIS_DOWN):
            await self._pubsub.aclose()


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else max(1, int(seconds * 1000))


__all__ = ["KV", "MemoryKV", "RedisKV", "Subscription", "create_kv"]
