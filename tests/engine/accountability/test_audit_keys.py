"""Key rotation for accountability: personal data encrypted under an old PII key still decrypts
(identity columns, certificate holder codes, case state) and certificates signed by an old
signing key still verify after both keys rotated, with keys loaded from files and environment."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine import build_engine
from engine.accountability.privacy import PiiKeys, encrypt
from engine.certificates.keys import generate_signer
from engine.certificates.signing import (
    KeyRing,
    make_qr_token,
    verify_certificate,
    verify_qr_token,
    write_key_file,
)
from engine.certificates.store import signed_from_row
from engine.citizen import identity
from engine.config import Settings
from engine.errors import ModelError
from engine.store.certificate_models import Certificate
from engine.store.identity_models import Citizen
from tests.processes.conftest import Clock, application_service, cst
from tests.processes.test_senior_card import FORM, UNKNOWN, WANG

OLD, NEW = "11" * 32, "22" * 32
HOLDER = b"certificate.holder_code"


def test_pii_rotation_keeps_old_ciphertexts_readable(tmp_path: Path) -> None:
    before = PiiKeys.from_settings(SimpleNamespace(PII_KEY=OLD))
    assert before.key_id == "k0"
    tagged = before.encrypt("310104196103150273", context=b"c")
    legacy = encrypt("王建国", before.encryption_key, context=b"c")  # written before key ids existed
    assert tagged.startswith("v2:k0:") and legacy.startswith("v1:")

    after = PiiKeys.from_settings(SimpleNamespace(PII_KEY=f"k0:{OLD},k1:{NEW}"))
    assert after.key_id == "k1" and after.encryption_key != before.encryption_key
    assert after.decrypt(tagged, context=b"c") == "310104196103150273"
    assert after.decrypt(legacy, context=b"c") == "王建国"
    fresh = after.encrypt("13816612345", context=b"c")
    assert fresh.startswith("v2:k1:") and after.decrypt(fresh, context=b"c") == "13816612345"
    with pytest.raises(ValueError, match="unknown key id"):
        before.decrypt(fresh, context=b"c")  # the old deployment does not know k1
    with pytest.raises(ValueError):
        after.decrypt(fresh.replace("v2:k1:", "v2:k0:"), context=b"c")  # the key id is authenticated
    with pytest.raises(ValueError):
        after.decrypt(tagged, context=b"other column")
    # look-ups and audit anchors stay on the first key: rotation loses no index
    assert after.blind_index_key == before.blind_index_key and after.audit_key == before.audit_key

    key_file = tmp_path / "pii.keys"
    key_file.write_text(f"# oldest first\nk0 {OLD}\nk1:{NEW}  # rotated 2026-06\n", encoding="utf-8")
    from_file = PiiKeys.from_settings(SimpleNamespace(PII_KEY_FILE=str(key_file), PII_ACTIVE_KEY="k0"))
    assert from_file.key_id == "k0" and from_file.decrypt(fresh, context=b"c") == "13816612345"
    assert "11" * 8 not in repr(from_file)
    with pytest.raises(ValueError, match="PII_ACTIVE_KEY"):
        PiiKeys.from_settings(SimpleNamespace(PII_KEY=f"k0:{OLD},k1:{NEW}", PII_ACTIVE_KEY="k9"))
    with pytest.raises(ValueError, match="unique"):
        PiiKeys.from_settings(SimpleNamespace(PII_KEY=f"k0:{OLD},k0:{NEW}"))
    with pytest.raises(ValueError, match="GOVFLOW_PII_KEY_FILE"):
        PiiKeys.from_settings(SimpleNamespace(PII_KEY_FILE=str(tmp_path / "absent")))


async def test_rotating_both_keys_keeps_old_data_readable_and_old_certificates_valid(
        db: str, settings: Settings, tmp_path: Path) -> None:
    keys_dir = tmp_path / "cert-keys"
    write_key_file(generate_signer(key_id="2025-01-sm2"), keys_dir)
    os.utime(keys_dir / "2025-01-sm2.pem", (1_700_000_000, 1_700_000_000))
    old_settings = Settings(**{**vars(settings), "PII_KEY": OLD, "CERT_KEY_DIR": str(keys_dir)})
    old_engine = build_engine(old_settings, deps_overrides={"clock": Clock(cst(2026, 11, 30, 10, 0))})
    old_keys = PiiKeys.from_settings(old_settings)
    apps = application_service(old_engine, old_settings)
    approved = await apps.apply("senior-card", FORM, applicant=WANG)  # signed at once by 2025-01-sm2
    waiting = await apps.apply("senior-card", {**FORM, "phone": "13800138000"}, applicant=UNKNOWN)
    assert approved.status == "completed" and waiting.status == "running"
    citizen = await identity.login("openid-wang")
    citizen = await identity.bind_real_name(citizen, WANG.name, WANG.id_number, pii_keys=old_keys,
                                            verifier=identity.DevRealNameVerifier(env="development"))
    old_ring = old_engine.deps.keyring
    [old_cert] = await Certificate.filter(case_id=approved.id)
    token = make_qr_token(old_cert.identifier, old_cert.state, old_cert.issuer_code, old_cert.issue_date,
                          180, old_ring.active, now=1_800_000_000)

    # rotation: a new signing key file beside the old one, a new PII key after the old one
    write_key_file(generate_signer(key_id="2026-06-sm2"), keys_dir)
    new_settings = Settings(**{**vars(old_settings), "PII_KEY": f"k0:{OLD},k1:{NEW}"})
    new_engine = build_engine(new_settings, deps_overrides={"clock": Clock(cst(2026, 12, 1, 10, 0))})
    new_keys = PiiKeys.from_settings(new_settings)
    new_ring: KeyRing = new_engine.deps.keyring
    assert new_ring.active.key_id == "2026-06-sm2" and new_keys.key_id == "k1"

    # the case state sealed under the old key loads and moves on; it is re-sealed under the new one
    [task] = waiting.ready_tasks
    done = await new_engine.complete_task(task.id, {"review_approved": True, "review_opinion": "符合条件"},
                                          actor="mca01")
    assert done.status == "completed"
    with pytest.raises(ModelError):
        await old_engine.load(waiting.id)  # the old deployment cannot read what the new key sealed

    verifier = new_ring.verifier()
    [new_cert] = await Certificate.filter(case_id=waiting.id)
    assert (old_cert.key_id, new_cert.key_id) == ("2025-01-sm2", "2026-06-sm2")
    for row, holder in ((old_cert, WANG), (new_cert, UNKNOWN)):
        code = new_keys.decrypt(row.holder_code_enc, context=HOLDER)  # old and new ciphertexts
        assert code == holder.id_number
        assert verify_certificate(signed_from_row(row, code), verifier)
    assert verify_qr_token(token, verifier, now=1_800_000_010).identifier == old_cert.identifier

    # the identity bound under the old key decrypts, and is still found by its blind index
    stored = await Citizen.get(id=citizen.id)
    real = await identity.read_identity(stored, pii_keys=new_keys, actor="test", purpose="轮换后读取")
    assert (real.name, real.id_number) == (WANG.name, WANG.id_number)
    assert (await identity.find_by_id_number(WANG.id_number, pii_keys=new_keys)).id == citizen.id
