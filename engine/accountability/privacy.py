"""Personal-data helpers: masking for responses and logs, keyed blind indexes, ID-number checks.

ID numbers (GB 11643) and phone numbers never appear in clear in a log line or an access record:
they are masked for display and found through a keyed hash (blind index) instead of the number.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from stdnum import numdb

log = logging.getLogger(__name__)

PII_KEY_SETTING = "GOVFLOW_PII_KEY"
MIN_KEY_BYTES = 32
# Development only: a fixed, public key so demo data hashes the same on every machine.
_warned_dev_key = False
_DEV_KEY_SEED = b"govflow development PII key - not secret, never use in production"

DEFAULT_KEY_ID = "k0"
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
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


def is_valid_id_number(value: Any, *, today: date | None = None) -> bool:
    """GB 11643 citizen ID number (公民身份号码), after ``normalise_id``: see ``id_number_problem``."""
    if not isinstance(value, str) or not value.strip():
        return False
    return id_number_problem(normalise_id(value), today=today) is None


def id_number_problem(number: str, *, today: date | None = None) -> str | None:
    """Why ``number`` (normalised) is no GB 11643 number, or ``None``: 17 digits and the ISO 7064
    MOD 11-2 check character, a real calendar date from 1900 up to ``today`` (China time by
    default), and an address code that is or was a county-level code in any year.

    Not checked, on purpose: that the county existed at the holder's birth. The address code is
    that of the registration office when the number was *issued* (1984 on), so a Pudong resident
    born in 1955 really holds a ``310115…`` number although 浦东新区 dates from 1992 (issue #14)."""
    if len(number) != 18 or not number[:17].isdigit() or number[17] not in "0123456789X":
        return "format"
    if number[17] != _gb11643_check(number[:17]):
        return "check"
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return "date"
    if born.year < 1900 or born > (today or datetime.now(_CST).date()):
        return "date"
    if number[:6] not in county_codes():
        return "region"
    return None


_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CST = timezone(timedelta(hours=8))


def _gb11643_check(body: str) -> str:
    value = (12 - sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True)) % 11) % 11
    return "X" if value == 10 else str(value)


@functools.cache
def county_codes() -> frozenset[str]:
    """Every county-level address code (GB/T 2260) that exists or ever existed — the national
    division table python-stdnum ships, abolished codes included (崇文区 110103, 南汇县 310225 …);
    province (``xx0000``) and prefecture (``xxxx00``) codes are not county-level."""
    codes: set[str] = set()
    for _, low, high, _props, children in numdb.get("cn/loc").prefixes:
        if low != high:
            continue
        for _, c_low, c_high, props, _ in children:
            if c_low == c_high and props.get("county") and not c_low.endswith("00"):
                codes.add(low + c_low)
    return frozenset(codes)


