"""E-certificates over real HTTP: the holder's list and detail (masked), refreshing QR codes that a
real decoder reads, public verification (valid, revoked, tampered, expired, unknown key), the
public keys with the offline script, rate limits and the data-access log.

The certificate is issued the way a citizen gets one: a 老年人优待证 application for 王建国 through
the app's ``ApplicationService`` (秒批 from the demo population registry). Every ``/api/v1``
answer is checked against the OpenAPI document (``tests.api.helpers.OpenApiClient``).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from sanic import Sanic

from engine.certificates.signing import CertState, KeyRing, make_qr_token
from engine.certificates.store import set_state
from engine.citizen.applications import Applicant
from engine.config import PROJECT_ROOT
from engine.store.certificate_models import Certificate
from engine.store.shared_models import DataAccessLog
from mobile_api.api.certificates import VERIFY_RULE
from mobile_api.auth import RATE_LIMITS, RateRule
from tests.api.helpers import OpenApiClient, decode_qr_png, decode_qr_svg, error_of, running_api

WANG_ID, WANG_NAME = "310104196103150273", "王建国"
FORM = {"phone": "13816612345", "address": {"region_code": "310104", "detail": "漕溪北路88弄3号602室"},
        "delivery": "mail"}
LIST, VERIFY, KEYS = "/api/v1/certificates", "/api/v1/certificates/verify", "/api/v1/certificates/keys"


@pytest.fixture
async def api(make_app: Callable[..., Sanic],
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch) as served:
        yield served


@dataclass
class Holder:
    token: str
    citizen_id: int
    certificate_id: int
    identifier: str


async def wang_with_a_senior_card(api: OpenApiClient, code: str = "dev-wang") -> Holder:
    """王建国 logs in, binds his real name and gets a 老年人优待证 (秒批) as the result of an application."""
    login = await api.login(code)
    token = login["access_token"]
    await api.bind_real_name(token, WANG_NAME, WANG_ID)
    started = await api.app.ctx.applications.apply(
        "senior-card", FORM, applicant=Applicant(id_number=WANG_ID, name=WANG_NAME, openid=code))
    assert started.status == "completed"
    [row] = await Certificate.filter(case_id=started.id)
    return Holder(token, login["citizen"]["id"], row.id, row.identifier)


async def qr_token(api: OpenApiClient, holder: Holder, fmt: str = "png") -> str:
    response = await api.call("GET", f"{LIST}/{holder.certificate_id}/qrcode", token=holder.token,
                              params={"format": fmt})
    assert response.status_code == 200, response.text
    [text] = decode_qr_png(response.content) if fmt == "png" else decode_qr_svg(response.text)
    return text


def tampered(token: str) -> str:
    head, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    claims["exp"] += 3600  # a longer life, same signature
    body = json.dumps(claims, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(body).rstrip(b"=").decode() + "." + signature


# --------------------------------------------------------------------------- the holder's view

async def test_holder_lists_and_reads_certificates_masked(api: OpenApiClient) -> None:
    holder = await wang_with_a_senior_card(api)
    listed = await api.call("GET", LIST, token=holder.token)
    assert listed.status_code == 200
    body = listed.json()
    assert body["total"] == 1 and body["real_name_bound"] is True
    [item] = body["items"]
    assert (item["id"], item["identifier"]) == (holder.certificate_id, holder.identifier)
    assert item["name"] == "老年人优待证"
    assert (item["state"], item["state_label"]) == ("01", "有效")
    assert (item["holder_name"], item["holder_code_masked"]) == ("王**", "310***********0273")
    assert (item["issuer_name"], item["holder_code_type_label"]) == ("上海市民政局", "居民身份证号码")

    detail = await api.call("GET", f"{LIST}/{holder.certificate_id}", token=holder.token)
    assert detail.status_code == 200
    assert {k: v for k, v in detail.json().items() if k in item} == item
    assert detail.json()["extra"]["birth_date"] == "1961-03-15" and detail.json()["algorithm"] == "SM2-SM3"

    await qr_token(api, holder)
    await qr_token(api, holder, "svg")
    assert WANG_ID not in api.all_text() and WANG_NAME not in api.all_text()  # in no header or body


async def test_unbound_and_other_citizens_see_none_of_it(api: OpenApiClient) -> None:
    holder = await wang_with_a_senior_card(api)
    other = (await api.login("dev-nosy"))["access_token"]
    empty = await api.call("GET", LIST, token=other)
    assert empty.json() == {"items": [], "total": 0, "real_name_bound": False}
    await api.bind_real_name(other, "张卫东", "110101195605100718")
    assert (await api.call("GET", LIST, token=other)).json()["real_name_bound"] is True
    mine = f"{LIST}/{holder.certificate_id}"
    for path in (mine, f"{mine}/qrcode", f"{LIST}/999999"):
        error_of(await api.call("GET", path, token=other), 404, "certificate_not_found")
    for path in (LIST, mine, f"{mine}/qrcode"):
        error_of(await api.call("GET", path), 401, "unauthorized")


async def test_qrcode_is_fresh_uncached_and_checks_format_and_state(api: OpenApiClient) -> None:
    holder = await wang_with_a_senior_card(api)
    url = f"{LIST}/{holder.certificate_id}/qrcode"
    png = await api.call("GET", url, token=holder.token)
    assert png.headers["content-type"] == "image/png" and png.headers["cache-control"] == "no-store"
    assert abs(int(png.headers["x-qr-expires-at"]) - (time.time() + 180)) < 10
    svg = await api.call("GET", url, token=holder.token, params={"format": "svg"})
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.headers["cache-control"] == "no-store"
    first, second = decode_qr_png(png.content)[0], decode_qr_svg(svg.text)[0]
    assert first != second  # a new token on every call
    for bad in ("gif", "PNG", ""):
        error = error_of(await api.call("GET", url, token=holder.token, params={"format": bad}), 422,
                         "validation_failed")
        assert set(error["fields"]) == {"format"}
    await set_state(holder.identifier, CertState.SUSPENDED)
    error_of(await api.call("GET", url, token=holder.token), 409, "certificate_not_valid")


# --------------------------------------------------------------------------- public verification

async def test_a_fresh_qr_verifies_and_is_logged(api: OpenApiClient) -> None:
    holder = await wang_with_a_senior_card(api)
    token = await qr_token(api, holder)
    answer = await api.call("POST", VERIFY, json={"token": token})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["valid"], body["state"], body["state_label"]) == (True, "01", "有效")
    assert body["certificate"] == {"name": "老年人优待证", "identifier": holder.identifier,
                                   "issuer_name": "上海市民政局", "issue_date": body["certificate"]["issue_date"],
                                   "valid_to": None, "holder_name": "王**",
                                   "holder_code_masked": "310***********0273"}
    assert body["token"]["algorithm"] == "SM2-SM3"
    assert body["token"]["key_id"] == api.app.ctx.engine.deps.keyring.active.key_id
    await api.app.ctx.access_log.flush()  # scans' access-log rows are written in batches
    [log] = await DataAccessLog.filter(dataset="certificate")
    assert log.purpose == "扫码核验" and log.subject_masked == "310***********0273"
    assert log.actor.startswith("ip:") and "127.0.0.1" not in log.actor
    assert log.subject_hash == (await Certificate.get(id=holder.certificate_id)).holder_code_hash

    signed_in = await api.call("POST", VERIFY, json={"token": token}, token=holder.token)
    assert signed_in.json()["valid"] is True
    await api.app.ctx.access_log.flush()
    actors = [row.actor for row in await DataAccessLog.filter(dataset="certificate").order_by("id")]
    assert actors == [log.actor, f"citizen:{holder.citizen_id}"]
    assert WANG_ID not in api.all_text()


@pytest.mark.parametrize(("change", "state", "label"), [("revoke", "03", "吊销"), ("suspend", "02", "暂停"),
                                                     ("expire", "05", "过期")])
async def test_a_certificate_no_longer_valid_fails_even_with_a_fresh_token(
        api: OpenApiClient, change: str, state: str, label: str) -> None:
    holder = await wang_with_a_senior_card(api)
    token = await qr_token(api, holder)
    if change == "expire":  # valid_to is the last valid day: yesterday's end makes it 05
        await Certificate.filter(id=holder.certificate_id).update(valid_to=date.today() - timedelta(days=2))
    else:
        await set_state(holder.identifier, CertState.REVOKED if change == "revoke" else CertState.SUSPENDED)
    body = (await api.call("POST", VERIFY, json={"token": token})).json()
    assert (body["valid"], body["state"], body["state_label"]) == (False, state, label)
    assert label in body["message"]
    await api.app.ctx.access_log.flush()
    assert await DataAccessLog.filter(dataset="certificate", purpose="扫码核验").count() == 1
    url = f"{LIST}/{holder.certificate_id}/qrcode"
    refused = error_of(await api.call("GET", url, token=holder.token), 409, "certificate_not_valid")
    assert label in refused["message"]
    listed = (await api.call("GET", LIST, token=holder.token)).json()["items"]
    assert [(c["state"], c["state_label"]) for c in listed] == [(state, label)]


async def test_bad_tokens_are_refused_with_signature_codes(api: OpenApiClient) -> None:
    holder = await wang_with_a_senior_card(api)
    token = await qr_token(api, holder)
    row = await Certificate.get(id=holder.certificate_id)
    signer = api.app.ctx.engine.deps.keyring.active
    expired = make_qr_token(row.identifier, "01", row.issuer_code, row.issue_date, 180, signer,
                            now=time.time() - 600)
    stranger = KeyRing.generate_dev().active
    unknown = make_qr_token(row.identifier, "01", row.issuer_code, row.issue_date, 180, stranger)
    cases = {"token_invalid": [tampered(token), token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB"),
                               "not-a-token", "a.b.c", token.replace(".", "")],
             "token_expired": [expired], "unknown_key": [unknown]}
    for code, tokens in cases.items():
        for bad in tokens:
            error_of(await api.call("POST", VERIFY, json={"token": bad}), 400, code)
    assert await DataAccessLog.filter(dataset="certificate").count() == 0  # no certificate was read


async def test_verify_body_is_validated(api: OpenApiClient) -> None:
    as_json = {"Content-Type": "application/json"}
    error_of(await api.call("POST", VERIFY, content=b"{not json", headers=as_json), 400, "invalid_json")
    error_of(await api.call("POST", VERIFY, content=b"token=x", headers={"Content-Type": "text/plain"}),
             415, "unsupported_media_type")
    for body in ({}, {"token": 7}, {"token": ""}, {"token": "x" * 1025}, {"other": "x"}):
        error = error_of(await api.call("POST", VERIFY, json=body), 422, "validation_failed")
        assert set(error["fields"]) == {"token"}
    error_of(await api.call("POST", VERIFY, json=["token"]), 422, "validation_failed")


async def test_verify_is_rate_limited_per_address(api: OpenApiClient,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RATE_LIMITS, VERIFY_RULE, RateRule(3, 60, "test"))
    for _ in range(3):
        error_of(await api.call("POST", VERIFY, json={"token": "a.b"}), 400, "token_invalid")
    limited = await api.call("POST", VERIFY, json={"token": "a.b"})
    error_of(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


# --------------------------------------------------------------------------- offline checks

def run_offline(keys_file: Path, token: str) -> tuple[int, dict]:
    script = PROJECT_ROOT / "docs" / "verify_offline.py"
    done = subprocess.run([sys.executable, str(script), str(keys_file), "-"], input=token, check=False,
                          capture_output=True, text=True, timeout=60, cwd="/")
    return done.returncode, json.loads(done.stdout) if done.stdout else {"stderr": done.stderr}


async def test_keys_let_a_verifier_check_tokens_offline(api: OpenApiClient, tmp_path: Path) -> None:
    holder = await wang_with_a_senior_card(api)
    token = await qr_token(api, holder)
    keys = await api.call("GET", KEYS)
    assert keys.status_code == 200 and "max-age" in keys.headers["cache-control"]
    body = keys.json()
    ring = api.app.ctx.engine.deps.keyring
    assert body["algorithm"] == "SM2-SM3" and body["active_key_id"] == ring.active.key_id
    assert [k["kid"] for k in body["keys"]] == ring.verifier().key_ids
    assert all(k["pem"].startswith("-----BEGIN PUBLIC KEY-----") for k in body["keys"])
    assert "PRIVATE" not in keys.text
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(keys.text, encoding="utf-8")

    status, verdict = run_offline(keys_file, token)
    assert status == 0 and verdict["valid"] is True, verdict
    claims = verdict["claims"]
    assert (claims["identifier"], claims["status"], claims["status_label"]) == (holder.identifier, "01", "有效")
    assert claims["expires_at"] - claims["issued_at"] == 180 and claims["key_id"] == ring.active.key_id
    status, verdict = run_offline(keys_file, tampered(token))
    assert (status, verdict["valid"], verdict["code"]) == (1, False, "token_invalid")
    other_key = KeyRing.generate_dev().active
    stranger = make_qr_token(holder.identifier, "01", claims["issuer_code"], None, 60, other_key)
    status, verdict = run_offline(keys_file, stranger)
    assert (status, verdict["code"]) == (1, "unknown_key")


# --------------------------------------------------------------------------- OpenAPI

async def test_certificate_routes_are_documented(api: OpenApiClient) -> None:
    spec = await api.spec()
    secured = {(f"{LIST}", "get"), (f"{LIST}/{{cert_id}}", "get"), (f"{LIST}/{{cert_id}}/qrcode", "get")}
    public = {(VERIFY, "post"), (KEYS, "get")}
    for path, method in secured | public:
        operation = spec["paths"][path][method]
        assert " / " in operation["summary"], path
        assert "200" in operation["responses"] and "503" in operation["responses"], path
        assert (operation.get("security") == [{"bearerAuth": []}]) is ((path, method) in secured), path
    verify = spec["paths"][VERIFY]["post"]
    assert "application/json" in verify["requestBody"]["content"]
    assert {"400", "415", "422", "429"} <= set(verify["responses"])
    qrcode = spec["paths"][f"{LIST}/{{cert_id}}/qrcode"]["get"]
    assert {"image/png", "image/svg+xml"} <= set(qrcode["responses"]["200"]["content"])
    assert {"404", "409", "422"} <= set(qrcode["responses"])
    [fmt] = [p for p in qrcode["parameters"] if p["name"] == "format"]
    assert fmt["in"] == "query" and fmt["schema"]["enum"] == ["png", "svg"]
