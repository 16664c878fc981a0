"""Citizen identity: accounts from mini-program logins and real-name binding (实名认证).

``login`` finds or creates the citizen of an openid; an openid alone is level 0. ``bind_real_name``
checks a name and a GB 11643 ID number, asks a ``RealNameVerifier`` for a level and evidence,
and stores the pair encrypted (AES-GCM bound to the row), masked, and — for the number — as a
blind index. One ID number belongs to one account: a second openid gets ``IdentityConflict``. Binding also
claims the cases a window clerk filed for that ID number before (``engine.workbench.intake``).
``citizen_view`` is the only shape that leaves this module for clients: masked values only.

Decrypting is rare and always logged to ``DataAccessLog`` (``read_identity``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from tortoise.exceptions import IntegrityError

from engine.accountability.audit import log_data_access
from engine.accountability.privacy import (
    PiiKeys,
    blind_index,
    is_valid_id_number,
    mask_id_number,
    mask_name,
    normalise_id,
)
from engine.config import env_is_production
from engine.errors import Conflict, DependencyDown, Invalid, ValidationFailed
from engine.store.identity_models import LEVEL_VERIFIED, REAL_NAME_LEVELS, Citizen

log = logging.getLogger("govflow.identity")

MAX_OPENID_CHARS = 64
MAX_NAME_CHARS = 50
_NAME_PUNCTUATION = set("·•．. -'")  # 少数民族 / foreign names: 阿卜杜·热合曼, Anna-Lena


class IdentityConflict(Conflict):
    code = "identity_already_bound"
    default_message = "该身份证号已绑定其他账号，如非本人操作请联系客服"


class RealNameAlreadyBound(Conflict):
    code = "real_name_already_bound"
    default_message = "该账号已完成实名认证，不能再绑定其他身份证号"


class RealNameRejected(Invalid):
    code = "real_name_rejected"
    default_message = "姓名与身份证号不一致，请核对后重试"


@dataclass(frozen=True)
class Verification:
    """A verifier's verdict: the level reached and a reference to its evidence."""

    level: int
    evidence_id: str


class RealNameVerifier(Protocol):
    """Checks that ``name`` and ``id_number`` (already GB 11643-valid) belong together.

    Returns a ``Verification`` or raises ``RealNameRejected`` (mismatch) or ``DependencyDown``.
    Production plugs in the authority's service (公安人口库 / 网证); implementations must
    never log the clear number or name.
    """

    async def verify(self, name: str, id_number: str) -> Verification: ...


class DevRealNameVerifier:
    """Development: any name with a valid number passes at level 2, evidence ``dev-<uuid>``.

    Cannot be built in production (``env`` or ``GOVFLOW_ENV``).
    """

    def __init__(self, *, env: str) -> None:
        if env_is_production(env):
            raise RuntimeError("DevRealNameVerifier is not available when GOVFLOW_ENV=production")

    async def verify(self, name: str, id_number: str) -> Verification:
        return Verification(level=LEVEL_VERIFIED, evidence_id=f"dev-{uuid.uuid4()}")


class RealNameNotConfigured(DependencyDown):
    code = "real_name_not_configured"
    default_message = "实名认证服务暂未开通，请稍后再试"


class UnconfiguredVerifier:
    """Production without a verification service: every binding answers 503."""

    async def verify(self, name: str, id_number: str) -> Verification:
        raise RealNameNotConfigured()


def real_name_verifier_from_settings(settings: Any) -> RealNameVerifier:
    """Development: ``DevRealNameVerifier``. Production: no authority connector exists yet, so
    binding is refused (503) rather than granting a level nobody checked."""
    if settings.is_production:
        return UnconfiguredVerifier()
    return DevRealNameVerifier(env=settings.ENV)


@dataclass(frozen=True)
class RealIdentity:
    """A decrypted name and ID number, for the rare caller that needs them (logged)."""

    name: str = field(repr=False)
    id_number: str = field(repr=False)
    access_log_id: int | None = None  # the DataAccessLog row of this read (to link the case once filed)


# --------------------------------------------------------------------------- accounts

