"""E-certificates: identifiers, credit codes, metadata and states, SM2/Ed25519 signatures,
key rotation, QR tokens and the storage model (both database passes)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from stdnum.cn import uscc as stdnum_uscc
from stdnum.iso7064 import mod_37_36
from tortoise.exceptions import IntegrityError

from engine.certificates import signing as C
from engine.certificates.signing import (
    ALG_ED25519,
    ALG_SM2,
    CertificateData,
    CertState,
    InvalidIdentifier,
    KeyConfigError,
    KeyRing,
    SignedCertificate,
    TokenExpired,
    TokenInvalid,
    UnknownKey,
    Verifier,
    b64url_decode,
    b64url_encode,
    canonical_json,
    effective_state,
    is_valid_identifier,
    issue,
    make_identifier,
    make_qr_token,
    new_uscc,
    parse_identifier,
    verify_certificate,
    verify_qr_token,
)
from engine.errors import GovflowError, NotFound, ValidationFailed
from tests.conftest import FIXTURES

FX = FIXTURES / "certificates"
BODY = "91110000600037341L"  # stdnum's documented valid USCC, used as the defining body
ISSUER = "11310000612852669L"
TYPE = BODY + "001"
CITIZEN_ID = "11010519491231002X"  # GB 11643 sample number
NOW = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)


# --- independent reference implementations (not the code under test) ---------------------------

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def ref_mod37_36_check(s: str) -> str:
    """ISO 7064 MOD 37,36 (hybrid system, M = 36) written from the standard's description."""
    m, p = 36, 36
    for ch in s:
        total = (p + _ALNUM.index(ch)) % m or m
        p = (total * 2) % (m + 1)
    return _ALNUM[(1 - p) % m]


_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
_A = _P - 3
_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_G = (0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
      0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0)


def _ec_add(p1, p2):  # noqa: ANN001, ANN202 - affine points or None
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    if p1[0] == p2[0] and (p1[1] + p2[1]) % _P == 0:
        return None
    if p1 == p2:
        slope = (3 * p1[0] * p1[0] + _A) * pow(2 * p1[1], -1, _P) % _P
    else:
        slope = (p2[1] - p1[1]) * pow(p2[0] - p1[0], -1, _P) % _P
    x = (slope * slope - p1[0] - p2[0]) % _P
    return x, (slope * (p1[0] - x) - p1[1]) % _P


def _ec_mul(k: int, point):  # noqa: ANN001, ANN202
    result = None
    while k:
        if k & 1:
            result = _ec_add(result, point)
        point, k = _ec_add(point, point), k >> 1
    return result


def ref_sm2_verify(public_pem: str, message: bytes, der_sig: bytes) -> bool:
    """GB/T 32918.2 verification with user id 1234567812345678, SM3 from hashlib (OpenSSL)."""
    from tongsuopy.crypto import serialization as tser

    nums = tser.load_pem_public_key(public_pem.encode()).public_numbers()
    sm3 = lambda b: hashlib.new("sm3", b).digest()  # noqa: E731
    i2b = lambda i: i.to_bytes(32, "big")  # noqa: E731
    assert der_sig[0] == 0x30 and der_sig[2] == 0x02
    rlen = der_sig[3]
    r = int.from_bytes(der_sig[4:4 + rlen], "big")
    assert der_sig[4 + rlen] == 0x02
    s = int.from_bytes(der_sig[6 + rlen:6 + rlen + der_sig[5 + rlen]], "big")
    uid = b"1234567812345678"
    z = sm3((len(uid) * 8).to_bytes(2, "big") + uid + i2b(_A) + i2b(_B) + i2b(_G[0]) + i2b(_G[1])
            + i2b(nums.x) + i2b(nums.y))
    e = int.from_bytes(sm3(z + message), "big")
    x1, _ = _ec_add(_ec_mul(s, _G), _ec_mul((r + s) % _N, (nums.x, nums.y)))
    return (e + x1) % _N == r


