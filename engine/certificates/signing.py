"""E-certificates (电子证照): metadata, states, signed issuing and short-lived QR tokens.

Pure code, no HTTP and no database (storage lives in ``engine.certificates.store``).
Identifiers and credit codes come from ``engine.certificates.ids``, keys and signing from
``engine.certificates.keys``; both are re-exported here, so callers import this module only.

What gets signed for a certificate is ``canonical_json({"v": 1, "alg", "kid", "cert": metadata})``
— key id and algorithm are inside the signed bytes, so neither can be swapped afterwards.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date, datetime
from enum import Enum
from typing import Any, Mapping

from engine.accountability.privacy import id_number_problem
from engine.certificates.ids import (  # noqa: F401 - re-exported
    IDENTIFIER_PREFIX,
    IdentifierParts,
    InvalidIdentifier,
    identifier_check_char,
    is_uscc,
    is_valid_identifier,
    make_identifier,
    new_uscc,
    org_code_check_char,
    parse_identifier,
    uscc_has_valid_org_code,
)
from engine.certificates.keys import (  # noqa: F401 - re-exported
    ALG_ED25519,
    ALG_SM2,
    ALGORITHMS,
    Ed25519Signer,
    KeyConfigError,
    KeyRing,
    PublicKey,
    SignatureError,
    Signer,
    SM2Signer,
    UnknownKey,
    Verifier,
    b64_decode_strict,
    b64url_decode,
    b64url_encode,
    canonical_json,
    generate_signer,
    signer_from_pem,
    write_key_file,
)
from engine.errors import ValidationFailed

HOLDER_CITIZEN_ID = "111"  # 居民身份证号码
HOLDER_CREDIT_CODE = "001"  # 统一社会信用代码
HOLDER_CODE_TYPES = {HOLDER_CITIZEN_ID: "居民身份证号码", HOLDER_CREDIT_CODE: "统一社会信用代码"}
MAX_QR_TOKEN_LEN = 1024
MAX_QR_LIFETIME_S = 7 * 24 * 3600


class CertState(str, Enum):
    """Certificate states (codes as stored and exchanged); ``label`` is the Chinese name."""

    VALID = "01"
    SUSPENDED = "02"
    REVOKED = "03"
    CANCELLED = "04"
    EXPIRED = "05"

    @property
    def label(self) -> str:
        return _STATE_LABELS[self]


_STATE_LABELS = {CertState.VALID: "有效", CertState.SUSPENDED: "暂停", CertState.REVOKED: "吊销",
                 CertState.CANCELLED: "注销", CertState.EXPIRED: "过期"}


@dataclass(kw_only=True)
class CertificateData:
    """Certificate metadata (the signed part). ``identifier`` stays empty until ``issue``.
    ``holder_code`` is personal data: it is signed here but never stored in clear."""

    name: str  # e.g. 老年人优待证
    type_code: str
    number: str  # 证照编号
    issuer_name: str
    issuer_code: str
    issue_date: date
    holder_name: str
    holder_code: str
    holder_code_type: str  # 111 citizen ID number, 001 credit code
    valid_from: date
    valid_to: date | None = None
    jurisdiction_code: str  # administrative division code
    extra: dict[str, Any] = field(default_factory=dict)
    identifier: str = ""

    def validate(self) -> None:
        """Raise ``ValidationFailed`` naming every bad field."""
        bad: dict[str, str] = {}
        for name in ("name", "number", "issuer_name", "holder_name"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                bad[name] = "不能为空，且不超过 200 字"
        if not isinstance(self.type_code, str) or len(self.type_code) != 21 \
                or not is_uscc(self.type_code[:18]) or not re.fullmatch(r"[0-9]{3}", self.type_code[18:]):
            bad["type_code"] = "应为 18 位统一社会信用代码加 3 位数字"
        if not is_uscc(self.issuer_code):
            bad["issuer_code"] = "不是有效的统一社会信用代码"
        if self.holder_code_type == HOLDER_CITIZEN_ID:
            if not (isinstance(self.holder_code, str) and self.holder_code == self.holder_code.upper()
                    and id_number_problem(self.holder_code) is None):
                bad["holder_code"] = "不是有效的居民身份证号码"
        elif self.holder_code_type == HOLDER_CREDIT_CODE:
            if not is_uscc(self.holder_code):
                bad["holder_code"] = "不是有效的统一社会信用代码"
        else:
            bad["holder_code_type"] = "应为 111（居民身份证号码）或 001（统一社会信用代码）"
        for name in ("issue_date", "valid_from", "valid_to"):
            value = getattr(self, name)
            if (value is not None or name != "valid_to") and (
                    not isinstance(value, date) or isinstance(value, datetime)):
                bad[name] = "应为日期"
        if "valid_to" not in bad and "valid_from" not in bad and self.valid_to is not None \
                and self.valid_to < self.valid_from:
            bad["valid_to"] = "有效期截止日不能早于起始日"
        jurisdiction = self.jurisdiction_code
        if not isinstance(jurisdiction, str) or not re.fullmatch(r"[0-9]{6,12}", jurisdiction):
            bad["jurisdiction_code"] = "应为 6-12 位行政区划代码"
        try:
            if not isinstance(self.extra, dict):
                raise TypeError
            canonical_json(self.extra)
        except (TypeError, ValueError):
            bad["extra"] = "应为可 JSON 序列化的对象"
        if bad:
            raise ValidationFailed("电子证照信息不完整或不正确", fields=bad)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (dates as ISO strings)."""
        out = asdict(self)
        for name in ("issue_date", "valid_from", "valid_to"):
            out[name] = out[name].isoformat() if out[name] is not None else None
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "CertificateData":
        """Inverse of ``to_dict``; unknown keys are refused."""
        names = {f.name for f in fields(cls)}
        unknown = set(raw) - names
        if unknown:
            raise ValidationFailed("电子证照信息包含未知字段", fields={k: "未知字段" for k in sorted(unknown)})
        values = dict(raw)
        try:
            for name in ("issue_date", "valid_from", "valid_to"):
                if isinstance(values.get(name), str):
                    values[name] = date.fromisoformat(values[name])
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ValidationFailed("电子证照信息格式不正确", detail=str(exc)) from exc