async def find_citizen(citizen_id: int) -> Citizen | None:
    """The account with this id, or ``None`` (a token may outlive its account).

    Every authenticated citizen request reads its account: the statement is written once per
    dialect and the row turned into the model directly (Tortoise's query builder cost more CPU
    than the indexed read itself)."""
    conn = Citizen._meta.db
    dialect = conn.capabilities.dialect
    sql = _FIND_SQL.get(dialect)
    if sql is None:
        columns = ", ".join(f'"{column}"' for column in Citizen._meta.fields_db_projection.values())
        sql = _FIND_SQL[dialect] = (f'SELECT {columns} FROM "{Citizen._meta.db_table}" WHERE "id" = '
                                    f'{"$1" if dialect == "postgres" else "?"}')
    rows = await conn.execute_query_dict(sql, [citizen_id])
    return Citizen._init_from_db(**rows[0]) if rows else None


_FIND_SQL: dict[str, str] = {}


async def login(openid: str, unionid: str | None = None) -> Citizen:
    """The citizen of ``openid``, created at level 0 on first login. Nothing of the WeChat
    session (``session_key``) is stored. A later-known ``unionid`` is recorded."""
    if not isinstance(openid, str) or not openid or len(openid) > MAX_OPENID_CHARS:
        raise ValidationFailed("微信用户标识无效", fields={"openid": "微信用户标识无效"})
    unionid = unionid if isinstance(unionid, str) and 0 < len(unionid) <= MAX_OPENID_CHARS else None
    citizen = await Citizen.get_or_none(openid=openid)
    if citizen is None:
        try:
            citizen = await Citizen.create(openid=openid, unionid=unionid)
            log.info("citizen created: citizen_id=%s", citizen.id)
            return citizen
        except IntegrityError:  # a concurrent first login of the same openid won
            citizen = await Citizen.get(openid=openid)
    if unionid and citizen.unionid != unionid:
        citizen.unionid = unionid
        await citizen.save(update_fields=["unionid", "updated_at"])
    return citizen


async def find_by_id_number(id_number: str, *, pii_keys: PiiKeys) -> Citizen | None:
    """The citizen bound to ``id_number``, found through the blind index (no decryption)."""
    if not is_valid_id_number(id_number):
        return None
    return await Citizen.get_or_none(id_hash=blind_index(id_number, pii_keys.blind_index_key))


# --------------------------------------------------------------------------- real name

def check_real_name_input(name: Any, id_number: Any) -> tuple[str, str]:
    """Normalised ``(name, id_number)`` or ``ValidationFailed`` naming every bad field."""
    problems: dict[str, str] = {}
    clean_name = name.strip() if isinstance(name, str) else ""
    if not isinstance(name, str):
        problems["name"] = "姓名应为文本"
    elif not clean_name:
        problems["name"] = "请填写姓名"
    elif len(clean_name) > MAX_NAME_CHARS:
        problems["name"] = f"姓名不能超过 {MAX_NAME_CHARS} 个字"
    elif not all(ch.isalpha() or ch in _NAME_PUNCTUATION for ch in clean_name):
        problems["name"] = "姓名只能包含文字和间隔号"
    clean_id = normalise_id(id_number) if isinstance(id_number, str) else ""
    if not isinstance(id_number, str):
        problems["id_number"] = "身份证号应为文本"
    elif not clean_id:
        problems["id_number"] = "请填写身份证号"
    elif not is_valid_id_number(clean_id):
        problems["id_number"] = "身份证号不正确，请检查后重新输入"
    if problems:
        raise ValidationFailed("实名信息填写有误，请检查标注的字段", fields=problems)
    return clean_name, clean_id


def _context(citizen_id: int, what: str) -> bytes:
    """AES-GCM associated data: a ciphertext copied to another row or column does not decrypt."""
    return f"citizen:{citizen_id}:{what}".encode()


