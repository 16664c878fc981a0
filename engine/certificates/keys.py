"""Signing keys for e-certificates and QR tokens: SM2 with SM3 (default, via ``tongsuopy``) or
Ed25519 (via ``cryptography``), a ``Verifier`` that holds every public key by key id (so old
certificates still verify after a rotation) and a ``KeyRing`` that loads private keys from PEM
files, or in development derives one shared key from a public seed (or generates throw-away
keys in memory for tests).

Private keys never go into the repository: ``write_key_file`` refuses paths inside it.
``engine.certificates.signing`` re-exports the public names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import secrets
from abc import ABC, abstractmethod
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from cryptography.exceptions import UnsupportedAlgorithm as _CryptoUnsupported
from cryptography.hazmat.primitives import serialization as _cser
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from tongsuopy.crypto import hashes as _thashes
from tongsuopy.crypto import serialization as _tser
from tongsuopy.crypto.asymciphers import ec as _tec

from engine.config import env_is_production
from engine.errors import BadRequest, GovflowError

ALG_SM2 = "SM2-SM3"
ALG_ED25519 = "Ed25519"
ALGORITHMS = (ALG_SM2, ALG_ED25519)
KEY_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_SIGNATURE_BYTES = 160  # SM2 DER signatures are ~72 bytes, Ed25519 64

_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_DEV_SEED = b"govflow development certificate key -- public, never use it in production/"
_SM2_ORDER = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)


class SignatureError(BadRequest):
    """Base of signature/token verification failures (QR tokens, unknown keys)."""

    code = "signature_invalid"
    default_message = "签名无效"


class UnknownKey(SignatureError):
    """A signature names a key id this verifier does not hold."""

    code = "unknown_key"
    default_message = "签名密钥未知，无法验证"


class KeyConfigError(GovflowError):
    """Signing keys are missing or unreadable (a deployment problem)."""

    code = "certificate_keys_misconfigured"
    default_message = "电子证照签名密钥配置错误"


# --- encoding helpers -----------------------------------------------------------------------


def canonical_json(obj: Any) -> bytes:
    """The bytes that get signed: JSON, sorted keys, no spaces, UTF-8, no NaN/Infinity."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def b64url_encode(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict inverse of ``b64url_encode``; raises ``ValueError`` on anything else."""
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(raw) != text:  # non-canonical trailing bits
        raise ValueError("non-canonical base64url")
    return raw


def b64_decode_strict(text: str) -> bytes:
    """Standard base64 (with padding), rejecting stray characters."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError("not base64") from exc


def check_key_id(key_id: str) -> str:
    if not isinstance(key_id, str) or not KEY_ID_RE.fullmatch(key_id):
        raise KeyConfigError(f"密钥标识 {key_id!r} 不合法（字母数字开头，仅含字母数字 . _ -，最长 64）")
    return key_id


# --- public keys ----------------------------------------------------------------------------


class PublicKey:
    """One verification key: key id, algorithm and the loaded key object."""

    def __init__(self, key_id: str, algorithm: str, key: Any) -> None:
        self.key_id = check_key_id(key_id)
        self.algorithm = algorithm
        self._key = key

    @classmethod
    def from_pem(cls, key_id: str, pem: str | bytes) -> "PublicKey":
        """Load a SubjectPublicKeyInfo PEM; the algorithm follows from the key itself."""
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        try:
            key = _cser.load_pem_public_key(data)
        except _CryptoUnsupported:
            key = None
        except ValueError as exc:
            raise KeyConfigError(f"公钥 {key_id} 无法读取") from exc
        if isinstance(key, Ed25519PublicKey):
            return cls(key_id, ALG_ED25519, key)
        try:
            tkey = _tser.load_pem_public_key(data)
        except Exception as exc:  # noqa: BLE001 - tongsuopy raises several types
            raise KeyConfigError(f"公钥 {key_id} 不是 SM2 或 Ed25519 公钥") from exc
        if not isinstance(tkey, _tec.EllipticCurvePublicKey) or tkey.curve.name != "SM2":
            raise KeyConfigError(f"公钥 {key_id} 不是 SM2 或 Ed25519 公钥")
        return cls(key_id, ALG_SM2, tkey)

    def pem(self) -> str:
        if self.algorithm == ALG_ED25519:
            raw = self._key.public_bytes(_cser.Encoding.PEM, _cser.PublicFormat.SubjectPublicKeyInfo)
        else:
            raw = self._key.public_bytes(_tser.Encoding.PEM, _tser.PublicFormat.SubjectPublicKeyInfo)
        return raw.decode("ascii")

    def verify(self, data: bytes, signature: bytes) -> bool:
        """True when ``signature`` is valid for ``data``; never raises on bad input."""
        if not isinstance(signature, bytes) or not 0 < len(signature) <= MAX_SIGNATURE_BYTES:
            return False
        try:
            if self.algorithm == ALG_ED25519:
                self._key.verify(signature, data)
            else:
                self._key.verify(signature, data, _tec.ECDSA(_thashes.SM3()))
        except Exception:  # noqa: BLE001 - InvalidSignature, or InternalError for malformed DER
            return False
        return True


# --- signers --------------------------------------------------------------------------------


class Signer(ABC):
    """Signs bytes with one private key; ``key_id`` and ``algorithm`` travel with the signature."""

    key_id: str
    algorithm: str

    @abstractmethod
    def sign(self, data: bytes) -> bytes:
        """Signature over ``data`` (SM2: DER-encoded r,s with SM3 and the default user id)."""

    @abstractmethod
    def public_key(self) -> PublicKey: ...

    @abstractmethod
    def private_key_pem(self) -> str:
        """Unencrypted PKCS#8 PEM, for ``write_key_file`` only: never log or commit it."""

    def public_key_pem(self) -> str:
        return self.public_key().pem()

    def __repr__(self) -> str:  # no key material in reprs or logs
        return f"<{type(self).__name__} {self.key_id} {self.algorithm}>"