def effective_state(cert: Any, today: date, state: CertState | str | None = None) -> CertState:
    """The state a verifier should see: the recorded state (``state``, else ``cert.state``,
    else valid), but 05 expired once ``today`` is after ``valid_to`` (the last valid day).
    Revoked and cancelled stay as they are: they say more than "expired"."""
    recorded = state if state is not None else getattr(cert, "state", None)
    current = CertState(recorded) if recorded is not None else CertState.VALID
    if current in (CertState.REVOKED, CertState.CANCELLED):
        return current
    source = cert if hasattr(cert, "valid_to") else getattr(cert, "data", None)  # row / data or signed
    valid_to = getattr(source, "valid_to", None)
    if isinstance(valid_to, str):
        valid_to = date.fromisoformat(valid_to)
    if isinstance(valid_to, datetime):
        valid_to = valid_to.date()
    if valid_to is not None and today > valid_to:
        return CertState.EXPIRED
    return current


# --- issuing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedCertificate:
    """Certificate metadata with its signature (standard base64), key id and algorithm."""

    data: CertificateData
    signature: str
    key_id: str
    algorithm: str

    @property
    def identifier(self) -> str:
        return self.data.identifier

    def signing_bytes(self) -> bytes:
        return signing_bytes(self.data, self.key_id, self.algorithm)

    def to_dict(self) -> dict[str, Any]:
        return {"certificate": self.data.to_dict(), "signature": self.signature,
                "kid": self.key_id, "alg": self.algorithm}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "SignedCertificate":
        try:
            return cls(CertificateData.from_dict(raw["certificate"]), str(raw["signature"]),
                       str(raw["kid"]), str(raw["alg"]))
        except (KeyError, TypeError) as exc:
            raise ValidationFailed("签名电子证照格式不正确") from exc


def signing_bytes(data: CertificateData, key_id: str, algorithm: str) -> bytes:
    """The exact bytes signed for a certificate."""
    return canonical_json({"v": 1, "alg": algorithm, "kid": key_id, "cert": data.to_dict()})


def issue(data: CertificateData, *, serial: str | int, signer: Signer,
          version: str = "001") -> SignedCertificate:
    """Validate, assign the identifier (type code, issuer code, ``serial``, ``version``) and sign."""
    if data.identifier:
        raise ValueError("identifier is assigned by issue(); pass data without one")
    data.validate()
    identified = replace(data, identifier=make_identifier(data.type_code, data.issuer_code, serial, version),
                         extra=json.loads(canonical_json(data.extra)))  # detached copy
    signature = signer.sign(signing_bytes(identified, signer.key_id, signer.algorithm))
    return SignedCertificate(identified, base64.b64encode(signature).decode("ascii"),
                             signer.key_id, signer.algorithm)


def verify_certificate(signed: SignedCertificate, verifier: Verifier) -> bool:
    """True when the signature is valid under the named key and the identifier is consistent
    with the metadata. Unknown keys, other algorithms and malformed input give False."""
    try:
        parts = parse_identifier(signed.data.identifier)
        if parts.type_code != signed.data.type_code or parts.issuer_code != signed.data.issuer_code:
            return False
        signature = b64_decode_strict(signed.signature)
        payload = signed.signing_bytes()
    except (ValueError, TypeError, AttributeError):
        return False
    return verifier.verify(signed.key_id, signed.algorithm, payload, signature)


