"""Brute force and forged credentials over real HTTP: staff login lockout and its expiry, the
per-address limit, citizen token replay after logout, JWT ``alg`` confusion (an HMAC token keyed
with the service's own published public key, ``alg: none``, asymmetric algorithms, forged staff
roles), and certificate QR tokens signed with a key the service does not hold."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sanic import Sanic

from engine.certificates.keys import generate_signer
from engine.certificates.signing import make_qr_token
from engine.store.certificate_models import Certificate
from engine.store.models import StaffUser
from engine.workbench import staff as desk
from mobile_api.auth import RATE_LIMITS, RateRule
from tests.api.helpers import TEST_JWT_SECRET, OpenApiClient, citizen_token, error_of, running_api, seed_staff
from tests.api.test_applications_api import SENIOR, WANG

LOGIN = "/api/v1/staff/login"
PASSWORD = "brute force test password 42"


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch) as served:
        await seed_staff({username: (["samr"], ["officer"]) for username in ("samr01", "samr02")}, password=PASSWORD)
        yield served


async def login(api: OpenApiClient, username: str, password: str = PASSWORD) -> Any:
    return await api.call("POST", LOGIN, json={"username": username, "password": password})


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(sub: int, role: str) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": "govflow", "sub": str(sub), "role": role, "iat": now, "exp": now + 600,
            "jti": uuid.uuid4().hex, "typ": "access", "fam": uuid.uuid4().hex}


# --------------------------------------------------------------------------- staff login

async def test_lockout_refuses_even_the_right_password_spares_other_accounts_and_ends(api: OpenApiClient) -> None:
    for _ in range(desk.MAX_FAILURES - 1):
        error_of(await login(api, "samr01", "guess"), 401, "invalid_credentials")
    locked = await login(api, "samr01", "guess")
    error_of(locked, 429, "account_locked")
    assert int(locked.headers["Retry-After"]) >= 1
    error_of(await login(api, "samr01"), 429, "account_locked")  # the right password does not unlock it
    assert (await login(api, "samr02")).status_code == 200  # another account is not locked
    assert int(locked.headers["Retry-After"]) <= desk.LOCK_S
    # the lock is a key with a TTL of LOCK_S; expire it now instead of waiting 15 minutes
    kv = api.app.ctx.kv
    assert 0 < (await kv.ttl("staff:login:locked:samr01") or 0) <= desk.LOCK_S
    await kv.delete("staff:login:locked:samr01")
    assert (await login(api, "samr01")).status_code == 200


async def test_a_success_resets_the_failure_count(api: OpenApiClient) -> None:
    for _ in range(2):
        for _ in range(desk.MAX_FAILURES - 1):
            error_of(await login(api, "samr01", "guess"), 401, "invalid_credentials")
        assert (await login(api, "samr01")).status_code == 200


async def test_unknown_accounts_lock_too_so_names_cannot_be_told_apart(api: OpenApiClient) -> None:
    answers = []
    for name in ("samr02", "ghost"):
        for _ in range(desk.MAX_FAILURES):
            answers.append((name, (await login(api, name, "guess")).json()["error"]["code"]))
    codes = {name: [code for n, code in answers if n == name] for name in ("samr02", "ghost")}
    assert codes["samr02"] == codes["ghost"] == ["invalid_credentials"] * (desk.MAX_FAILURES - 1) + ["account_locked"]


async def test_one_address_guessing_many_accounts_is_rate_limited(api: OpenApiClient,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RATE_LIMITS, "staff_login_per_ip", RateRule(6, 60, "test"))
    statuses = [(await login(api, f"user{i}", "guess")).status_code for i in range(6)]
    assert statuses == [401] * 6
    limited = await login(api, "samr01")  # even right credentials, once the address is over its limit
    error_of(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


# --------------------------------------------------------------------------- replay after logout

async def test_tokens_of_a_logged_out_login_are_refused(api: OpenApiClient) -> None:
    pair = await api.login("dev-replay")
    other = await api.login("dev-replay")  # a second login of the same citizen (another phone)
    assert (await api.call("POST", "/api/v1/auth/logout", token=pair["access_token"])).status_code == 204
    for _ in range(2):  # replayed, again and again
        error_of(await api.call("GET", "/api/v1/me", token=pair["access_token"]), 401, "token_revoked")
        error_of(await api.call("POST", "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}),
                 401, "refresh_token_revoked")
    assert (await api.call("GET", "/api/v1/me", token=other["access_token"])).status_code == 200


# --------------------------------------------------------------------------- forged JWTs

async def test_alg_confusion_none_and_forged_roles_are_refused(api: OpenApiClient) -> None:
    staff = await StaffUser.get(username="samr01")
    keys = (await api.call("GET", "/api/v1/certificates/keys")).json()
    public_pem = keys["keys"][0]["pem"]
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    staff_claims = claims(staff.id, "staff")
    header_body = f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(staff_claims)}"
    forged = {
        # the classic confusion: HMAC keyed with the service's own public key (anyone can fetch it)
        "HS256 keyed with the published certificate key": jwt.api_jws.get_algorithm_by_name("HS256").sign(
            header_body.encode(), public_pem.encode()),
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(staff_claims)}.",
        "alg none, HS256 signature kept": f"{b64({'alg': 'none'})}.{b64(staff_claims)}.{b64(b'x' * 32)}",
        "RS256 with an attacker's key": jwt.encode(staff_claims, rsa_key, algorithm="RS256"),
        "ES256 with an attacker's key": jwt.encode(staff_claims, ec_key, algorithm="ES256"),
        "RS256 header, HMAC over it with the secret": None,
        "HS256 with a guessed secret": jwt.encode(staff_claims, "govflow" * 6, algorithm="HS256"),
        "right secret, no signature": f"{header_body}.",
    }
    rs_header = f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(staff_claims)}"
    forged["RS256 header, HMAC over it with the secret"] = rs_header + "." + b64(
        jwt.api_jws.get_algorithm_by_name("HS256").sign(rs_header.encode(), TEST_JWT_SECRET.encode()))
    forged["HS256 keyed with the published certificate key"] = header_body + "." + b64(
        forged["HS256 keyed with the published certificate key"])
    for name, token in forged.items():
        response = await api.call("GET", "/api/v1/staff/tasks", token=token)
        assert response.status_code == 401, (name, response.text)
        assert response.json()["error"]["code"] == "token_invalid", name
    # control: the same claims signed with the service's secret are accepted
    genuine = jwt.encode(staff_claims, TEST_JWT_SECRET, algorithm="HS256")
    assert (await api.call("GET", "/api/v1/staff/tasks", token=genuine)).status_code == 200
    # a citizen cannot turn their own token into a staff one: the role is signed
    citizen = await citizen_token(api, "dev-mallory")
    head, body, sig = citizen.split(".")
    promoted = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    promoted.update(role="staff", sub=str(staff.id))
    error_of(await api.call("GET", "/api/v1/staff/tasks", token=f"{head}.{b64(promoted)}.{sig}"), 401,
             "token_invalid")


# --------------------------------------------------------------------------- certificate QR tokens

async def test_qr_tokens_signed_with_unknown_or_spoofed_keys_are_refused(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang", *WANG)
    applied = await api.call("POST", "/api/v1/applications", token=token, json={"service": "senior-card",
                                                                                "form": SENIOR})
    assert applied.status_code == 201, applied.text
    [cert] = await Certificate.all()
    keyring = api.app.ctx.engine.deps.keyring
    genuine_signer = keyring.active

    def token_by(signer: Any) -> str:
        return make_qr_token(cert.identifier, "01", cert.issuer_code, cert.issue_date, 180, signer)

    verify = "/api/v1/certificates/verify"
    ok = await api.call("POST", verify, json={"token": token_by(genuine_signer)})
    assert ok.status_code == 200 and ok.json()["valid"] is True  # control
    rogue = generate_signer(genuine_signer.algorithm, key_id="rogue-key-1")
    error_of(await api.call("POST", verify, json={"token": token_by(rogue)}), 400, "unknown_key")
    # a rogue key that claims the genuine key id: the signature does not match
    impostor = generate_signer(genuine_signer.algorithm, key_id=genuine_signer.key_id)
    error_of(await api.call("POST", verify, json={"token": token_by(impostor)}), 400, "token_invalid")
    # the other algorithm under the genuine key id
    other_alg = "Ed25519" if genuine_signer.algorithm != "Ed25519" else "SM2-SM3"
    swapped = generate_signer(other_alg, key_id=genuine_signer.key_id)
    error_of(await api.call("POST", verify, json={"token": token_by(swapped)}), 400, "token_invalid")
    # a genuine token with one claim changed (status "revoked" → "valid" style edits)
    head, sig = token_by(genuine_signer).split(".")
    payload = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    payload["exp"] += 86400
    tampered = b64(json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
    error_of(await api.call("POST", verify, json={"token": f"{tampered}.{sig}"}), 400, "token_invalid")
