"""The certificate register as QR verification reads it: cached per process, invalidated everywhere.

A scan needs the certificate's row (its state, validity dates, holder's masked code) — read from
the database on every scan before. ``StateCache.get`` keeps rows in process memory, valid while the
deployment-wide **state version** is unchanged: one ``GET`` on the key-value store (Redis when
configured) per scan, no SQL — or none at all when the caller read the version in a round trip it
made anyway (``get(identifier, version=...)``: QR verification reads it with its rate-limit
counter). ``state_changed`` — called **after the commit** of every state change (suspend, revoke,
cancel, restore: ``lifecycle.change_state``, ``store.set_state``, the human review's revocation) —
writes a new version, so every API process drops its cached rows at its next scan: a revoked
certificate stops verifying on the next request anywhere. Without a shared store (development, one
process) the version lives in this process. Each entry also expires after ``ttl_s`` (a lost
version write cannot keep a stale state longer), and if the store is unreachable the scan reads
the database, as before.

``VersionedCache`` is that mechanism on its own; the registered verifiers' rows use it too
(``engine.certificates.verifiers.VERIFIER_CACHE``, its own version key, bumped when a verifier is
disabled).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Generic, TypeVar

from engine.certificates.store import Certificate, by_identifier

VERSION_KEY = "certificates:state-version"
READ = object()  # ``version=READ``: the cache reads the shared version itself (one round trip)
V = TypeVar("V")


class VersionedCache(Generic[V]):
    """Values by key in process memory, valid while the shared version at ``version_key`` is the one
    they were read under, and for ``ttl_s`` at most.

    The rule that keeps it correct across processes: a value is kept only under a version read
    **before** the value was read from the database (``keep(key, value, version)`` with the version
    the caller read first, and only while it is still the newest this process has seen). A change
    committed after that read bumps the version, so it can never hide behind an older value."""

    version_key = ""

    def __init__(self, kv: Any = None, *, ttl_s: float = 60.0, max_entries: int = 100_000) -> None:
        self.kv = kv
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._local_version = uuid.uuid4().hex
        self._seen: str | None = None
        self._values: dict[str, tuple[float, V]] = {}

    def install(self, kv: Any) -> None:
        """Share the version through ``kv`` (the API and the CLI call this once they have it)."""
        self.kv = kv
        self._values.clear()
        self._seen = None

    def shared_key(self, kv: Any) -> str | None:
        """The key a caller reads from ``kv`` to pass as ``version``; None when this cache does not
        share its version through ``kv`` (then it reads its own)."""
        return self.version_key if kv is not None and kv is self.kv else None

    def version_in(self, kv: Any, values: dict[str, str | None]) -> Any:
        """The ``version`` argument from ``values`` (key → value, read from ``kv`` in one round
        trip): the value at ``shared_key(kv)`` (a missing key is version "0"), or ``READ`` when it
        was not read there (the cache then reads its own)."""
        key = self.shared_key(kv)
        return (values.get(key) or "0") if key is not None and key in values else READ

    async def version(self) -> str | None:
        """The current shared version; None when the store is down (then nothing is cached)."""
        if self.kv is None:
            return self._local_version
        try:
            return await self.kv.get(self.version_key) or "0"
        except Exception:  # noqa: BLE001 - store down: no cache, the caller reads the database
            return None

    def adopt(self, version: str | None) -> None:
        """Take ``version`` (read from the store just now) as current: a new one drops every value."""
        version = version or "0"
        if version != self._seen:
            self._values.clear()
            self._seen = version

    def cached(self, key: str) -> V | None:
        """The value kept for ``key`` under the version last adopted, unless expired. No I/O."""
        hit = self._values.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    def keep(self, key: str, value: V, version: str | None) -> None:
        """Remember ``value``, read from the database after ``version`` was read — unless a newer
        version was adopted meanwhile (another request saw a change this value may predate)."""
        if version is None or (version or "0") != self._seen:
            return
        if len(self._values) >= self.max_entries:
            self._values.clear()
        self._values[key] = (time.monotonic() + self.ttl_s, value)

    async def changed(self) -> None:
        """Something cached changed (and is committed): every process re-reads at its next use."""
        self._values.clear()
        self._local_version = uuid.uuid4().hex
        if self.kv is not None:
            try:
                await self.kv.set(self.version_key, uuid.uuid4().hex)
            except Exception:  # noqa: BLE001 - other processes fall back on the entry ttl
                logging.getLogger("govflow.certificates").warning("%s not shared", self.version_key, exc_info=True)


class StateCache(VersionedCache[Certificate]):
    version_key = VERSION_KEY

    async def get(self, identifier: str, *, version: Any = READ) -> Certificate | None:
        """The certificate with this identifier (``store.by_identifier``), from the cache when
        current. ``version``: the shared version the caller read from ``shared_key(kv)`` in this
        request (None: the store was down); by default the cache reads it."""
        if version is READ:
            version = await self.version()
        if version is None:
            return await by_identifier(identifier)
        self.adopt(version)
        row = self.cached(identifier)
        if row is not None:
            return row
        row = await by_identifier(identifier)
        if row is not None:  # unknown identifiers are not cached: a new certificate is found at once
            self.keep(identifier, row, version)
        return row

    async def state_changed(self) -> None:
        """A certificate's state changed (and is committed): every process re-reads the register."""
        await self.changed()


STATE_CACHE = StateCache()


async def state_changed() -> None:
    await STATE_CACHE.state_changed()


__all__ = ["READ", "STATE_CACHE", "StateCache", "VERSION_KEY", "VersionedCache", "state_changed"]
