"""Configuration fails closed (#17).

``GOVFLOW_ENV`` accepts exactly development, test and production after trimming and lower-casing;
anything else refuses to start naming the variable. Production has no development fallback for the
JWT secret, the PII key or the certificate signing key, refuses the public development ones even when
copied into the configuration, and takes no ``dev-`` logins. A staff token forged with the public
development JWT secret — accepted by a development server — is refused by a production one.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from sanic import Sanic

from engine.accountability.privacy import _DEV_KEY_SEED as DEV_PII_SEED  # noqa: F401 - the public seed
from engine.accountability.privacy import PiiKeys
from engine.certificates.keys import KeyConfigError, KeyRing, generate_signer, write_key_file
from engine.config import Settings, normalize_env
from engine.platform.seed import hash_password
from engine.store.models import StaffUser
from mobile_api.auth import _DEV_SECRET as DEV_JWT_SECRET  # noqa: F401 - the public secret, as an attacker has it
from mobile_api.auth import ALGORITHM, ISSUER, jwt_secret_from_settings
from mobile_api.cli import secret_problems
from tests.api.helpers import error_of, running_api

ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "production-test-jwt-secret-0123456789abcdef"
PII_KEY = "cd" * 32
DEV_PII_HEX = hashlib.sha256(DEV_PII_SEED).hexdigest()


@pytest.mark.parametrize("raw, env", [("production", "production"), ("Production", "production"),
                                      ("production ", "production"), (" PRODUCTION\n", "production"),
                                      ("Development", "development"), ("test", "test")])
def test_env_is_trimmed_and_lower_cased(raw: str, env: str) -> None:
    assert normalize_env(raw) == env
    assert Settings.from_env({"GOVFLOW_ENV": raw}).ENV == env


@pytest.mark.parametrize("raw", ["prod", "dev", "staging", "producton", "production1", "生产"])
def test_any_other_env_refuses_to_start(raw: str) -> None:
    with pytest.raises(ValueError, match="GOVFLOW_ENV"):
        Settings.from_env({"GOVFLOW_ENV": raw})


def _govflow(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GOVFLOW_")}
    return subprocess.run([sys.executable, "-m", "mobile_api.cli", *args], capture_output=True, text=True,
                          env={**clean, **env}, cwd=ROOT, timeout=60)


@pytest.mark.sqlite_only
def test_serve_in_production_without_secrets_exits_naming_each_variable(tmp_path: Path) -> None:
    db = f"sqlite://{tmp_path / 'x.sqlite3'}"
    for spelling in ("Production", "production "):
        done = _govflow("serve", "--port", "1", GOVFLOW_ENV=spelling, GOVFLOW_DATABASE_URL=db)
        assert done.returncode == 2, done.stdout + done.stderr
        for variable in ("GOVFLOW_JWT_SECRET", "GOVFLOW_PII_KEY", "GOVFLOW_CERT_KEY_DIR"):
            assert variable in done.stderr, (spelling, done.stderr)
        assert "Traceback" not in done.stderr and "serving" not in done.stdout
    typo = _govflow("serve", "--port", "1", GOVFLOW_ENV="prod", GOVFLOW_DATABASE_URL=db)
    assert typo.returncode == 2 and "GOVFLOW_ENV='prod'" in typo.stderr and "Traceback" not in typo.stderr
    worker = _govflow("worker", GOVFLOW_ENV="PRODUCTION", GOVFLOW_DATABASE_URL=db)
    assert worker.returncode == 2 and "GOVFLOW_JWT_SECRET" in worker.stderr


def test_production_refuses_the_development_secrets_even_when_copied(tmp_path: Path) -> None:
    dev_keys = tmp_path / "dev-keys"
    write_key_file(KeyRing.shared_dev().active, dev_keys)  # the public development signing key, as a file
    copied = Settings(ENV="production", JWT_SECRET=DEV_JWT_SECRET, PII_KEY=DEV_PII_HEX, CERT_KEY_DIR=str(dev_keys))
    problems = secret_problems(copied)
    assert len(problems) == 3, problems
    assert "GOVFLOW_JWT_SECRET" in problems[0] and "GOVFLOW_PII_KEY" in problems[1]
    assert "GOVFLOW_CERT_KEY_DIR" in problems[2] and "dev-sm2-shared" in problems[2]
    with pytest.raises(ValueError, match="public development"):
        jwt_secret_from_settings(copied)
    with pytest.raises(ValueError, match="public development PII key"):
        PiiKeys.from_settings(Settings(ENV="production", PII_KEY=f"old:{DEV_PII_HEX},new:{PII_KEY}"))
    with pytest.raises(KeyConfigError):
        KeyRing.from_env({"GOVFLOW_ENV": "Production", "GOVFLOW_CERT_KEY_DIR": str(dev_keys)})
    # development may use them (that is what they are for); production with its own keys starts
    assert secret_problems(Settings(ENV="development", JWT_SECRET=DEV_JWT_SECRET, PII_KEY=DEV_PII_HEX,
                                    CERT_KEY_DIR=str(dev_keys))) == []
    own_keys = tmp_path / "own-keys"
    write_key_file(generate_signer(), own_keys)
    assert secret_problems(Settings(ENV="production", JWT_SECRET=JWT_SECRET, PII_KEY=PII_KEY,
                                    CERT_KEY_DIR=str(own_keys))) == []


def _forged_staff_token(staff_id: int, secret: str) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": str(staff_id), "role": "staff", "iat": now, "exp": now + 600,
              "jti": uuid.uuid4().hex, "typ": "access", "fam": uuid.uuid4().hex}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


@pytest.mark.parametrize("env, accepted", [("development", True), ("production", False)])
async def test_staff_token_forged_with_the_development_secret(
        make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        env: str, accepted: bool) -> None:
    keys = tmp_path / "cert-keys"
    write_key_file(generate_signer(), keys)
    settings = ({"ENV": "production", "JWT_SECRET": JWT_SECRET, "PII_KEY": PII_KEY, "CERT_KEY_DIR": str(keys)}
                if env == "production" else {"ENV": "development", "JWT_SECRET": ""})
    async with running_api(make_app, monkeypatch, **settings) as api:
        officer = await StaffUser.create(username="samr01", name="samr01", password_hash=hash_password("x" * 12),
                                         departments=["samr"], roles=["officer"])
        forged = _forged_staff_token(officer.id, DEV_JWT_SECRET)
        answer = await api.call("GET", "/api/v1/staff/tasks", token=forged)
        if accepted:  # the hole the development secret is: anyone can be any officer
            assert answer.status_code == 200, answer.text
        else:
            error_of(answer, 401, "token_invalid")
            login = await api.call("POST", "/api/v1/auth/miniprogram", json={"code": "dev-alice"})
            error_of(login, 503, "wechat_not_configured")  # no dev- logins in production
