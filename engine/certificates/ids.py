"""E-certificate identifiers (GB/T 36904 style) and unified social credit codes (GB 32100).

Pure functions, no I/O. ``engine.certificates.signing`` re-exports everything here.

Identifier layout::

    1.2.156.3005.2.<type code>.<issuer code>.<serial>.<version>.<check>

- type code: the defining body's 18-char unified social credit code (USCC) + 3 digits
- issuer code: the issuing body's 18-char USCC
- serial: 1-32 characters of ``0-9A-Z`` (digits recommended)
- version: 3 digits
- check: ISO 7064 MOD 37,36 over type code + issuer code + serial + version (no dots)
"""

from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass
from random import Random

from stdnum.cn import uscc as _uscc
from stdnum.iso7064 import mod_37_36

from engine.errors import ValidationFailed

IDENTIFIER_PREFIX = "1.2.156.3005.2"
MAX_SERIAL_LEN = 32
# Longest well-formed identifier; longer input is refused before any parsing work.
MAX_IDENTIFIER_LEN = len(IDENTIFIER_PREFIX) + 1 + 21 + 1 + 18 + 1 + MAX_SERIAL_LEN + 1 + 3 + 1 + 1

_SERIAL_RE = re.compile(r"[0-9A-Z]{1,%d}" % MAX_SERIAL_LEN)
_VERSION_RE = re.compile(r"[0-9]{3}")
_DIGITS_RE = re.compile(r"[0-9]+")
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714 organization code weights
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


class InvalidIdentifier(ValidationFailed, ValueError):
    """A malformed e-certificate identifier or one of its parts (also a ``ValueError``)."""

    code = "invalid_certificate_identifier"
    default_message = "电子证照标识不正确"


@dataclass(frozen=True)
class IdentifierParts:
    """The parts of a parsed identifier."""

    type_code: str
    issuer_code: str
    serial: str
    version: str
    check: str

    @property
    def defining_body_code(self) -> str:
        """USCC of the body that defined the certificate type (first 18 chars of the type code)."""
        return self.type_code[:18]

    @property
    def identifier(self) -> str:
        return ".".join((IDENTIFIER_PREFIX, self.type_code, self.issuer_code, self.serial,
                         self.version, self.check))


def _fail(what: str) -> InvalidIdentifier:
    return InvalidIdentifier(f"电子证照标识不正确：{what}", detail=what)


def is_uscc(code: object) -> bool:
    """True for an 18-char, upper-case USCC with a correct check character (no spaces)."""
    return (isinstance(code, str) and len(code) == 18 and code == code.strip().upper()
            and _uscc.is_valid(code))


def _check_type_code(type_code: object) -> str:
    if not isinstance(type_code, str) or len(type_code) != 21:
        raise _fail("证照类型代码应为 21 位（18 位统一社会信用代码 + 3 位数字）")
    if not is_uscc(type_code[:18]):
        raise _fail("证照类型代码中的定义机构统一社会信用代码无效")
    if not _DIGITS_RE.fullmatch(type_code[18:]):
        raise _fail("证照类型代码的最后 3 位应为数字")
    return type_code


def _check_issuer_code(issuer_code: object) -> str:
    if not is_uscc(issuer_code):
        raise _fail("颁证机构代码不是有效的统一社会信用代码")
    return issuer_code  # type: ignore[return-value]


def _check_serial(serial: object) -> str:
    if isinstance(serial, int) and not isinstance(serial, bool) and serial >= 0:
        serial = str(serial)
    if not isinstance(serial, str) or not _SERIAL_RE.fullmatch(serial):
        raise _fail(f"流水号应为 1-{MAX_SERIAL_LEN} 位数字或大写字母")
    return serial


def _check_version(version: object) -> str:
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
        raise _fail("版本号应为 3 位数字")
    return version


def identifier_check_char(type_code: str, issuer_code: str, serial: str, version: str) -> str:
    """The ISO 7064 MOD 37,36 check character over the four middle parts joined without dots."""
    return mod_37_36.calc_check_digit(type_code + issuer_code + serial + version)