async def bind_real_name(citizen: Citizen, name: Any, id_number: Any, *, pii_keys: PiiKeys,
                         verifier: RealNameVerifier, fresh: bool = False) -> Citizen:
    """Bind a verified name and ID number to ``citizen`` and return it, updated.

    ``fresh``: the caller has just read ``citizen`` (the API, in the same request), so it is not
    re-read first; a binding that raced in meanwhile is still caught by the conditional update.

    Re-binding the number already bound to this citizen changes nothing (idempotent, no new
    verification). Another account's number → ``IdentityConflict``; another number on an
    already bound account → ``RealNameAlreadyBound``.
    """
    clean_name, clean_id = check_real_name_input(name, id_number)
    id_hash = blind_index(clean_id, pii_keys.blind_index_key)
    id_masked = mask_id_number(clean_id)
    if not fresh:
        await citizen.refresh_from_db()
    if citizen.id_hash is not None:
        if citizen.id_hash == id_hash:
            await _claim_window_cases(citizen)  # one filed at the window while binding raced
            return citizen
        raise RealNameAlreadyBound()
    # Verify first: only someone who knows a matching name learns that a number is taken.
    verdict = await verifier.verify(clean_name, clean_id)
    other = await Citizen.get_or_none(id_hash=id_hash)
    if other is not None and other.id != citizen.id:
        log.warning("real-name conflict: citizen_id=%s id=%s bound to citizen_id=%s", citizen.id, id_masked, other.id)
        raise IdentityConflict()
    if verdict.level not in REAL_NAME_LEVELS:
        raise ValueError(f"verifier returned an unknown real-name level {verdict.level!r}")
    values = {
        "real_name_level": verdict.level, "evidence_id": verdict.evidence_id[:128],
        "name_enc": pii_keys.encrypt(clean_name, context=_context(citizen.id, "name")),
        "name_masked": mask_name(clean_name), "id_hash": id_hash, "id_masked": id_masked,
        "id_enc": pii_keys.encrypt(clean_id, context=_context(citizen.id, "id_number")),
        "verified_at": datetime.now(timezone.utc), "updated_at": datetime.now(timezone.utc),
    }
    try:  # conditional: two concurrent bindings of one account cannot both win
        updated = await Citizen.filter(id=citizen.id, id_hash__isnull=True).update(**values)
    except IntegrityError:  # the same number was bound to another account meanwhile
        log.warning("real-name conflict (race): citizen_id=%s id=%s", citizen.id, id_masked)
        raise IdentityConflict() from None
    if updated:  # the row now holds exactly ``values``: no need to read it back
        for name_of_field, value in values.items():
            setattr(citizen, name_of_field, value)
    else:  # bound meanwhile (another request of this account): to this number or another one
        await citizen.refresh_from_db()
        if citizen.id_hash != id_hash:
            raise RealNameAlreadyBound()
    if updated:
        log.info("real name bound: citizen_id=%s id=%s level=%s evidence=%s", citizen.id, id_masked,
                 verdict.level, verdict.evidence_id)
    await _claim_window_cases(citizen)
    return citizen


async def _claim_window_cases(citizen: Citizen) -> None:
    from engine.citizen.window_cases import claim_window_cases  # it reads the case tables

    claimed = await claim_window_cases(citizen)
    if claimed:
        log.info("window cases claimed: citizen_id=%s cases=%s", citizen.id, claimed)


async def read_identity(citizen: Citizen, *, pii_keys: PiiKeys, actor: str, purpose: str,
                        case_id: int | None = None, case_no: str | None = None,
                        department: str | None = None) -> RealIdentity:
    """Decrypt the bound name and ID number — a personal-data read, logged with actor and purpose
    (``DataAccessLog``, which the citizen sees, and the audit chain).

    For the rare caller that must hand the clear values on (an application's applicant).
    """
    if not citizen.id_hash or not citizen.id_enc or not citizen.name_enc:
        raise Conflict("请先完成实名认证")
    if not actor or not purpose:
        raise ValueError("reading personal data needs an actor and a purpose")
    name = pii_keys.decrypt(citizen.name_enc, context=_context(citizen.id, "name"))
    id_number = pii_keys.decrypt(citizen.id_enc, context=_context(citizen.id, "id_number"))
    row = await log_data_access(None, actor=actor, department=department, subject_hash=citizen.id_hash,
                          subject_masked=citizen.id_masked, dataset="citizen", fields_read=["name", "id_number"],
                          case_id=case_id, case_no=case_no, purpose=purpose)
    return RealIdentity(name=name, id_number=id_number, access_log_id=row.id)


def citizen_view(citizen: Citizen) -> dict[str, Any]:
    """The citizen as clients see it: masked values, level and whether a real name is bound."""
    return {
        "id": citizen.id,
        "real_name_level": citizen.real_name_level,
        "real_name_bound": citizen.id_hash is not None,
        "name_masked": citizen.name_masked,
        "id_masked": citizen.id_masked,
        "verified_at": citizen.verified_at.isoformat() if citizen.verified_at else None,
    }


__all__ = [
    "Citizen", "DevRealNameVerifier", "IdentityConflict", "RealIdentity", "RealNameAlreadyBound", "RealNameNotConfigured",
    "RealNameRejected", "RealNameVerifier", "UnconfiguredVerifier", "Verification", "bind_real_name", "check_real_name_input", "citizen_view",
    "find_by_id_number", "find_citizen", "login", "read_identity", "real_name_verifier_from_settings",
]
