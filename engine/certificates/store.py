"""Storing and finding e-certificates (the only database code of the certificates module).

The holder's code is stored as a keyed hash, a masked form and a ciphertext that the caller
(the identity module) computes; ``data`` keeps the signed metadata minus ``holder_code``, and
``signed_from_row`` puts the decrypted code back to re-verify a stored certificate.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from engine.accountability import audit
from engine.certificates.signing import CertificateData, CertState, SignedCertificate, effective_state
from engine.errors import NotFound, ValidationFailed
from engine.store.certificate_models import Certificate, CertificateUse

_HASH_RE = re.compile(r"[0-9a-f]{64}")


def _check_holder_fields(signed: SignedCertificate, holder_code_hash: str, holder_code_masked: str,
                         holder_code_enc: str | None) -> None:
    code = signed.data.holder_code
    if not isinstance(holder_code_hash, str) or not _HASH_RE.fullmatch(holder_code_hash):
        raise ValueError("holder_code_hash must be 64 lower-case hex characters (a keyed hash)")
    if holder_code_hash == code.lower():
        raise ValueError("holder_code_hash must not be the holder code itself")
    if not holder_code_masked or code in holder_code_masked or len(holder_code_masked) > 32:
        raise ValueError("holder_code_masked must be a masked form, not the holder code")
    if holder_code_enc is not None and code in holder_code_enc:
        raise ValueError("holder_code_enc must be ciphertext, not the holder code")


def _check_representative(representative_hash: str | None) -> None:
    if representative_hash is not None and not _HASH_RE.fullmatch(representative_hash):
        raise ValueError("representative_hash must be 64 lower-case hex characters (a keyed hash)")


async def store_certificate(signed: SignedCertificate, *, case_id: int | None, holder_code_hash: str,
                            holder_code_masked: str, holder_code_enc: str | None,
                            representative_hash: str | None = None,
                            using_db: BaseDBAsyncClient | None = None) -> Certificate:
    """Insert an issued certificate (state 01). The clear holder code is not stored; a company's
    legal representative only as the keyed hash of their ID number."""
    _check_holder_fields(signed, holder_code_hash, holder_code_masked, holder_code_enc)
    _check_representative(representative_hash)
    d = signed.data
    stored = d.to_dict()
    del stored["holder_code"]
    return await Certificate.create(
        identifier=d.identifier, type_code=d.type_code, number=d.number, name=d.name,
        issuer_name=d.issuer_name, issuer_code=d.issuer_code, holder_name=d.holder_name,
        holder_code_hash=holder_code_hash, holder_code_masked=holder_code_masked,
        holder_code_enc=holder_code_enc, holder_code_type=d.holder_code_type,
        issue_date=d.issue_date, valid_from=d.valid_from, valid_to=d.valid_to,
        jurisdiction_code=d.jurisdiction_code, state=CertState.VALID.value, data=stored,
        signature=signed.signature, key_id=signed.key_id, algorithm=signed.algorithm,
        case_id=case_id, representative_hash=representative_hash, using_db=using_db)


def signed_from_row(row: Certificate, holder_code: str) -> SignedCertificate:
    """Rebuild the signed certificate from a row and the decrypted holder code."""
    raw: dict[str, Any] = dict(row.data)
    raw["holder_code"] = holder_code
    return SignedCertificate(CertificateData.from_dict(raw), row.signature, row.key_id, row.algorithm)


async def holder_certificate(cert_id: int, holder_code_hash: str) -> Certificate | None:
    """Certificate ``cert_id`` if its holder is ``holder_code_hash``, else ``None``."""
    return await Certificate.get_or_none(id=cert_id, holder_code_hash=holder_code_hash)


async def citizen_certificate(cert_id: int, citizen_id: int) -> Certificate | None:
    """Certificate ``cert_id`` if its holder is the real-name-bound citizen account ``citizen_id``:
    one query (the certificate joined to the account's ID-number hash) where reading the account
    first makes two; ``None`` for anyone else's, or when the account is gone or not bound."""
    from tortoise.expressions import Subquery

    from engine.store.identity_models import Citizen

    return await Certificate.filter(id=cert_id, holder_code_hash__in=Subquery(
        Citizen.filter(id=citizen_id, id_hash__isnull=False).values("id_hash"))).first()


async def holder_certificates(holder_code_hash: str) -> list[Certificate]:
    """All the holder's certificates in any state, newest issue first."""
    return list(await Certificate.filter(holder_code_hash=holder_code_hash).order_by("-issue_date", "-id"))


COMPANY_CODE_TYPE = "001"  # unified social credit code: the holder is an organisation


def _represented(openid: str, id_hash: str | None) -> Any:
    """Company certificates (holder code type 001) of the companies a citizen represents: issued by
    a case the citizen applied for (the business start-up bundle's applicant), or naming the citizen
    as legal representative — matched by the keyed hash of the ID number, never by name."""
    from tortoise.expressions import Q, Subquery

    from engine.store.models import Case

    applied = Q(case_id__in=Subquery(Case.filter(applicant=openid).values("id")))
    return Certificate.filter(Q(applied, Q(representative_hash=id_hash), join_type="OR") if id_hash else applied,
                              holder_code_type=COMPANY_CODE_TYPE)


async def represented_certificates(openid: str, id_hash: str | None = None) -> list[Certificate]:
    """The companies' certificates a citizen may hold up as their applicant or legal representative
    (newest first)."""
    return list(await _represented(openid, id_hash).order_by("-issue_date", "-id"))


async def represented_certificate(cert_id: int, openid: str, id_hash: str | None = None) -> Certificate | None:
    return await _represented(openid, id_hash).filter(id=cert_id).first()


async def by_identifier(identifier: str) -> Certificate | None:
    """The certificate with this identifier (证照标识), or ``None``."""
    return await Certificate.get_or_none(identifier=identifier)


async def find_for_holder(holder_code_hash: str, type_code: str | None = None, *,
                          today: date | None = None) -> list[Certificate]:
    """The holder's certificates (of one type if given), newest first; with ``today``, only
    those whose effective state is 01 valid (e.g. to satisfy a service's material)."""
    query = Certificate.filter(holder_code_hash=holder_code_hash)
    if type_code is not None:
        query = query.filter(type_code=type_code)
    rows = await query.order_by("-issue_date", "-id")
    if today is None:
        return list(rows)
    return [r for r in rows if effective_state(r, today) is CertState.VALID]


async def set_state(identifier: str, state: CertState | str,
                    using_db: BaseDBAsyncClient | None = None, *, actor: str | None = None,
                    reason: str | None = None) -> Certificate:
    """Record a state change (suspend, revoke, cancel, back to valid), audited in the same
    transaction (``engine.accountability.audit``, kind ``certificate.state``). 05 is computed, not set."""
    if using_db is None:
        async with in_transaction() as conn:
            changed = await set_state(identifier, state, conn, actor=actor, reason=reason)
        from engine.certificates.state_cache import state_changed

        await state_changed()  # committed; a caller passing its own transaction calls it after its commit
        return changed
    new = CertState(state)
    if new is CertState.EXPIRED:
        raise ValidationFailed("过期状态由有效期自动得出，不能手工设置")
    row = await Certificate.get_or_none(identifier=identifier, using_db=using_db)
    if row is None:
        raise NotFound("电子证照不存在")
    if CertState(row.state) in (CertState.REVOKED, CertState.CANCELLED) and new is not CertState(row.state):
        raise ValidationFailed("已吊销或注销的证照不能再变更状态")
    old = row.state
    row.state = new.value
    await row.save(update_fields=["state", "updated_at"], using_db=using_db)
    await audit.record(using_db, "certificate.state", actor=actor, subject=identifier, detail={
        "from": old, "to": new.value, "type_code": row.type_code, "reason": reason, "case_id": row.case_id})
    return row


async def record_use(certificate: Certificate, *, department: str, reason: str,
                     case_no: str | None = None, actor: str | None = None,
                     using_db: BaseDBAsyncClient | None = None) -> CertificateUse:
    """Log a purpose-bound use (加注件); a department must state why it uses the certificate."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed("使用电子证照必须说明用途", fields={"reason": "不能为空"})
    if not isinstance(department, str) or not department.strip():
        raise ValidationFailed("使用电子证照必须注明部门", fields={"department": "不能为空"})
    return await CertificateUse.create(certificate=certificate, department=department,
                                       reason=reason.strip()[:200], case_no=case_no, actor=actor,
                                       using_db=using_db)


# --- case-engine record writer (``EngineDeps.record_writers["certificate"]``) ---------------

RECORD_KIND = "certificate"


def certificate_record(signed: SignedCertificate, *, holder_code_hash: str, holder_code_masked: str,
                       holder_code_enc: str | None, representative_hash: str | None = None) -> dict[str, Any]:
    """Payload for ``ConnectorContext.record(RECORD_KIND, ...)``: an issuing connector calls this,
    and the engine stores the certificate in the same transaction as the case step."""
    _check_holder_fields(signed, holder_code_hash, holder_code_masked, holder_code_enc)
    _check_representative(representative_hash)
    return {"signed": signed.to_dict(), "holder_code_hash": holder_code_hash,
            "holder_code_masked": holder_code_masked, "holder_code_enc": holder_code_enc,
            "representative_hash": representative_hash}


async def write_certificate_record(conn: BaseDBAsyncClient | None, case_id: int,
                                   payload: dict[str, Any]) -> None:
    """Record writer: store the certificate a connector recorded, linked to ``case_id``."""
    await store_certificate(SignedCertificate.from_dict(payload["signed"]), case_id=case_id,
                            holder_code_hash=payload["holder_code_hash"],
                            holder_code_masked=payload["holder_code_masked"],
                            holder_code_enc=payload.get("holder_code_enc"),
                            representative_hash=payload.get("representative_hash"), using_db=conn)
