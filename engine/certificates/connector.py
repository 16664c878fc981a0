"""Certificate connectors: issue e-certificates from a case, register companies (new USCC).

Issuing signs at once (SM2-SM3 by default) and *records* the certificate; the engine stores it
in the same transaction as the case step that issued it. The holder's ID number is kept only
as a keyed hash, a masked form and AES-GCM ciphertext.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable

import yaml

from engine.accountability.audit import log_data_access
from engine.accountability.privacy import PiiKeys, blind_index, mask_id_number, mask_middle
from engine.certificates.signing import CertificateData, KeyRing, issue, new_uscc
from engine.certificates.store import certificate_record, write_certificate_record
from engine.errors import ModelError
from engine.kernel.connectors import ConnectorContext, ConnectorRegistry
from engine.kernel.sla import CST

SERIAL_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclass
class CertificateIssuer:
    keyring: KeyRing
    types: dict[str, dict[str, Any]]
    pii: PiiKeys
    jurisdiction: str
    clock: Callable[[], datetime]

    def issue(self, params: dict[str, Any], context: ConnectorContext) -> dict[str, Any]:
        type_code = str(params.get("type_code") or "")
        kind = self.types.get(type_code)
        if kind is None:
            raise ModelError(f"certificate.issue: unknown certificate type {type_code!r}")
        holder_code = str(params.get("holder_code") or "").strip().upper()
        holder_name = str(params.get("holder_name") or "").strip()
        code_type = str(params.get("holder_code_type") or "111")
        today = self.clock().astimezone(CST).date()
        years = params.get("valid_years", kind.get("valid_years"))
        valid_to = _add_years(today, int(years)) - _one_day() if years else None
        serial = today.strftime("%Y%m%d") + "".join(secrets.choice(SERIAL_ALPHABET) for _ in range(10))
        data = CertificateData(
            name=kind["name"], type_code=type_code, number=f"{kind['name'][:2]}{serial}",
            issuer_name=kind["issuer_name"], issuer_code=kind["issuer_code"], issue_date=today,
            holder_name=holder_name, holder_code=holder_code, holder_code_type=code_type, valid_from=today,
            valid_to=valid_to, jurisdiction_code=str(params.get("jurisdiction_code") or self.jurisdiction),
            extra=dict(params.get("data") or {}),
        )
        signed = issue(data, serial=serial, signer=self.keyring.active)
        # the store refuses a clear code in the masked column, a credit code (001) included
        masked = mask_id_number(holder_code) if code_type == "111" else mask_middle(holder_code, 3, 4)
        # a company's legal representative (``representative_code``, their ID number): kept only as
        # the keyed hash their real-name binding also stores, so they find the licence in 证照
        representative = str(params.get("representative_code") or "").strip().upper()
        context.record("certificate", certificate_record(
            signed, holder_code_hash=blind_index(holder_code, self.pii.blind_index_key),
            holder_code_masked=masked, holder_code_enc=self.pii.encrypt(holder_code,
                                                                        context=b"certificate.holder_code"),
            representative_hash=blind_index(representative, self.pii.blind_index_key)
            if representative and code_type == "001" else None))
        return {"identifier": signed.data.identifier, "number": data.number, "name": data.name,
                "issuer_name": data.issuer_name, "issue_date": today.isoformat(),
                "valid_from": today.isoformat(), "valid_to": valid_to.isoformat() if valid_to else None,
                "key_id": signed.key_id}

    def register_company(self, params: dict[str, Any], context: ConnectorContext) -> dict[str, Any]:
        """Assign a unified social credit code to a newly registered company (企业设立登记)."""
        region = str(params.get("region_code") or self.jurisdiction)[:6]
        return {"uscc": new_uscc(registration_authority="91", region=region.ljust(6, "0")),
                "registered_on": self.clock().astimezone(CST).date().isoformat()}


async def write_certificate_use(conn: Any, case_id: int, payload: dict[str, Any]) -> None:
    """Record writer: a purpose-bound use (加注件) of a certificate by a department for a case."""
    from engine.certificates.store import record_use
    from engine.store.certificate_models import Certificate

    certificate = await Certificate.filter(identifier=payload["identifier"]).using_db(conn).first()
    if certificate is None:
        raise ModelError(f"certificate {payload['identifier']} not found")
    await record_use(certificate, department=payload["department"], reason=payload["reason"],
                     case_no=payload.get("case_no"), actor=payload.get("actor"), using_db=conn)
    # the holder sees the use in their access log; the engine step audits it (certificate.use)
    await log_data_access(conn, subject_hash=certificate.holder_code_hash,
                          subject_masked=certificate.holder_code_masked, dataset="certificate",
                          fields_read=["name", "number", "holder_name", "valid_to"], case_id=case_id,
                          case_no=payload.get("case_no"), actor=payload.get("actor"),
                          department=payload["department"], purpose=payload["reason"], audit=False)


def keyring_from_settings(settings: Any) -> KeyRing:
    env = {"GOVFLOW_CERT_KEY_DIR": settings.CERT_KEY_DIR, "GOVFLOW_CERT_ACTIVE_KEY": settings.CERT_ACTIVE_KEY,
           "GOVFLOW_CERT_ALGORITHM": settings.CERT_ALGORITHM, "GOVFLOW_ENV": settings.ENV}
    return KeyRing.from_env(env)


def install_certificates(deps: Any, settings: Any, *, keyring: KeyRing | None = None) -> CertificateIssuer:
    """Register ``certificate.issue`` and ``company.register`` and the record writers."""
    types_file = Path(settings.PROCESSES_DIR) / "certificate_types.yaml"
    issuer = CertificateIssuer(
        keyring=keyring or keyring_from_settings(settings),
        types=load_certificate_types(types_file) if types_file.exists() else {},
        pii=PiiKeys.from_settings(settings), jurisdiction=str(settings.JURISDICTION), clock=lambda: deps.clock())
    registry: ConnectorRegistry = deps.connectors
    registry.register("certificate.issue", issuer.issue, description="签发电子证照（SM2 签名）", personal_data=True)
    registry.register("company.register", issuer.register_company, description="企业设立登记，赋统一社会信用代码")
    deps.record_writers["certificate"] = write_certificate_record
    deps.record_writers["certificate_use"] = write_certificate_use
    deps.keyring = issuer.keyring
    return issuer


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _one_day() -> Any:
    from datetime import timedelta

    return timedelta(days=1)



def load_certificate_types(path: Path) -> dict[str, dict[str, Any]]:
    """Certificate type code -> {name, issuer_name, issuer_code, valid_years}."""
    items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return {str(item["code"]): dict(item) for item in items}