def cert_data(**over) -> CertificateData:  # noqa: ANN003
    values = dict(name="老年人优待证", type_code=TYPE, number="沪老优2025000001", issuer_name="上海市民政局",
                  issuer_code=ISSUER, issue_date=date(2025, 1, 2), holder_name="张三",
                  holder_code=CITIZEN_ID, holder_code_type="111", valid_from=date(2025, 1, 2),
                  valid_to=date(2030, 1, 1), jurisdiction_code="310000", extra={"优待类别": "70周岁以上"})
    values.update(over)
    return CertificateData(**values)


# --- identifiers --------------------------------------------------------------------------------


def test_reference_mod37_36_agrees_with_stdnum() -> None:
    assert ref_mod37_36_check("A12425GABC1234002") == "M"  # ISO 7064 example in stdnum's docs
    rng = random.Random(7)
    for _ in range(300):
        s = "".join(rng.choice(_ALNUM) for _ in range(rng.randint(1, 60)))
        assert ref_mod37_36_check(s) == mod_37_36.calc_check_digit(s)
        assert mod_37_36.is_valid(s + ref_mod37_36_check(s))


@pytest.mark.parametrize("identifier", [
    "1.2.156.3005.2.91110000600037341L001.11310000612852669L.000001.001.6",
    "1.2.156.3005.2.91110000600037341L001.11310000612852669L.20250000123.002.4",
    "1.2.156.3005.2.91110000600037341L017.91110000600037341L.A7B9.001.H",
])
def test_known_good_identifiers(identifier: str) -> None:
    middle = identifier.split(".")[5:9]
    assert ref_mod37_36_check("".join(middle)) == identifier[-1]
    parts = parse_identifier(identifier)
    assert (parts.type_code, parts.issuer_code, parts.serial, parts.version) == tuple(middle)
    assert parts.defining_body_code == middle[0][:18] and parts.identifier == identifier
    assert is_valid_identifier(identifier)
    assert make_identifier(*middle) == identifier


def test_make_identifier_uses_mod37_36_over_the_middle_parts() -> None:
    ident = make_identifier(TYPE, ISSUER, 42)
    assert ident.startswith("1.2.156.3005.2." + TYPE + "." + ISSUER + ".42.001.")
    assert ident[-1] == ref_mod37_36_check(TYPE + ISSUER + "42001")
    assert ident[-1] == C.identifier_check_char(TYPE, ISSUER, "42", "001")


def test_corrupted_identifiers_are_rejected() -> None:
    good = make_identifier(TYPE, ISSUER, "20250000123", "002")
    for ch in _ALNUM:
        if ch != good[-1]:
            assert not is_valid_identifier(good[:-1] + ch)
    with pytest.raises(InvalidIdentifier, match="校验位"):
        parse_identifier(good[:-1] + ("0" if good[-1] != "0" else "1"))
    serial_at = good.index(".20250000123.") + 1
    for pos in range(serial_at, serial_at + 11):  # every single-digit change in the serial
        for digit in "0123456789":
            if digit != good[pos]:
                assert not is_valid_identifier(good[:pos] + digit + good[pos + 1:])
    swapped = good[:serial_at] + "02250000123" + good[serial_at + 11:]  # adjacent transposition
    assert not is_valid_identifier(swapped)


@pytest.mark.parametrize("bad", [
    None, "", "   ", 12345, "1.2.156", "1.2.156.3005.2.",
    "1.2.156.3005.2.91110000600037341L001.11310000612852669L.000001.001",  # too few parts
    "1.2.156.3005.2.91110000600037341L001.11310000612852669L.000001.001.6.7",  # too many
    "1.2.156.3005.3.91110000600037341L001.11310000612852669L.000001.001.6",  # wrong prefix
    "2.2.156.3005.2.91110000600037341L001.11310000612852669L.000001.001.6",
    " 1.2.156.3005.2.91110000600037341L001.11310000612852669L.000001.001.6",
    "1.2.156.3005.2.91110000600037341M001.11310000612852669L.000001.001.6",  # bad USCC (type)
    "1.2.156.3005.2.91110000600037341L0X1.11310000612852669L.000001.001.6",  # type suffix
    "1.2.156.3005.2.91110000600037341L01.11310000612852669L.000001.001.6",  # type length
    "1.2.156.3005.2.91110000600037341L001.11310000612852669M.000001.001.6",  # bad USCC (issuer)
    "1.2.156.3005.2.91110000600037341L001.11310000612852669l.000001.001.6",  # lower case
    "1.2.156.3005.2.91110000600037341L001.11310000612852669L.000001.0A1.6",  # version non-digit
    "1.2.156.3005.2.91110000600037341L001.11310000612852669L.000001.01.6",  # version length
    "1.2.156.3005.2.91110000600037341L001.11310000612852669L..001.6",  # empty serial
    "1.2.156.3005.2.91110000600037341L001.11310000612852669L.abc.001.6",  # lower-case serial
    "1.2.156.3005.2.91110000600037341L001.11310000612852669L.000001.001.",  # no check char
    "1.2.156.3005.2.91110000600037341L001.11310000612852669L.000001.001.66",
    "1.2.156.3005.2.91110000600037341L001.11310000612852669L." + "1" * 500 + ".001.6",
    "1.2.156.3005.2......",
])
def test_parse_rejects_garbage_with_a_clear_error(bad: object) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_identifier(bad)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ValidationFailed)
    assert info.value.message.startswith("电子证照标识不正确") and info.value.code == "invalid_certificate_identifier"
    assert not is_valid_identifier(bad)