def _derive(master: bytes, purpose: str) -> bytes:
    return hmac.new(master, b"govflow-pii:" + purpose.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class PiiKeys:
    """Keys for personal data, derived from master secrets with key ids (``GOVFLOW_PII_KEY``).

    One purpose, one key: a leaked blind-index key does not decrypt anything and vice versa.
    Rotation: ``master`` (id ``key_id``) encrypts; ``others`` (older keys, id and secret) still
    decrypt, so data encrypted before a rotation stays readable. Blind indexes and audit-anchor
    MACs stay on the first key ever used (``index_master``): changing them would lose every
    look-up, so they move only with a re-index, never with a rotation.
    """

    master: bytes
    development: bool = False
    key_id: str = DEFAULT_KEY_ID
    others: tuple[tuple[str, bytes], ...] = ()
    index_master: bytes | None = None

    def __post_init__(self) -> None:
        for secret in (self.master, *(m for _, m in self.others), *([self.index_master] if self.index_master else [])):
            if len(secret) < MIN_KEY_BYTES:
                raise ValueError(f"{PII_KEY_SETTING} must be at least {MIN_KEY_BYTES} bytes ({2 * MIN_KEY_BYTES} hex chars)")
        ids = [self.key_id, *(k for k, _ in self.others)]
        if len(set(ids)) != len(ids) or not all(_KEY_ID.fullmatch(k) for k in ids):
            raise ValueError(f"{PII_KEY_SETTING}: key ids must be unique, letters, digits . _ - (got {ids})")

    def __repr__(self) -> str:  # never print key material
        return f"PiiKeys(key_id={self.key_id!r}, others={[k for k, _ in self.others]}, development={self.development})"

    @property
    def blind_index_key(self) -> bytes:
        return _derive(self.index_master or self.master, "blind-index")

    @property
    def audit_key(self) -> bytes:
        """MAC key of audit anchors (``engine.accountability.audit``): on the index key, so rotation keeps it."""
        return _derive(self.index_master or self.master, "audit-anchor")

    @property
    def encryption_key(self) -> bytes:
        """32 bytes for encrypting ID numbers at rest (SM4 takes the first 16), of the active key."""
        return _derive(self.master, "encryption")

    @property
    def retired_encryption_keys(self) -> list[bytes]:
        """Encryption keys of the older keys: they only decrypt (and the case-state serializer)."""
        return [_derive(m, "encryption") for _, m in self.others]

    def encrypt(self, value: str, *, context: bytes = b"govflow") -> str:
        """AES-256-GCM under the active key; the key id travels with the ciphertext (``v2:<kid>:``)."""
        return encrypt(value, self.encryption_key, context=context, key_id=self.key_id)

    def decrypt(self, token: str, *, context: bytes = b"govflow") -> str:
        """Decrypt with the key the ciphertext names; ``v1:`` (made before key ids) tries each key."""
        keys = {self.key_id: self.encryption_key, **{k: _derive(m, "encryption") for k, m in self.others}}
        if isinstance(token, str) and token.startswith(_ENC_PREFIX_V2):
            kid = token[len(_ENC_PREFIX_V2):].split(":", 1)[0]
            if kid not in keys:
                raise ValueError(f"ciphertext names an unknown key id {kid[:64]!r}")
            return decrypt(token, keys[kid], context=context)
        for key in keys.values():
            try:
                return decrypt(token, key, context=context)
            except ValueError:
                continue
        raise ValueError("ciphertext cannot be decrypted (wrong key or tampered)")

    @classmethod
    def development_keys(cls) -> "PiiKeys":
        return cls(hashlib.sha256(_DEV_KEY_SEED).digest(), development=True)

    @classmethod
    def from_hex(cls, raw: str) -> "PiiKeys":
        """One hex key, or a rotation list ``id:hex,id:hex`` (oldest first; the last encrypts)."""
        return cls.from_entries(_parse_entries(raw, PII_KEY_SETTING))

    @classmethod
    def from_entries(cls, entries: list[tuple[str, bytes]], active: str | None = None) -> "PiiKeys":
        if not entries:
            raise ValueError(f"{PII_KEY_SETTING}: no key given")
        ids = [k for k, _ in entries]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{PII_KEY_SETTING}: key ids must be unique (got {ids})")
        active = active or ids[-1]
        if active not in ids:
            raise ValueError(f"GOVFLOW_PII_ACTIVE_KEY {active!r} is not among the keys {ids}")
        master = dict(entries)[active]
        return cls(master, key_id=active, others=tuple((k, m) for k, m in entries if k != active),
                   index_master=entries[0][1])

    @classmethod
    def from_settings(cls, settings: Any) -> "PiiKeys":
        """``settings.PII_KEY`` (hex, or ``id:hex,…``) and/or ``PII_KEY_FILE`` (one ``id hex`` a
        line, oldest first); ``PII_ACTIVE_KEY`` picks the encrypting key (default: the last).
        Required in production; a fixed dev key otherwise."""
        raw = str(getattr(settings, "PII_KEY", "") or "")
        path = str(getattr(settings, "PII_KEY_FILE", "") or "")
        entries: list[tuple[str, bytes]] = []
        if path:
            entries += _read_key_file(path)
        if raw:
            entries += _parse_entries(raw, PII_KEY_SETTING)
        if entries:
            return cls.from_entries(entries, str(getattr(settings, "PII_ACTIVE_KEY", "") or "") or None)
        if getattr(settings, "is_production", False):
            raise ValueError(f"{PII_KEY_SETTING} is required in production (hex, at least "
                             f"{MIN_KEY_BYTES} bytes; e.g. `python -c \"import secrets; print(secrets.token_hex(32))\"`)")
        global _warned_dev_key
        if not _warned_dev_key:  # once per process, not once per component that asks
            _warned_dev_key = True
            log.warning("%s is not set: using the fixed development PII key (not secret)", PII_KEY_SETTING)
        return cls.development_keys()


def _hex(raw: str, where: str) -> bytes:
    try:
        return bytes.fromhex(raw.strip())
    except ValueError:
        raise ValueError(f"{where} is not valid hex") from None


def _parse_entries(raw: str, where: str) -> list[tuple[str, bytes]]:
    """``hex`` (id ``k0``) or ``id:hex,id:hex``."""
    items = [part.strip() for part in raw.split(",") if part.strip()]
    entries = []
    for item in items:
        kid, _, secret = item.rpartition(":")
        entries.append((kid.strip() or DEFAULT_KEY_ID, _hex(secret, where)))
    return entries


def _read_key_file(path: str) -> list[tuple[str, bytes]]:
    from pathlib import Path

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"GOVFLOW_PII_KEY_FILE {path}: {exc.strerror or exc}") from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(":", " ").split()
        if len(parts) != 2:
            raise ValueError(f"GOVFLOW_PII_KEY_FILE {path}:{number}: expected `<key id> <hex>`")
        entries.append((parts[0], _hex(parts[1], f"GOVFLOW_PII_KEY_FILE {path}:{number}")))
    return entries


