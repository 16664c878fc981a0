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

# The same counter, and the values of KEYS[2..] read in the same round trip (a hot path's
# cache versions). A missing key comes back as nil (Lua false), so the array keeps its length.
_INCR_WINDOW_READ_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local out = {n}
for i = 2, #KEYS do
  out[i] = redis.call('GET', KEYS[i])
end
return out
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
    async def exists_any(self, *keys: str) -> bool:
        """Whether any of ``keys`` is set, in one round trip (e.g. a token's revocation marks)."""
        ...
    async def set_nx(self, key: str, value: str, *, ex: float | None = None) -> bool:
        """Set only when absent (idempotency keys, locks); True when this call set it."""
    async def delete(self, *keys: str) -> int: ...
    async def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires; None when it is absent or never expires."""
    async def incr_window(self, key: str, window_s: float) -> int:
        """Count one hit in the fixed window that started with the first hit; returns the count."""
    async def incr_window_read(self, key: str, window_s: float, *reads: str) -> tuple[int, list[str | None]]:
        """``incr_window`` plus the values of ``reads``, in one round trip (a rate limit and the
        cache versions a hot path needs): ``(count, [value or None per key])``."""
        ...
    async def ping(self) -> None: ...
    async def publish(self, channel: str, message: str) -> int:
        """Deliver to current subscribers; returns how many received it (Redis: how many
        connections, i.e. processes — each process shares one subscriber connection)."""
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

    async def exists_any(self, *keys: str) -> bool:
        return any(self._live(key) for key in keys)

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

    async def incr_window_read(self, key: str, window_s: float, *reads: str) -> tuple[int, list[str | None]]:
        count = await self.incr_window(key, window_s)
        return count, [await self.get(k) for k in reads]

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
        self._incr_window_read = self._client.register_script(_INCR_WINDOW_READ_LUA)
        self._hub: _RedisHub | None = None

    async def get(self, key: str) -> str | None:
        value: str | None = await _guard(self._client.get(self.prefix + key))
        return value

    async def set(self, key: str, value: str, *, ex: float | None = None) -> None:
        await _guard(self._client.set(self.prefix + key, value, px=_ms(ex)))

    async def exists_any(self, *keys: str) -> bool:
        return bool(keys) and bool(await _guard(self._client.exists(*(self.prefix + key for key in keys))))

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

    async def incr_window_read(self, key: str, window_s: float, *reads: str) -> tuple[int, list[str | None]]:
        window_ms = _ms(window_s) or 1
        keys = [self.prefix + key, *(self.prefix + k for k in reads)]
        count, *values = await _guard(self._incr_window_read(keys=keys, args=[window_ms]))
        return int(count), [None if v is None else str(v) for v in values]

    async def ping(self) -> None:
        await _guard(self._client.ping())

    async def publish(self, channel: str, message: str) -> int:
        return int(await _guard(self._client.publish(self.prefix + channel, message)))

    async def subscribe(self, channel: str) -> Subscription:
        if self._hub is None:
            self._hub = _RedisHub(self._client)
        return await self._hub.subscribe(self.prefix + channel)

    async def close(self) -> None:
        if self._hub is not None:
            await self._hub.close()
            self._hub = None
        with suppress(*_REDIS_DOWN):
            await self._client.aclose()


class _RedisHub:
    """Every subscription of one ``RedisKV`` shares ONE Redis pub/sub connection: a reader task
    hands each message to the local queues of its channel. An API process with thousands of open
    live-status streams so holds one subscriber connection, not one per stream (Redis's
    ``maxclients`` would otherwise bound the streams of the whole deployment).

    ``subscribe`` returns once Redis confirmed the subscription, so a message published after it
    returned is delivered. When the connection is lost every subscription ends (an SSE client
    reconnects) and the next ``subscribe`` opens a new connection."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._queues: dict[str, set[asyncio.Queue[str | None]]] = {}
        self._confirmed: dict[str, list[asyncio.Future[None]]] = {}  # SUBSCRIBE sent, not yet confirmed
        self._left: dict[str, list[asyncio.Future[None]]] = {}  # UNSUBSCRIBE sent, not yet confirmed
        self._lock = asyncio.Lock()

    async def subscribe(self, channel: str) -> Subscription:
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1000)
        async with self._lock:
            if self._pubsub is None:
                self._pubsub = self._client.pubsub()
            if channel in self._queues:  # already subscribed on the shared connection
                self._queues[channel].add(queue)
                return _HubSubscription(self, channel, queue)
            confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._confirmed.setdefault(channel, []).append(confirmed)
            self._queues[channel] = {queue}
            try:
                await _guard(self._pubsub.subscribe(channel))
                if self._reader is None or self._reader.done():
                    self._reader = asyncio.create_task(self._read(self._pubsub))
                await asyncio.wait_for(asyncio.shield(confirmed), 5)
            except BaseException as exc:
                self._queues.pop(channel, None)
                self._confirmed.pop(channel, None)
                if isinstance(exc, TimeoutError):
                    raise DependencyDown("缓存服务（Redis）暂不可用，请稍后重试", detail="subscribe not confirmed") from exc
                raise
        return _HubSubscription(self, channel, queue)

    async def _read(self, pubsub: Any) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                channel = str(message.get("channel"))
                if message.get("type") in ("subscribe", "unsubscribe"):
                    waiting = self._confirmed if message["type"] == "subscribe" else self._left
                    for future in waiting.pop(channel, []):
                        if not future.done():
                            future.set_result(None)
                elif message.get("type") == "message":
                    for queue in list(self._queues.get(channel, ())):
                        if queue.full():  # a slow subscriber loses its oldest message, never blocks others
                            queue.get_nowait()
                        queue.put_nowait(str(message["data"]))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection lost: end every subscription
            self._reset(pubsub, exc)

    def _reset(self, pubsub: Any, exc: BaseException) -> None:
        if self._pubsub is not pubsub:
            return
        self._pubsub = None
        for queues in self._queues.values():
            for queue in queues:
                with suppress(asyncio.QueueFull):
                    queue.put_nowait(None)
        self._queues.clear()
        for futures in self._confirmed.values():
            for future in futures:
                if not future.done():
                    future.set_exception(DependencyDown("缓存服务（Redis）暂不可用，请稍后重试", detail=str(exc)))
        self._confirmed.clear()
        for futures in self._left.values():  # the connection is gone: nothing is subscribed any more
            for future in futures:
                if not future.done():
                    future.set_result(None)
        self._left.clear()
        asyncio.ensure_future(_close_quietly(pubsub))

    async def unsubscribe(self, channel: str, queue: asyncio.Queue[str | None]) -> None:
        async with self._lock:
            queues = self._queues.get(channel)
            if queues is None:
                return
            queues.discard(queue)
            if not queues:
                del self._queues[channel]
                if self._pubsub is not None:
                    # wait for Redis to confirm: a publish after close() then reaches nobody here
                    left: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    self._left.setdefault(channel, []).append(left)
                    with suppress(*_REDIS_DOWN, TimeoutError):
                        await self._pubsub.unsubscribe(channel)
                        await asyncio.wait_for(asyncio.shield(left), 5)
                    self._left.pop(channel, None)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._pubsub is not None:
            await _close_quietly(self._pubsub)
            self._pubsub = None
        self._queues.clear()


async def _close_quietly(pubsub: Any) -> None:
    with suppress(Exception):
        await pubsub.aclose()


class _HubSubscription(Subscription):
    def __init__(self, hub: _RedisHub, channel: str, queue: asyncio.Queue[str | None]) -> None:
        self._hub, self._channel, self._queue = hub, channel, queue
        self._closed = False

    async def __anext__(self) -> str:
        if self._closed:
            raise StopAsyncIteration
        message = await self._queue.get()
        if message is None:  # the shared connection was lost
            self._closed = True
            raise DependencyDown("缓存服务（Redis）连接中断", detail="pub/sub connection lost")
        return message

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._hub.unsubscribe(self._channel, self._queue)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else max(1, int(seconds * 1000))


__all__ = ["KV", "MemoryKV", "RedisKV", "Subscription", "create_kv"]