class SM2Signer(Signer):
    """SM2 signature with SM3 (GB/T 32918, user id ``1234567812345678``) through Tongsuo."""

    algorithm = ALG_SM2

    def __init__(self, key_id: str, private_key: Any) -> None:
        self.key_id = check_key_id(key_id)
        self._key = private_key

    @classmethod
    def generate(cls, key_id: str) -> "SM2Signer":
        return cls(key_id, _tec.generate_private_key(_tec.SM2()))

    def sign(self, data: bytes) -> bytes:
        return bytes(self._key.sign(data, _tec.ECDSA(_thashes.SM3())))

    def public_key(self) -> PublicKey:
        return PublicKey(self.key_id, ALG_SM2, self._key.public_key())

    def private_key_pem(self) -> str:
        return self._key.private_bytes(_tser.Encoding.PEM, _tser.PrivateFormat.PKCS8,
                                       _tser.NoEncryption()).decode("ascii")


class Ed25519Signer(Signer):
    """Ed25519 (RFC 8032) through ``cryptography``: the configured alternative to SM2."""

    algorithm = ALG_ED25519

    def __init__(self, key_id: str, private_key: Ed25519PrivateKey) -> None:
        self.key_id = check_key_id(key_id)
        self._key = private_key

    @classmethod
    def generate(cls, key_id: str) -> "Ed25519Signer":
        return cls(key_id, Ed25519PrivateKey.generate())

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def public_key(self) -> PublicKey:
        return PublicKey(self.key_id, ALG_ED25519, self._key.public_key())

    def private_key_pem(self) -> str:
        return self._key.private_bytes(_cser.Encoding.PEM, _cser.PrivateFormat.PKCS8,
                                       _cser.NoEncryption()).decode("ascii")


def generate_signer(algorithm: str = ALG_SM2, key_id: str | None = None) -> Signer:
    """A fresh in-memory key; the default id is ``dev-<alg>-<UTC timestamp>-<random>``."""
    if algorithm not in ALGORITHMS:
        raise KeyConfigError(f"不支持的签名算法 {algorithm!r}，可选 {', '.join(ALGORITHMS)}")
    if key_id is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
        key_id = f"dev-{'sm2' if algorithm == ALG_SM2 else 'ed25519'}-{stamp}-{secrets.token_hex(3)}"
    return (SM2Signer if algorithm == ALG_SM2 else Ed25519Signer).generate(key_id)


