"""Registered verifiers (用证方): institutions an admin registers to verify certificates with a key.

A hospital gate or a bank counter scans hundreds of codes an hour from one address; anonymous
verification is rate-limited per address. A registered verifier sends its API key
(``X-Verifier-Key``) and gets a quota of its own (``quota_per_hour``), and the holder's access log
names the institution and its purpose instead of "匿名核验".

The key is shown once, at registration: ``gvk_<prefix>_<secret>``. Only its SHA-256 is stored
(``key_hash``); the prefix (not secret) finds the row, the hash is compared in constant time.
Registration and disabling are audited (kinds ``verifier.register`` / ``verifier.disable``).

A hospital's gate sends the same key with every scan: ``VERIFIER_CACHE`` keeps the rows in process
memory under a deployment-wide version (``VERIFIER_VERSION_KEY``, read in the scan's rate-limit
round trip) that ``disable`` bumps after its commit, so a disabled key is refused by every API
process at its next scan — no SQL per scan while nothing changed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from tortoise.transactions import in_transaction

from engine.accountability import audit
from engine.certificates.state_cache import READ, VersionedCache
from engine.errors import NotFound, Unauthenticated, ValidationFailed
from engine.store.certificate_models import RegisteredVerifier

KEY_PREFIX = "gvk_"
ACTOR_PREFIX = "verifier:"
QUOTA_MAX = 1_000_000
DEFAULT_QUOTA = 5000
VERIFIER_VERSION_KEY = "certificates:verifier-version"


class VerifierKeyInvalid(Unauthenticated):
    code = "verifier_key_invalid"
    default_message = "用证方密钥无效或已停用"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _text(value: Any, name: str, label: str, max_len: int = 200) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(f"请填写{label}", fields={name: "不能为空"})
    if len(value.strip()) > max_len:
        raise ValidationFailed(f"{label}过长", fields={name: f"最多 {max_len} 字"})
    return value.strip()


async def register(name: Any, purpose: Any, quota_per_hour: Any = None, *,
                   created_by: str) -> tuple[RegisteredVerifier, str]:
    """Register an institution; returns the row and its API key (shown once, never stored)."""
    clean_name, clean_purpose = _text(name, "name", "机构名称"), _text(purpose, "purpose", "用证目的")
    quota = DEFAULT_QUOTA if quota_per_hour is None else quota_per_hour
    if not isinstance(quota, int) or isinstance(quota, bool) or not 1 <= quota <= QUOTA_MAX:
        raise ValidationFailed("每小时核验额度无效", fields={"quota_per_hour": f"应为 1–{QUOTA_MAX} 的整数"})
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    async with in_transaction() as conn:
        row = await RegisteredVerifier.create(name=clean_name, purpose=clean_purpose, key_prefix=prefix,
                                              key_hash=_hash(key), quota_per_hour=quota, created_by=created_by,
                                              using_db=conn)
        await audit.record(conn, "verifier.register", actor=created_by, subject=f"verifier:{row.id}",
                           detail={"name": clean_name, "purpose": clean_purpose, "quota_per_hour": quota})
    return row, key


def _prefix(key: Any) -> str:
    """The row-finding prefix of a well-formed key; ``VerifierKeyInvalid`` for anything else."""
    parts = key.strip().split("_") if isinstance(key, str) else []
    if len(parts) < 3 or f"{parts[0]}_" != KEY_PREFIX or len(key) > 200:
        raise VerifierKeyInvalid()
    return parts[1]


def _checked(row: RegisteredVerifier | None, key: str) -> RegisteredVerifier:
    if row is None or not hmac.compare_digest(row.key_hash, _hash(key.strip())) or not row.active:
        raise VerifierKeyInvalid()
    return row


class VerifierCache(VersionedCache[RegisteredVerifier]):
    """Verifier rows by key prefix (disabled ones too: refused without SQL), per process."""

    version_key = VERIFIER_VERSION_KEY

    def __init__(self, kv: Any = None, *, ttl_s: float = 60.0, max_entries: int = 10_000) -> None:
        super().__init__(kv, ttl_s=ttl_s, max_entries=max_entries)

    def peek(self, key: str) -> RegisteredVerifier | None:
        """The active verifier for ``key`` as this process last knew it (no I/O; None when not cached
        or not valid). Only for choosing its quota counter: confirm it with ``authenticate(key,
        version=...)`` once the round trip brought the current version."""
        try:
            row = self.cached(_prefix(key))
            return _checked(row, key) if row is not None else None
        except VerifierKeyInvalid:
            return None

    async def authenticate(self, key: str, *, version: Any = READ) -> RegisteredVerifier:
        """The active verifier whose key this is; ``VerifierKeyInvalid`` otherwise. ``version``: the
        shared version read from ``shared_key(kv)`` in this request (by default read here); when it
        is the one the cached row was read under, no SQL."""
        prefix = _prefix(key)
        if version is READ:
            version = await self.version()
        if version is None:  # store down: no cache
            return _checked(await RegisteredVerifier.get_or_none(key_prefix=prefix), key)
        self.adopt(version)
        row = self.cached(prefix)
        if row is None:
            row = await RegisteredVerifier.get_or_none(key_prefix=prefix)
            if row is not None:  # unknown prefixes are not kept: garbage keys cannot fill the memory
                self.keep(prefix, row, version)
        return _checked(row, key)


VERIFIER_CACHE = VerifierCache()


async def authenticate(key: str) -> RegisteredVerifier:
    """The active verifier whose key this is; ``VerifierKeyInvalid`` otherwise (through the cache)."""
    return await VERIFIER_CACHE.authenticate(key)


async def all_verifiers() -> list[RegisteredVerifier]:
    return list(await RegisteredVerifier.all().order_by("id"))


async def disable(verifier_id: int, *, actor: str) -> RegisteredVerifier:
    async with in_transaction() as conn:
        row = await RegisteredVerifier.get_or_none(id=verifier_id, using_db=conn)
        if row is None:
            raise NotFound("用证方不存在")
        row.active = False
        await row.save(update_fields=["active"], using_db=conn)
        await audit.record(conn, "verifier.disable", actor=actor, subject=f"verifier:{row.id}",
                           detail={"name": row.name})
    await VERIFIER_CACHE.changed()  # committed: every API process refuses the key at its next scan
    return row


def actor_of(row: RegisteredVerifier) -> str:
    """The access-log actor of a verification by ``row``: ``verifier:<id>:<name>`` (64 chars at most)."""
    return f"{ACTOR_PREFIX}{row.id}:{row.name}"[:64]


def view(row: RegisteredVerifier) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "purpose": row.purpose, "quota_per_hour": row.quota_per_hour,
            "active": row.active, "key_prefix": f"{KEY_PREFIX}{row.key_prefix}_…", "created_by": row.created_by,
            "created_at": row.created_at.isoformat()}


__all__ = ["ACTOR_PREFIX", "KEY_PREFIX", "VERIFIER_CACHE", "VERIFIER_VERSION_KEY", "VerifierCache",
           "VerifierKeyInvalid", "actor_of", "all_verifiers", "authenticate", "disable", "register", "view"]
