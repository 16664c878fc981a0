"""The certificate register as QR verification reads it: cached per process, invalidated everywhere.

A scan needs the certificate's row (its state, validity dates, holder's masked code) — read from
the database on every scan before. ``StateCache.get`` keeps rows in process memory, valid while the
deployment-wide **state version** is unchanged: one ``GET`` on the key-value store (Redis when
configured) per scan, no SQL. ``state_changed`` — called **after the commit** of every state change
(suspend, revoke, cancel, restore: ``lifecycle.change_state``, ``store.set_state``, the human
review's revocation) — writes a new version, so every API process drops its cached rows at its next
scan: a revoked certificate stops verifying on the next request anywhere. Without a shared store
(development, one process) the version lives in this process. Each entry also expires after
``ttl_s`` (a lost version write cannot keep a stale state longer), and if the store is unreachable
the scan reads the database, as before.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from engine.certificates.store import Certificate, by_identifier

VERSION_KEY = "certificates:state-version"


class StateCache:
    def __init__(self, kv: Any = None, *, ttl_s: float = 60.0, max_entries: int = 100_000) -> None:
        self.kv = kv
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._local_version = uuid.uuid4().hex
        self._seen: str | None = None
        self._rows: dict[str, tuple[float, Certificate]] = {}

    def install(self, kv: Any) -> None:
        """Share the version through ``kv`` (the API and the CLI call this once they have it)."""
        self.kv = kv
        self._rows.clear()
        self._seen = None

    async def _version(self) -> str | None:
        if self.kv is None:
            return self._local_version
        try:
            return await self.kv.get(VERSION_KEY) or "0"
        except Exception:  # noqa: BLE001 - store down: no cache, the scan reads the database
            return None

    async def get(self, identifier: str) -> Certificate | None:
        """The certificate with this identifier (``store.by_identifier``), from the cache when current."""
        version = await self._version()
        if version is None:
            return await by_identifier(identifier)
        if version != self._seen:
            self._rows.clear()
            self._seen = version
        now = time.monotonic()
        hit = self._rows.get(identifier)
        if hit is not None and hit[0] > now:
            return hit[1]
        row = await by_identifier(identifier)
        if row is not None:  # unknown identifiers are not cached: a new certificate is found at once
            if len(self._rows) >= self.max_entries:
                self._rows.clear()
            self._rows[identifier] = (now + self.ttl_s, row)
        return row

    async def state_changed(self) -> None:
        """A certificate's state changed (and is committed): every process re-reads the register."""
        self._rows.clear()
        self._local_version = uuid.uuid4().hex
        if self.kv is not None:
            try:
                await self.kv.set(VERSION_KEY, uuid.uuid4().hex)
            except Exception:  # noqa: BLE001 - other processes fall back on the entry ttl
                import logging

                logging.getLogger("govflow.certificates").warning("state version not shared", exc_info=True)


STATE_CACHE = StateCache()


async def state_changed() -> None:
    await STATE_CACHE.state_changed()


__all__ = ["STATE_CACHE", "StateCache", "VERSION_KEY", "state_changed"]