def signer_from_pem(key_id: str, pem: str | bytes, password: bytes | None = None) -> Signer:
    """Load a PKCS#8 (or SEC1 for SM2) private key PEM; the algorithm follows from the key."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = _cser.load_pem_private_key(data, password)
    except _CryptoUnsupported:
        key = None
    except (ValueError, TypeError) as exc:
        raise KeyConfigError(f"私钥 {key_id} 无法读取（格式或口令错误）") from exc
    if isinstance(key, Ed25519PrivateKey):
        return Ed25519Signer(key_id, key)
    try:
        tkey = _tser.load_pem_private_key(data, password)
    except Exception as exc:  # noqa: BLE001 - tongsuopy raises several types
        raise KeyConfigError(f"私钥 {key_id} 不是 SM2 或 Ed25519 私钥") from exc
    if not isinstance(tkey, _tec.EllipticCurvePrivateKey) or tkey.curve.name != "SM2":
        raise KeyConfigError(f"私钥 {key_id} 不是 SM2 或 Ed25519 私钥")
    return SM2Signer(key_id, tkey)


# --- verifier and key ring ------------------------------------------------------------------


class Verifier:
    """Public keys by key id. Adding a key never removes one, so old signatures keep verifying."""

    def __init__(self, keys: list[PublicKey] | None = None) -> None:
        self._keys: dict[str, PublicKey] = {}
        for key in keys or []:
            self.add(key)

    def add(self, key: PublicKey) -> None:
        known = self._keys.get(key.key_id)
        if known is not None and known.pem() != key.pem():
            raise KeyConfigError(f"密钥标识 {key.key_id} 已对应另一把公钥")
        self._keys[key.key_id] = key

    def add_pem(self, key_id: str, pem: str | bytes) -> PublicKey:
        key = PublicKey.from_pem(key_id, pem)
        self.add(key)
        return key

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def key(self, key_id: str) -> PublicKey:
        """The key for ``key_id``; raises ``UnknownKey``."""
        try:
            return self._keys[key_id]
        except (KeyError, TypeError):
            raise UnknownKey(detail={"kid": str(key_id)[:64]}) from None

    def verify(self, key_id: str, algorithm: str, data: bytes, signature: bytes) -> bool:
        """False for an unknown key, an algorithm other than the key's own, or a bad signature."""
        key = self._keys.get(key_id) if isinstance(key_id, str) else None
        if key is None or algorithm != key.algorithm:
            return False
        return key.verify(data, signature)

    def export(self) -> dict[str, dict[str, str]]:
        """``{kid: {"alg", "pem"}}`` for offline verifiers (public data)."""
        return {kid: {"alg": k.algorithm, "pem": k.pem()} for kid, k in sorted(self._keys.items())}

    @classmethod
    def from_export(cls, exported: Mapping[str, Mapping[str, str]]) -> "Verifier":
        verifier = cls()
        for kid, entry in exported.items():
            key = PublicKey.from_pem(kid, entry["pem"])
            if entry.get("alg") not in (None, key.algorithm):
                raise KeyConfigError(f"公钥 {kid} 的算法与声明不符")
            verifier.add(key)
        return verifier