def test_make_identifier_validates_its_parts() -> None:
    for args in [(BODY, ISSUER, 1), (TYPE, "91110000600037341M", 1), (TYPE, ISSUER, ""),
                 (TYPE, ISSUER, -1), (TYPE, ISSUER, 1, "1"), (TYPE, ISSUER, "x" * 33)]:
        with pytest.raises(InvalidIdentifier):
            make_identifier(*args)


# --- unified social credit codes ------------------------------------------------------------


def test_new_uscc_codes_are_accepted_by_stdnum() -> None:
    rng = random.Random(32100)
    codes = [new_uscc(rng=rng) for _ in range(200)]
    for code in codes:
        assert stdnum_uscc.is_valid(code) and len(code) == 18
        assert code.startswith("91310000") and C.uscc_has_valid_org_code(code)
    assert len(set(codes)) > 190
    for code in (new_uscc("12", "110105") for _ in range(20)):  # system randomness
        assert stdnum_uscc.is_valid(code) and code.startswith("12110105")
    assert new_uscc(rng=random.Random(1)) == new_uscc(rng=random.Random(1))


def test_org_code_check_matches_a_published_code() -> None:
    assert C.org_code_check_char("60003734") == "1"  # 91110000600037341L -> 60003734-1
    assert C.uscc_has_valid_org_code(BODY)
    assert not C.uscc_has_valid_org_code("91110000600037341M")


@pytest.mark.parametrize("args", [("9", "310000"), ("9A", "310000"), ("91", "31000"), ("91", "31000X")])
def test_new_uscc_rejects_bad_parameters(args: tuple[str, str]) -> None:
    with pytest.raises(ValueError):
        new_uscc(*args)


# --- metadata and states --------------------------------------------------------------------


def test_certificate_data_validation_names_bad_fields() -> None:
    cert_data().validate()
    cert_data(holder_code=BODY, holder_code_type="001", valid_to=None).validate()
    bad = cert_data(name=" ", holder_code="110105194912310021", issuer_code="x", valid_from=date(2031, 1, 1),
                    jurisdiction_code="31", extra={"x": float("nan")})
    with pytest.raises(ValidationFailed) as info:
        bad.validate()
    assert set(info.value.fields) == {"name", "holder_code", "issuer_code", "valid_to", "jurisdiction_code",
                                      "extra"}
    with pytest.raises(ValidationFailed) as info:
        cert_data(holder_code_type="999", issue_date=datetime(2025, 1, 2)).validate()
    assert set(info.value.fields) == {"holder_code_type", "issue_date"}


def test_certificate_data_dict_round_trip() -> None:
    data = cert_data(identifier=make_identifier(TYPE, ISSUER, 1))
    assert CertificateData.from_dict(json.loads(json.dumps(data.to_dict()))) == data
    with pytest.raises(ValidationFailed):
        CertificateData.from_dict({**data.to_dict(), "surprise": 1})
    with pytest.raises(ValidationFailed):
        CertificateData.from_dict({**data.to_dict(), "issue_date": "2025-13-01"})


