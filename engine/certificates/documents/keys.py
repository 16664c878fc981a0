"""Signing keys for the PDF documents: one key and X.509 certificate per issuing department.

PAdES needs an X.509 certificate (ECDSA P-256 here); the SM2 keys of ``engine.certificates`` stay
for the GB/T identifier and QR tokens. Production reads ``GOVFLOW_DOC_SIGN_DIR``: ``ca.cert.pem``
(the issuing CA, the trust anchor a PDF reader is given) and per department ``<code>.key.pem`` +
``<code>.cert.pem``. Development (no directory) derives each department's key from a public seed
and certifies it with a development CA made at start-up — good for demos and tests, worthless
as evidence, and production never uses it (the documents answer 503 instead).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engine.errors import DependencyDown, GovflowError

_DEV_SEED = b"govflow development document signing key -- public, never use it in production/"
_P256_ORDER = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


class SigningUnavailable(DependencyDown):
    code = "document_signing_unavailable"
    default_message = "文书签章服务未配置，暂不能出具文书"


class DocumentKeyError(GovflowError):
    code = "document_key_error"
    default_message = "文书签章密钥无法读取"


@dataclass
class DepartmentKey:
    department: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def asn1_key(self) -> asn1_keys.PrivateKeyInfo:
        return asn1_keys.PrivateKeyInfo.load(self.key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    def asn1_certificate(self) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(self.certificate.public_bytes(serialization.Encoding.DER))


def _name(common: str, organisation: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=not ca, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


@dataclass
class DocumentKeys:
    """The CA certificate and the departments' keys (``for_department`` makes dev ones on demand)."""

    ca_certificate: x509.Certificate | None
    keys: dict[str, DepartmentKey] = field(default_factory=dict)
    development: bool = False
    _ca_key: ec.EllipticCurvePrivateKey | None = None

    @classmethod
    def for_development(cls) -> "DocumentKeys":
        ca_key = _derive(b"ca")
        name = _name("govflow 开发测试 CA（非正式）", "govflow development")
        ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ca_key.public_key())
              .serial_number(1).not_valid_before(_EPOCH).not_valid_after(_EPOCH + timedelta(days=3650))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(_usage(ca=True), critical=True)
              .sign(ca_key, hashes.SHA256()))
        return cls(ca_certificate=ca, development=True, _ca_key=ca_key)

    @classmethod
    def from_directory(cls, directory: str | Path) -> "DocumentKeys":
        folder = Path(directory)
        try:
            ca = x509.load_pem_x509_certificate((folder / "ca.cert.pem").read_bytes())
            keys = {}
            for key_file in sorted(folder.glob("*.key.pem")):
                code = key_file.name[: -len(".key.pem")]
                key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
                cert = x509.load_pem_x509_certificate((folder / f"{code}.cert.pem").read_bytes())
                if not isinstance(key, ec.EllipticCurvePrivateKey):
                    raise DocumentKeyError(f"{key_file.name}: 需要 ECDSA 密钥")
                keys[code] = DepartmentKey(code, key, cert)
        except (OSError, ValueError) as exc:
            raise DocumentKeyError(f"文书签章密钥目录 {folder} 无法读取：{exc}") from None
        return cls(ca_certificate=ca, keys=keys)

    @classmethod
    def from_settings(cls, directory: str, *, production: bool) -> "DocumentKeys":
        if directory:
            return cls.from_directory(directory)
        return cls(ca_certificate=None) if production else cls.for_development()

    def for_department(self, code: str, name: str) -> DepartmentKey:
        if code in self.keys:
            return self.keys[code]
        if not self.development or self._ca_key is None or self.ca_certificate is None:
            raise SigningUnavailable(f"{name}的文书签章密钥未配置")
        key = _derive(b"department:" + code.encode("utf-8"))
        serial = int.from_bytes(hashlib.sha256(code.encode("utf-8")).digest()[:8], "big") | 1
        cert = (x509.CertificateBuilder().subject_name(_name(f"{name}（电子印章，开发测试）", name))
                .issuer_name(self.ca_certificate.subject).public_key(key.public_key()).serial_number(serial)
                .not_valid_before(_EPOCH).not_valid_after(_EPOCH + timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(_usage(ca=False), critical=True)
                .sign(self._ca_key, hashes.SHA256()))
        self.keys[code] = DepartmentKey(code, key, cert)
        return self.keys[code]

    def trust_roots(self) -> list[asn1_x509.Certificate]:
        if self.ca_certificate is None:
            return []
        return [asn1_x509.Certificate.load(self.ca_certificate.public_bytes(serialization.Encoding.DER))]

    def ca_pem(self) -> bytes:
        if self.ca_certificate is None:
            raise SigningUnavailable()
        return self.ca_certificate.public_bytes(serialization.Encoding.PEM)


def _derive(label: bytes) -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(hashlib.sha512(_DEV_SEED + label).digest(), "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())
