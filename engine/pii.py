"""Personal-data helpers: masking for responses and logs, keyed blind indexes, ID-number checks.

ID numbers (GB 11643) and phone numbers never appear in clear in a log line or an access record:
they are masked for display and found through a keyed hash (blind index) instead of the number.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from typing import Any

from stdnum.cn import ric

log = logging.getLogger(__name__)

PII_KEY_SETTING = "GOVFLOW_PII_KEY"
MIN_KEY_BYTES = 32
# Development only: a fixed, public key so demo data hashes the same on every machine.
_warned_dev_key = False
_DEV_KEY_SEED = b"govflow development PII key - not secret, never use in production"

_ID_LIKE = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
_MOBILE_LIKE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
_SEPARATORS = re.compile(r"[\s\-]+")


def mask_middle(value: str, head: int, tail: int, fill: str = "*") -> str:
    """Keep ``head`` leading and ``tail`` trailing characters, star the rest; all stars when too short."""
    value = value or ""
    if len(value) <= head + tail:
        return fill * len(value)
    return value[:head] + fill * (len(value) - head - tail) + (value[-tail:] if tail else "")


def mask_id_number(value: str) -> str:
    """``110101199003071234`` -> ``110***********1234`` (first 3, last 4)."""
    return mask_middle(normalise_id(value), 3, 4)


def mask_phone(value: str) -> str:
    """``13812345678`` -> ``138****5678`` (first 3, last 4)."""
    return mask_middle(_SEPARATORS.sub("", value or ""), 3, 4)


def mask_name(value: str) -> str:
    """``张三丰`` -> ``张**``: the family name stays, the given name is starred."""
    value = (value or "").strip()
    if len(value) <= 1:
        return "*" * len(value)
    return value[0] + "*" * (len(value) - 1)


def mask_text(text: str) -> str:
    """Mask every ID-number-looking (18 chars) and mobile-looking (11 digits) run in free text."""
    text = _ID_LIKE.sub(lambda m: mask_id_number(m.group(0)), text)
    return _MOBILE_LIKE.sub(lambda m: mask_phone(m.group(0)), text)


def normalise_id(value: str) -> str:
    """Canonical form of an ID number or credit code: no spaces or dashes, upper case."""
    return _SEPARATORS.sub("", str(value or "")).upper()


def blind_index(value: str, key: bytes) -> str:
    """Keyed hash (HMAC-SHA256, hex) of a normalised identifier: equal numbers give equal
    indexes, so a person is found without storing the number; without the key it reveals nothing."""
    if not key:
        raise ValueError("blind_index needs a non-empty key")
    return hmac.new(key, normalise_id(value).encode("utf-8"), hashlib.sha256).hexdigest()


def is_valid_id_number(value: Any) -> bool:
    """GB 11643 citizen ID number: 18 chars, valid birth date and region, mod-11 check digit."""
    if not isinstance(value, str) or not value.strip():
        return False
    return bool(ric.is_valid(normalise_id(value)))


def _derive(master: bytes, purpose: str) -> bytes:
    return hmac.new(master, b"govflow-pii:" + purpose.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class PiiKeys:
    """Keys for personal data, derived from one master secret (``GOVFLOW_PII_KEY``, hex).

    One purpose, one key: a leaked blind-index key does not decrypt anything and vice versa.
    """

    master: bytes
    development: bool = False

    def __post_init__(self) -> None:
        if len(self.master) < MIN_KEY_BYTES:
            raise ValueError(f"{PII_KEY_SETTING} must be at least {MIN_KEY_BYTES} bytes ({2 * MIN_KEY_BYTES} hex chars)")

    def __repr__(self) -> str:  # never print key material
        return f"PiiKeys(development={self.development})"

    @property
    def blind_index_key(self) -> bytes:
        return _derive(self.master, "blind-index")

    @property
    def encryption_key(self) -> bytes:
        """32 bytes for encrypting ID numbers at rest (SM4 takes the first 16)."""
        return _derive(self.master, "encryption")

    @classmethod
    def development_keys(cls) -> "PiiKeys":
        return cls(hashlib.sha256(_DEV_KEY_SEED).digest(), development=True)

    @classmethod
    def from_hex(cls, raw: str) -> "PiiKeys":
        try:
            master = bytes.fromhex(raw.strip())
        except ValueError:
            raise ValueError(f"{PII_KEY_SETTING} is not valid hex") from None
        return cls(master)

    @classmethod
    def from_settings(cls, settings: Any) -> "PiiKeys":
        """``settings.PII_KEY`` (hex) when set; required in production, a fixed dev key otherwise."""
        raw = str(getattr(settings, "PII_KEY", "") or "")
        if raw:
            return cls.from_hex(raw)
        if getattr(settings, "is_production", False):
            raise ValueError(f"{PII_KEY_SETTING} is required in production (hex, at least "
                             f"{MIN_KEY_BYTES} bytes; e.g. `python -c \"import secrets; print(secrets.token_hex(32))\"`)")
        global _warned_dev_key
        if not _warned_dev_key:  # once per process, not once per component that asks
            _warned_dev_key = True
            log.warning("%s is not set: using the fixed development PII key (not secret)", PII_KEY_SETTING)
        return cls.development_keys()


__all__ = [
    "PiiKeys", "blind_index", "is_valid_id_number", "mask_id_number", "mask_middle", "mask_name",
    "mask_phone", "mask_text", "normalise_id",
]


# ---------------------------------------------------------------- encryption at rest
_ENC_PREFIX = "v1:"


def encrypt(value: str, key: bytes, *, context: bytes = b"govflow") -> str:
    """AES-256-GCM with a random nonce; ``context`` is bound as associated data so a value
    copied into another column does not decrypt there."""
    import base64
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    sealed = AESGCM(_aes_key(key)).encrypt(nonce, value.encode("utf-8"), context)
    return _ENC_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def decrypt(token: str, key: bytes, *, context: bytes = b"govflow") -> str:
    """Inverse of ``encrypt``; raises ``ValueError`` for anything tampered or foreign."""
    import base64

    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not isinstance(token, str) or not token.startswith(_ENC_PREFIX):
        raise ValueError("not a govflow ciphertext")
    try:
        raw = base64.urlsafe_b64decode(token[len(_ENC_PREFIX):].encode("ascii"))
        return AESGCM(_aes_key(key)).decrypt(raw[:12], raw[12:], context).decode("utf-8")
    except (InvalidTag, ValueError) as exc:
        raise ValueError("ciphertext cannot be decrypted (wrong key or tampered)") from exc


def is_encrypted(text: str) -> bool:
    return isinstance(text, str) and text.startswith(_ENC_PREFIX)


def _aes_key(key: bytes) -> bytes:
    import hashlib

    return key if len(key) == 32 else hashlib.sha256(key).digest()