def test_states_have_codes_and_chinese_labels() -> None:
    assert [s.value for s in CertState] == ["01", "02", "03", "04", "05"]
    assert CertState("05") is CertState.EXPIRED and CertState.EXPIRED.label == "过期"
    assert CertState.VALID.label == "有效" and CertState.REVOKED.label == "吊销"


def test_effective_state_expires_after_valid_to() -> None:
    data = cert_data(valid_to=date(2025, 6, 30))
    assert effective_state(data, date(2025, 6, 30)) is CertState.VALID  # last valid day
    assert effective_state(data, date(2025, 7, 1)) is CertState.EXPIRED
    assert effective_state(data, date(2025, 7, 1), "02") is CertState.EXPIRED
    assert effective_state(data, date(2025, 1, 1), "02") is CertState.SUSPENDED
    assert effective_state(data, date(2026, 1, 1), CertState.REVOKED) is CertState.REVOKED
    assert effective_state(cert_data(valid_to=None), date(2099, 1, 1)) is CertState.VALID


# --- signing and verification ---------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": ["张", None]}) == '{"a":["张",null],"b":1}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"x": float("inf")})


def test_sm2_sign_verify_round_trip_is_real_sm2() -> None:
    ring = KeyRing.generate_dev()
    signer = ring.active
    assert signer.algorithm == ALG_SM2 == "SM2-SM3" and "PRIVATE" not in repr(signer)
    signed = issue(cert_data(), serial="000001", signer=signer)
    assert is_valid_identifier(signed.identifier) and signed.data.identifier == signed.identifier
    assert signed.key_id == signer.key_id and signed.algorithm == ALG_SM2
    assert verify_certificate(signed, ring.verifier())
    assert ref_sm2_verify(signer.public_key_pem(), signed.signing_bytes(), base64.b64decode(signed.signature))
    assert not ref_sm2_verify(signer.public_key_pem(), signed.signing_bytes() + b" ",
                              base64.b64decode(signed.signature))
    with pytest.raises(ValueError):
        issue(signed.data, serial=2, signer=signer)  # already has an identifier


def test_tampered_certificates_fail() -> None:
    ring = KeyRing.generate_dev()
    signed = issue(cert_data(), serial=1, signer=ring.active)
    verifier = ring.verifier()
    sig = base64.b64decode(signed.signature)
    flipped = base64.b64encode(sig[:-1] + bytes([sig[-1] ^ 1])).decode()
    other_id = make_identifier(TYPE, ISSUER, 2)
    for bad in [
        replace(signed, data=replace(signed.data, holder_name="李四")),
        replace(signed, data=replace(signed.data, valid_to=date(2040, 1, 1))),
        replace(signed, data=replace(signed.data, extra={"优待类别": "80周岁以上"})),
        replace(signed, data=replace(signed.data, identifier=other_id)),
        replace(signed, signature=flipped),
        replace(signed, signature="not base64!"),
        replace(signed, signature=""),
        replace(signed, signature=base64.b64encode(b"\x30\x02\x01").decode()),  # malformed DER
        replace(signed, key_id="someone-else"),
        replace(signed, algorithm=ALG_ED25519),
    ]:
        assert not verify_certificate(bad, verifier)
    assert verify_certificate(signed, verifier)  # verifier still healthy after the garbage


def test_ed25519_alternative() -> None:
    ring = KeyRing.generate_dev(ALG_ED25519, key_id="2025-06-ed")
    signed = issue(cert_data(), serial=7, signer=ring.active)
    assert signed.algorithm == "Ed25519" and signed.key_id == "2025-06-ed"
    assert verify_certificate(signed, ring.verifier())
    public = load_pem_public_key(ring.active.public_key_pem().encode())  # plain cryptography
    public.verify(base64.b64decode(signed.signature), signed.signing_bytes())
    assert not verify_certificate(replace(signed, data=replace(signed.data, number="X")), ring.verifier())