class KeyRing:
    """Private keys by key id, one of them active (used for new signatures), plus public-only
    keys of retired signers. ``verifier()`` covers all of them."""

    def __init__(self) -> None:
        self._signers: dict[str, Signer] = {}
        self._public: dict[str, PublicKey] = {}
        self._active: str | None = None
        self._verifier: Verifier | None = None  # built once per set of keys: loading a key is not free

    def add(self, signer: Signer, *, activate: bool = True) -> Signer:
        if signer.key_id in self._signers or signer.key_id in self._public:
            raise KeyConfigError(f"密钥标识 {signer.key_id} 重复")
        self._signers[signer.key_id] = signer
        self._verifier = None
        if activate or self._active is None:
            self._active = signer.key_id
        return signer

    def add_public(self, key: PublicKey) -> None:
        if key.key_id in self._signers or key.key_id in self._public:
            raise KeyConfigError(f"密钥标识 {key.key_id} 重复")
        self._public[key.key_id] = key
        self._verifier = None

    def rotate(self, algorithm: str | None = None, key_id: str | None = None) -> Signer:
        """Generate a new in-memory key and make it active (development and tests)."""
        alg = algorithm or (self.active.algorithm if self._active else ALG_SM2)
        return self.add(generate_signer(alg, key_id))

    @property
    def active(self) -> Signer:
        if self._active is None:
            raise KeyConfigError("没有可用的签名私钥")
        return self._signers[self._active]

    def signer(self, key_id: str) -> Signer:
        try:
            return self._signers[key_id]
        except KeyError:
            raise UnknownKey(detail={"kid": key_id}) from None

    def verifier(self) -> Verifier:
        """Every public key of the ring, parsed once (every QR scan asks for it); a fresh copy after
        ``add``/``add_public``/``rotate``. Callers must not add keys to it."""
        if self._verifier is None:
            self._verifier = Verifier([s.public_key() for s in self._signers.values()] + list(self._public.values()))
        return self._verifier

    @classmethod
    def generate_dev(cls, algorithm: str = ALG_SM2, key_id: str | None = None) -> "KeyRing":
        """One fresh in-memory key. Nothing is written: signatures die with the process."""
        ring = cls()
        ring.add(generate_signer(algorithm, key_id))
        return ring

    @classmethod
    def shared_dev(cls, algorithm: str = ALG_SM2) -> "KeyRing":
        """The development key every process derives alike from a PUBLIC seed (key id
        ``dev-<alg>-shared``): an API process and a job worker, or two API processes, verify each
        other's certificates and QR tokens. Anyone can forge with it — production refuses it."""
        if algorithm not in ALGORITHMS:
            raise KeyConfigError(f"不支持的签名算法 {algorithm!r}，可选 {', '.join(ALGORITHMS)}")
        seed = hashlib.sha256(_DEV_SEED + algorithm.encode("ascii")).digest()
        ring = cls()
        if algorithm == ALG_SM2:
            scalar = int.from_bytes(seed, "big") % (_SM2_ORDER - 1) + 1
            ring.add(SM2Signer("dev-sm2-shared", _tec.derive_private_key(scalar, _tec.SM2())))
        else:
            ring.add(Ed25519Signer("dev-ed25519-shared", Ed25519PrivateKey.from_private_bytes(seed)))
        return ring

    @classmethod
    def load(cls, directory: str | Path, *, active: str | None = None,
             password: bytes | None = None) -> "KeyRing":
        """Read ``<key_id>.pem`` files: private keys sign, public-only files just verify.
        The active key is ``active`` if given, else the newest private key file (mtime, then
        key id) — prefer date-prefixed key ids so the order survives copies."""
        path = Path(directory)
        if not path.is_dir():
            raise KeyConfigError(f"签名密钥目录不存在：{path}")
        ring = cls()
        newest: tuple[float, str] | None = None
        for file in sorted(path.glob("*.pem")):
            key_id = check_key_id(file.stem)
            data = file.read_bytes()
            if b"PRIVATE KEY-----" in data:
                ring.add(signer_from_pem(key_id, data, password), activate=False)
                stamp = (file.stat().st_mtime, key_id)
                newest = stamp if newest is None or stamp > newest else newest
            elif b"PUBLIC KEY-----" in data:
                ring.add_public(PublicKey.from_pem(key_id, data))
            else:
                raise KeyConfigError(f"{file.name} 不是 PEM 密钥文件")
        if newest is None:
            raise KeyConfigError(f"签名密钥目录 {path} 中没有私钥（<key_id>.pem）")
        chosen = active or newest[1]
        if chosen not in ring._signers:
            raise KeyConfigError(f"指定的当前密钥 {chosen} 不在 {path} 中")
        ring._active = chosen
        return ring

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "KeyRing":
        """``GOVFLOW_CERT_KEY_DIR`` (+ optional ``GOVFLOW_CERT_ACTIVE_KEY``); without a
        directory, development gets the shared public dev key (``GOVFLOW_CERT_ALGORITHM``, default
        SM2-SM3) and production refuses to start."""
        env = os.environ if env is None else env
        directory = env.get("GOVFLOW_CERT_KEY_DIR", "")
        if directory:
            ring = cls.load(directory, active=env.get("GOVFLOW_CERT_ACTIVE_KEY") or None)
            if env_is_production(environ=env):
                public = {cls.shared_dev(alg).active.public_key_pem() for alg in ALGORITHMS}
                copied = sorted(k for k, s in ring._signers.items() if s.public_key_pem() in public)
                if copied:  # the development key's seed is public: anyone could sign with it
                    raise KeyConfigError(f"GOVFLOW_CERT_KEY_DIR 中的密钥 {', '.join(copied)} 是公开的开发密钥，"
                                         "生产环境拒绝使用（refusing the public development signing key）")
            return ring
        if env_is_production(environ=env):
            raise KeyConfigError("生产环境必须设置 GOVFLOW_CERT_KEY_DIR（电子证照签名私钥目录）")
        # one key for every process (API workers, job workers): a per-process throw-away key
        # would make a certificate issued by one unverifiable by the others
        return cls.shared_dev(env.get("GOVFLOW_CERT_ALGORITHM") or ALG_SM2)


def write_key_file(signer: Signer, directory: str | Path) -> Path:
    """Write ``<key_id>.pem`` (mode 0600, never overwriting) outside the project checkout."""
    target_dir = Path(directory).resolve()
    if target_dir == _PROJECT_ROOT or _PROJECT_ROOT in target_dir.parents:
        raise KeyConfigError(f"私钥不得写入项目目录 {_PROJECT_ROOT}")
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{signer.key_id}.pem"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(signer.private_key_pem())
    return target