# --- QR tokens ------------------------------------------------------------------------------


class TokenInvalid(SignatureError):
    """Malformed, tampered or wrongly signed QR token."""

    code = "token_invalid"
    default_message = "二维码无效或已被篡改"


class TokenExpired(SignatureError):
    """Genuine QR token past its expiry: the holder refreshes it."""

    code = "token_expired"
    default_message = "二维码已过期，请刷新"


@dataclass(frozen=True)
class QrClaims:
    """What a verified QR token says. No personal data travels in a token."""

    identifier: str
    status: CertState
    issuer_code: str
    issue_date: date | None  # the certificate's issue date
    issued_at: int  # token iat, Unix seconds
    expires_at: int  # token exp, Unix seconds
    key_id: str
    algorithm: str


def _epoch(now: datetime | float | int | None) -> int:
    if now is None:
        return int(time.time())
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return int(now.timestamp())
    if isinstance(now, bool) or not isinstance(now, (int, float)):
        raise TypeError("now must be a datetime or Unix seconds")
    return int(now)


def make_qr_token(identifier: str, status: CertState | str, issuer_code: str,
                  issued_at: date | None, expires_in_s: int, signer: Signer,
                  now: datetime | float | None = None) -> str:
    """``base64url(canonical JSON claims) + "." + base64url(signature over the first part)``.
    ``issued_at`` is the certificate's issue date; the token's own iat is ``now``."""
    parts = parse_identifier(identifier)
    if issuer_code != parts.issuer_code:
        raise ValueError("issuer_code does not match the identifier")
    state = CertState(status)
    if isinstance(expires_in_s, bool) or not isinstance(expires_in_s, int) \
            or not 0 < expires_in_s <= MAX_QR_LIFETIME_S:
        raise ValueError(f"expires_in_s must be an int in 1..{MAX_QR_LIFETIME_S}")
    if issued_at is not None and (not isinstance(issued_at, date) or isinstance(issued_at, datetime)):
        raise TypeError("issued_at must be a date (the certificate's issue date) or None")
    iat = _epoch(now)
    claims = {"v": 1, "cid": identifier, "st": state.value, "iss": issuer_code,
              "isd": issued_at.isoformat() if issued_at else None,
              "iat": iat, "exp": iat + expires_in_s, "kid": signer.key_id, "alg": signer.algorithm}
    head = b64url_encode(canonical_json(claims))
    return head + "." + b64url_encode(signer.sign(head.encode("ascii")))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate keys")
    return out


def _int_claim(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TokenInvalid(detail=f"{name} is not an integer")
    return value


def verify_qr_token(token: str, verifier: Verifier, now: datetime | float | None = None,
                    *, leeway_s: int = 30) -> QrClaims:
    """Check signature, then claims, then time. Raises ``UnknownKey`` for a key id the
    verifier lacks, ``TokenInvalid`` for anything malformed, tampered or signed with another
    algorithm than the key's own, ``TokenExpired`` once ``now >= exp``. ``leeway_s`` only
    tolerates a verifier clock that is behind (iat slightly in the future)."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_QR_TOKEN_LEN or token.count(".") != 1:
        raise TokenInvalid(detail="shape")
    head, sig_part = token.split(".")
    try:
        raw = b64url_decode(head)
        claims = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
        signature = b64url_decode(sig_part)
        if not isinstance(claims, dict) or canonical_json(claims) != raw:
            raise ValueError("payload is not canonical JSON")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise TokenInvalid(detail="encoding") from exc
    kid = claims.get("kid")
    if not isinstance(kid, str):
        raise TokenInvalid(detail="kid")
    key = verifier.key(kid)  # UnknownKey
    if claims.get("alg") != key.algorithm:
        raise TokenInvalid(detail="alg")
    if not key.verify(head.encode("ascii"), signature):
        raise TokenInvalid(detail="signature")
    # Signed by us from here on; still refuse claims we would never have produced.
    try:
        if claims.get("v") != 1:
            raise ValueError("version")
        parts = parse_identifier(claims.get("cid"))
        status = CertState(claims.get("st"))
        if claims.get("iss") != parts.issuer_code:
            raise ValueError("issuer")
        isd = claims.get("isd")
        issue_date = date.fromisoformat(isd) if isd is not None else None
    except (ValueError, TypeError) as exc:
        raise TokenInvalid(detail="claims") from exc
    iat, exp = _int_claim(claims, "iat"), _int_claim(claims, "exp")
    if exp <= iat:
        raise TokenInvalid(detail="exp before iat")
    current = _epoch(now)
    if iat > current + leeway_s:
        raise TokenInvalid(detail="issued in the future")
    if current >= exp:
        raise TokenExpired(detail={"exp": exp})
    return QrClaims(parts.identifier, status, parts.issuer_code, issue_date, iat, exp, kid, key.algorithm)