def test_key_rotation_keeps_old_signatures_valid() -> None:
    ring = KeyRing.generate_dev(key_id="2025-01-sm2")
    old = issue(cert_data(), serial=1, signer=ring.active)
    new_signer = ring.rotate(key_id="2025-07-sm2")
    assert ring.active is new_signer and ring.signer("2025-01-sm2").key_id == "2025-01-sm2"
    new = issue(cert_data(), serial=2, signer=ring.active)
    assert new.key_id == "2025-07-sm2" and old.key_id == "2025-01-sm2"
    verifier = ring.verifier()
    assert verifier.key_ids == ["2025-01-sm2", "2025-07-sm2"]
    assert verify_certificate(old, verifier) and verify_certificate(new, verifier)
    assert not verify_certificate(replace(new, key_id=old.key_id), verifier)
    ring.rotate(ALG_ED25519, key_id="2026-01-ed")  # switching algorithm keeps the SM2 keys
    assert verify_certificate(old, ring.verifier())
    offline = Verifier.from_export(json.loads(json.dumps(verifier.export())))
    assert verify_certificate(old, offline) and verify_certificate(new, offline)
    with pytest.raises(KeyConfigError):
        ring.add(C.generate_signer(key_id="2025-01-sm2"))
    with pytest.raises(UnknownKey):
        ring.signer("nope")


def test_committed_signatures_still_verify() -> None:
    """Public keys and certificates signed once and committed: guards the signed byte format."""
    verifier = Verifier()  # the fixture folder holds public keys only
    for pem in sorted(FX.glob("*.pem")):
        verifier.add_pem(pem.stem, pem.read_text())
    legacy = json.loads((FX / "legacy_signed.json").read_text(encoding="utf-8"))
    for alg in (ALG_SM2, ALG_ED25519):
        signed = SignedCertificate.from_dict(legacy[alg]["signed"])
        assert signed.algorithm == alg and verify_certificate(signed, verifier)
        claims = verify_qr_token(legacy[alg]["qr_token"], verifier, now=legacy[alg]["qr_now"] + 10)
        assert claims.identifier == signed.identifier and claims.algorithm == alg
    assert not verify_certificate(replace(signed, data=replace(signed.data, holder_name="李四")), verifier)