def make_identifier(type_code: str, issuer_code: str, serial: str | int, version: str = "001") -> str:
    """Build a full identifier from validated parts, computing the check character."""
    type_code = _check_type_code(type_code)
    issuer_code = _check_issuer_code(issuer_code)
    serial = _check_serial(serial)
    version = _check_version(version)
    check = identifier_check_char(type_code, issuer_code, serial, version)
    return IdentifierParts(type_code, issuer_code, serial, version, check).identifier


def parse_identifier(s: object) -> IdentifierParts:
    """Split and validate an identifier; raises ``InvalidIdentifier`` (never IndexError)."""
    if not isinstance(s, str) or not s:
        raise _fail("标识为空")
    return _parse(s)


@functools.lru_cache(maxsize=4096)
def _parse(s: str) -> IdentifierParts:
    """The work of ``parse_identifier``, remembered for valid identifiers (a pure function of the
    string; the two USCC checks were ~3 % of a QR scan's CPU). Failures raise and are not kept."""
    if len(s) > MAX_IDENTIFIER_LEN:
        raise _fail("标识过长")
    if not s.startswith(IDENTIFIER_PREFIX + "."):
        raise _fail(f"标识应以 {IDENTIFIER_PREFIX}. 开头")
    parts = s[len(IDENTIFIER_PREFIX) + 1:].split(".")
    if len(parts) != 5:
        raise _fail("标识应包含类型代码、颁证机构代码、流水号、版本号和校验位五段")
    type_code, issuer_code, serial, version, check = parts
    _check_type_code(type_code)
    _check_issuer_code(issuer_code)
    _check_serial(serial)
    _check_version(version)
    if len(check) != 1:
        raise _fail("校验位应为 1 个字符")
    if check != identifier_check_char(type_code, issuer_code, serial, version):
        raise _fail("校验位不符")
    return IdentifierParts(type_code, issuer_code, serial, version, check)


def is_valid_identifier(s: object) -> bool:
    """True when ``parse_identifier`` accepts ``s``."""
    try:
        parse_identifier(s)
    except InvalidIdentifier:
        return False
    return True


# --- unified social credit codes ------------------------------------------------------------


def org_code_check_char(body: str) -> str:
    """GB 11714 check character for an 8-char organization code body (digits / A-Z)."""
    if len(body) != 8 or any(c not in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" for c in body):
        raise ValueError("organization code body must be 8 characters 0-9 / A-Z")
    total = sum(int(c, 36) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def uscc_has_valid_org_code(code: str) -> bool:
    """Stricter than ``stdnum.cn.uscc``: the embedded organization code's own check matches too."""
    if not is_uscc(code):
        return False
    org = code[8:17]
    try:
        return org_code_check_char(org[:8]) == org[8]
    except ValueError:
        return False


def new_uscc(registration_authority: str = "91", region: str = "310000",
             rng: Random | None = None) -> str:
    """Generate a valid USCC: authority + entity type (2 digits), region (6 digits), a random
    organization code with its GB 11714 check, and the GB 32100 check character.

    Uniqueness is not guaranteed: the caller checks its register before using the code.
    """
    if not isinstance(registration_authority, str) or not re.fullmatch(r"[0-9]{2}", registration_authority):
        raise ValueError("registration_authority must be 2 digits, e.g. '91' (market regulation, enterprise)")
    if not isinstance(region, str) or not re.fullmatch(r"[0-9]{6}", region):
        raise ValueError("region must be a 6-digit administrative division code, e.g. '310000'")
    rand = rng if rng is not None else secrets.SystemRandom()
    body = "".join(rand.choice("0123456789") for _ in range(8))
    first17 = registration_authority + region + body + org_code_check_char(body)
    code = first17 + _uscc.calc_check_digit(first17)
    assert all(c in _USCC_ALPHABET for c in code)
    return code
