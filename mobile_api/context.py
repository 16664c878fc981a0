"""``app.ctx``: the shared handles of one API app, typed.

The factory fills in what needs no I/O (settings, metrics); the ``before_server_start``
listener fills in the rest (kv, engine, departments), so nothing connects at import time or
while the app is being built. Reading ``kv`` or ``engine`` before the server started is a
programming error and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.config import Settings
from engine.kernel import CaseEngine
from engine.platform import KV
from mobile_api.observability import Metrics


@dataclass
class AppContext:
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    departments: dict[str, str] = field(default_factory=dict)  # code -> Chinese name
    generate_schemas: bool = False  # tests only: create tables instead of running migrations
    _kv: KV | None = None
    _engine: CaseEngine | None = None
    catalog: Any = None  # engine.citizen.catalog.Catalog, loaded when the server starts
    applications: Any = None  # engine.citizen.applications.ApplicationService
    access_log: Any = None  # engine.accountability.AccessLogBuffer: verification access-log rows, in batches
    access_log_stop: Any = None  # asyncio.Event ending its flush task
    access_log_task: Any = None

    @property
    def kv(self) -> KV:
        """Rate limits, token revocation, idempotency keys, pub/sub (Redis or in-process)."""
        if self._kv is None:
            raise RuntimeError("app.ctx.kv is set when the server starts")
        return self._kv

    @kv.setter
    def kv(self, value: KV) -> None:
        self._kv = value

    async def close_kv(self) -> None:
        """Close the KV if the server opened one (a failed start may not have)."""
        if self._kv is not None:
            await self._kv.close()

    @property
    def engine(self) -> CaseEngine:
        """The case engine, built after the database is initialised."""
        if self._engine is None:
            raise RuntimeError("app.ctx.engine is set when the server starts")
        return self._engine

    @engine.setter
    def engine(self, value: CaseEngine) -> None:
        self._engine = value


__all__ = ["AppContext"]