def test_key_ring_loads_pem_directory(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    old = C.generate_signer(ALG_SM2, "2025-01-sm2")
    new = C.generate_signer(ALG_ED25519, "2025-07-ed")
    retired = C.generate_signer(ALG_SM2, "2024-01-sm2")
    for signer in (old, new):
        path = C.write_key_file(signer, keys)
        assert path.stat().st_mode & 0o777 == 0o600
    os.utime(keys / "2025-01-sm2.pem", (1_700_000_000, 1_700_000_000))
    os.utime(keys / "2025-07-ed.pem", (1_750_000_000, 1_750_000_000))
    (keys / "2024-01-sm2.pem").write_text(retired.public_key_pem())
    signed_by_retired = issue(cert_data(), serial=1, signer=retired)
    ring = KeyRing.load(keys)
    assert ring.active.key_id == "2025-07-ed" and ring.active.algorithm == ALG_ED25519
    assert ring.verifier().key_ids == ["2024-01-sm2", "2025-01-sm2", "2025-07-ed"]
    assert verify_certificate(signed_by_retired, ring.verifier())
    by_old = issue(cert_data(), serial=2, signer=ring.signer("2025-01-sm2"))
    assert verify_certificate(by_old, ring.verifier())
    assert KeyRing.load(keys, active="2025-01-sm2").active.key_id == "2025-01-sm2"
    env_ring = KeyRing.from_env({"GOVFLOW_CERT_KEY_DIR": str(keys), "GOVFLOW_CERT_ACTIVE_KEY": "2025-01-sm2"})
    assert env_ring.active.key_id == "2025-01-sm2"
    with pytest.raises(KeyConfigError):
        KeyRing.load(keys, active="missing")
    with pytest.raises(FileExistsError):
        C.write_key_file(old, keys)  # never overwrites
    (keys / "junk.pem").write_text("hello")
    with pytest.raises(KeyConfigError):
        KeyRing.load(keys)


def test_key_ring_configuration_errors(tmp_path: Path) -> None:
    from engine.config import PROJECT_ROOT

    with pytest.raises(KeyConfigError):
        C.write_key_file(C.generate_signer(), PROJECT_ROOT / "var" / "keys")
    with pytest.raises(KeyConfigError):
        KeyRing.load(tmp_path / "absent")
    with pytest.raises(KeyConfigError):
        KeyRing.load(tmp_path)  # no private key
    with pytest.raises(KeyConfigError):
        KeyRing.from_env({"GOVFLOW_ENV": "production"})
    dev = KeyRing.from_env({"GOVFLOW_CERT_ALGORITHM": "Ed25519"})
    assert dev.active.algorithm == ALG_ED25519 and dev.active.key_id.startswith("dev-ed25519-")
    with pytest.raises(KeyConfigError):
        C.generate_signer("RSA")
    with pytest.raises(KeyConfigError):
        C.generate_signer(key_id="../etc/passwd")
    with pytest.raises(KeyConfigError):
        C.PublicKey.from_pem("k", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(KeyConfigError):
        Verifier([C.generate_signer(key_id="k").public_key(), C.generate_signer(key_id="k").public_key()])


# --- QR tokens ------------------------------------------------------------------------------


@pytest.fixture
def qr_ring() -> KeyRing:
    return KeyRing.generate_dev(key_id="2025-qr-sm2")


def _token(ring: KeyRing, **over) -> tuple[str, str]:  # noqa: ANN003
    ident = make_identifier(TYPE, ISSUER, 99)
    args = dict(identifier=ident, status="01", issuer_code=ISSUER, issued_at=date(2025, 1, 2),
                expires_in_s=300, signer=ring.active, now=NOW)
    args.update(over)
    return make_qr_token(**args), ident


def _reencode(token: str, **claims) -> str:  # noqa: ANN003
    head, sig = token.split(".")
    payload = json.loads(b64url_decode(head))
    payload.update(claims)
    return b64url_encode(canonical_json(payload)) + "." + sig


def test_qr_token_valid_and_free_of_personal_data(qr_ring: KeyRing) -> None:
    token, ident = _token(qr_ring)
    assert len(token) < 512 and all(c.isalnum() or c in "-_." for c in token)
    claims = verify_qr_token(token, qr_ring.verifier(), now=NOW + timedelta(seconds=299))
    assert claims.identifier == ident and claims.status is CertState.VALID
    assert claims.issuer_code == ISSUER and claims.issue_date == date(2025, 1, 2)
    assert claims.expires_at - claims.issued_at == 300 and claims.issued_at == int(NOW.timestamp())
    assert claims.key_id == "2025-qr-sm2" and claims.algorithm == ALG_SM2
    payload = json.loads(b64url_decode(token.split(".")[0]))
    assert set(payload) == {"v", "cid", "st", "iss", "isd", "iat", "exp", "kid", "alg"}
    assert CITIZEN_ID not in token and "张三" not in b64url_decode(token.split(".")[0]).decode()
    ed = KeyRing.generate_dev(ALG_ED25519)
    ed_token, _ = _token(ed, status=CertState.SUSPENDED)
    assert verify_qr_token(ed_token, ed.verifier(), NOW).status is CertState.SUSPENDED


def test_qr_token_tampered_payload_or_signature(qr_ring: KeyRing) -> None:
    token, _ = _token(qr_ring)
    verifier = qr_ring.verifier()
    head, sig = token.split(".")
    raw_sig = b64url_decode(sig)
    bad_tokens = [
        _reencode(token, st="03"),
        _reencode(token, exp=int(NOW.timestamp()) + 10**6),
        _reencode(token, cid=make_identifier(TYPE, ISSUER, 100)),
        head + "." + b64url_encode(raw_sig[:-1] + bytes([raw_sig[-1] ^ 1])),
        head + "." + b64url_encode(raw_sig[:20]),
        head + "." + sig + "A",
        head + "." + sig + "=",
        head + "." + sig + ".x",
        head.upper() + "." + sig,
        head + sig, ".", "", "x" * 5000, None,
        b64url_encode(json.dumps(json.loads(b64url_decode(head)), indent=1).encode()) + "." + sig,
    ]
    for bad in bad_tokens:
        with pytest.raises(TokenInvalid):
            verify_qr_token(bad, verifier, now=NOW)
    assert verify_qr_token(token, verifier, now=NOW).identifier  # original still fine


def test_qr_token_expired(qr_ring: KeyRing) -> None:
    token, _ = _token(qr_ring, expires_in_s=60)
    with pytest.raises(TokenExpired) as info:
        verify_qr_token(token, qr_ring.verifier(), now=NOW + timedelta(seconds=60))
    assert info.value.code == "token_expired" and isinstance(info.value, GovflowError)
    with pytest.raises(TokenInvalid):  # forged and expired: reported as forged
        verify_qr_token(_reencode(token, st="02"), qr_ring.verifier(), now=NOW + timedelta(days=1))
    with pytest.raises(TokenInvalid):  # issued far in the future of this clock
        verify_qr_token(token, qr_ring.verifier(), now=NOW - timedelta(minutes=5))
    assert verify_qr_token(token, qr_ring.verifier(), now=NOW - timedelta(seconds=10))  # small skew


def test_qr_token_unknown_key(qr_ring: KeyRing) -> None:
    token, _ = _token(qr_ring)
    with pytest.raises(UnknownKey):
        verify_qr_token(token, KeyRing.generate_dev().verifier(), now=NOW)
    with pytest.raises(UnknownKey):
        verify_qr_token(_reencode(token, kid="2099-unknown"), qr_ring.verifier(), now=NOW)


def test_qr_token_refuses_alg_none_and_alg_confusion(qr_ring: KeyRing) -> None:
    token, _ = _token(qr_ring)
    verifier = qr_ring.verifier()
    none_head = _reencode(token, alg="none").split(".")[0]
    for forged in (none_head + ".", none_head + "." + token.split(".")[1]):
        with pytest.raises(TokenInvalid):
            verify_qr_token(forged, verifier, now=NOW)
    # An Ed25519 signature presented under the SM2 key's id must not pass either.
    ed = C.generate_signer(ALG_ED25519, "2025-qr-sm2")
    head = _reencode(token, alg=ALG_ED25519).split(".")[0]
    with pytest.raises(TokenInvalid):
        verify_qr_token(head + "." + b64url_encode(ed.sign(head.encode())), verifier, now=NOW)


def test_signed_but_inconsistent_content_is_refused(qr_ring: KeyRing) -> None:
    """Defence in depth: content we would never produce fails even with a good signature."""
    signer, verifier = qr_ring.active, qr_ring.verifier()
    token, ident = _token(qr_ring)
    claims = json.loads(b64url_decode(token.split(".")[0]))
    for over in [dict(iss=BODY), dict(v=2), dict(st="09"), dict(exp=claims["iat"]), dict(iat=True),
                 dict(cid="1.2.3"), dict(isd="yesterday")]:
        head = b64url_encode(canonical_json({**claims, **over}))
        with pytest.raises(TokenInvalid):
            verify_qr_token(head + "." + b64url_encode(signer.sign(head.encode())), verifier, now=NOW)
    signed = issue(cert_data(), serial=1, signer=signer)
    odd = replace(signed.data, type_code=BODY + "002")  # identifier no longer matches the type code
    raw_sig = signer.sign(C.signing_bytes(odd, signer.key_id, signer.algorithm))
    resigned = SignedCertificate(odd, base64.b64encode(raw_sig).decode(), signer.key_id, signer.algorithm)
    assert not verify_certificate(resigned, verifier)


def test_make_qr_token_checks_its_input(qr_ring: KeyRing) -> None:
    for over in [dict(issuer_code=BODY), dict(status="09"), dict(expires_in_s=0),
                 dict(expires_in_s=10**9), dict(identifier="1.2.3"), dict(now=datetime(2025, 1, 1))]:
        with pytest.raises((ValueError, TypeError)):
            _token(qr_ring, **over)


# --- storage --------------------------------------------------------------------------------


async def test_certificate_model_round_trip(db: str) -> None:
    from engine.certificates.store import (
        find_for_holder,
        record_use,
        set_state,
        signed_from_row,
        store_certificate,
    )
    from engine.store.certificate_models import Certificate, CertificateUse

    ring = KeyRing.generate_dev()
    holder_hash = hashlib.sha256(b"test-key" + CITIZEN_ID.encode()).hexdigest()
    signed = issue(cert_data(), serial=1, signer=ring.active)
    row = await store_certificate(signed, case_id=42, holder_code_hash=holder_hash,
                                  holder_code_masked="110***********002X", holder_code_enc="ciphertext-v1")
    older_data = cert_data(issue_date=date(2024, 1, 2), valid_from=date(2024, 1, 2),
                           valid_to=date(2024, 12, 31))
    older = issue(older_data, serial=2, signer=ring.active)
    await store_certificate(older, case_id=None, holder_code_hash=holder_hash,
                            holder_code_masked="110***********002X", holder_code_enc=None)

    loaded = await Certificate.get(identifier=signed.identifier)
    assert loaded.id == row.id and loaded.case_id == 42 and loaded.state == "01"
    assert loaded.valid_to == date(2030, 1, 1) and loaded.issue_date == date(2025, 1, 2)
    assert loaded.algorithm == ALG_SM2 and loaded.key_id == ring.active.key_id
    assert CITIZEN_ID not in json.dumps(loaded.data, ensure_ascii=False)
    assert all(CITIZEN_ID not in str(getattr(loaded, f)) for f in loaded._meta.fields_map)
    assert verify_certificate(signed_from_row(loaded, CITIZEN_ID), ring.verifier())
    assert not verify_certificate(signed_from_row(loaded, "110105194912310037"), ring.verifier())

    found = await find_for_holder(holder_hash, TYPE)
    assert [c.identifier for c in found] == [signed.identifier, older.identifier]
    found = await find_for_holder(holder_hash, TYPE, today=date(2025, 3, 1))
    assert [c.identifier for c in found] == [signed.identifier]
    assert await find_for_holder("0" * 64, TYPE) == []

    await set_state(signed.identifier, CertState.SUSPENDED)
    assert (await Certificate.get(id=row.id)).state == "02"
    assert await find_for_holder(holder_hash, TYPE, today=date(2025, 3, 1)) == []
    with pytest.raises(ValidationFailed):
        await set_state(signed.identifier, CertState.EXPIRED)
    await set_state(signed.identifier, "03")
    with pytest.raises(ValidationFailed):
        await set_state(signed.identifier, "01")
    with pytest.raises(NotFound):
        await set_state(make_identifier(TYPE, ISSUER, 999), "02")

    use = await record_use(loaded, department="RSJ", reason="办理养老待遇资格认证", case_no="GF2025-0001",
                           actor="clerk1")
    with pytest.raises(ValidationFailed):
        await record_use(loaded, department="RSJ", reason="  ")
    uses = await CertificateUse.filter(certificate_id=row.id).all()
    assert [(u.id, u.department, u.reason, u.case_no) for u in uses] == [
        (use.id, "RSJ", "办理养老待遇资格认证", "GF2025-0001")]

    with pytest.raises(IntegrityError):
        await store_certificate(signed, case_id=None, holder_code_hash=holder_hash,
                                holder_code_masked="110***********002X", holder_code_enc=None)
    with pytest.raises(ValueError):
        await store_certificate(issue(cert_data(), serial=3, signer=ring.active), case_id=None,
                                holder_code_hash=holder_hash, holder_code_masked=CITIZEN_ID,
                                holder_code_enc=None)


async def test_engine_record_writer_stores_inside_a_transaction(db: str) -> None:
    from tortoise.transactions import in_transaction

    from engine.certificates.store import (
        RECORD_KIND,
        certificate_record,
        signed_from_row,
        write_certificate_record,
    )
    from engine.store.certificate_models import Certificate

    ring = KeyRing.generate_dev(ALG_ED25519)
    signed = issue(cert_data(holder_code=BODY, holder_code_type="001"), serial=5, signer=ring.active)
    payload = certificate_record(signed, holder_code_hash="a" * 64, holder_code_masked="911**********341L",
                                 holder_code_enc=None)
    assert RECORD_KIND == "certificate"
    async with in_transaction() as conn:
        await write_certificate_record(conn, 7, json.loads(json.dumps(payload, ensure_ascii=False)))
    row = await Certificate.get(identifier=signed.identifier)
    assert row.case_id == 7 and row.holder_code_type == "001" and row.algorithm == ALG_ED25519
    assert verify_certificate(signed_from_row(row, BODY), ring.verifier())
    with pytest.raises(ValueError):
        certificate_record(signed, holder_code_hash=BODY, holder_code_masked="x", holder_code_enc=None)