__all__ = [
    "PiiKeys", "blind_index", "county_codes", "id_number_problem", "is_valid_id_number", "mask_id_number", "mask_middle", "mask_name",
    "mask_phone", "mask_text", "normalise_id",
]


# ---------------------------------------------------------------- encryption at rest
_ENC_PREFIX = "v1:"
_ENC_PREFIX_V2 = "v2:"


def encrypt(value: str, key: bytes, *, context: bytes = b"govflow", key_id: str | None = None) -> str:
    """AES-256-GCM with a random nonce; ``context`` is bound as associated data so a value
    copied into another column does not decrypt there. With ``key_id`` the ciphertext names its
    key (``v2:<kid>:``, the id bound too), so it still decrypts after a rotation."""
    import base64
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    if key_id is not None:
        sealed = AESGCM(_aes_key(key)).encrypt(nonce, value.encode("utf-8"), context + b"|kid:" + key_id.encode())
        return f"{_ENC_PREFIX_V2}{key_id}:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
    sealed = AESGCM(_aes_key(key)).encrypt(nonce, value.encode("utf-8"), context)
    return _ENC_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def decrypt(token: str, key: bytes, *, context: bytes = b"govflow") -> str:
    """Inverse of ``encrypt``; raises ``ValueError`` for anything tampered or foreign."""
    import base64

    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if isinstance(token, str) and token.startswith(_ENC_PREFIX_V2):
        kid, _, body = token[len(_ENC_PREFIX_V2):].partition(":")
        token, context = _ENC_PREFIX + body, context + b"|kid:" + kid.encode()
    if not isinstance(token, str) or not token.startswith(_ENC_PREFIX):
        raise ValueError("not a govflow ciphertext")
    try:
        raw = base64.urlsafe_b64decode(token[len(_ENC_PREFIX):].encode("ascii"))
        return AESGCM(_aes_key(key)).decrypt(raw[:12], raw[12:], context).decode("utf-8")
    except (InvalidTag, ValueError) as exc:
        raise ValueError("ciphertext cannot be decrypted (wrong key or tampered)") from exc


def is_encrypted(text: str) -> bool:
    return isinstance(text, str) and text.startswith((_ENC_PREFIX, _ENC_PREFIX_V2))


def _aes_key(key: bytes) -> bytes:
    import hashlib

    return key if len(key) == 32 else hashlib.sha256(key).digest()
