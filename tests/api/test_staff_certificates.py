"""Certificate lifecycle over real HTTP on both database passes: officers of the issuing department
(民政局 for the 老年人优待证) find a certificate by identifier or holder ID, suspend, restore and
revoke it with a reason; QR verification answers the new state at once; the holder sees it in the
app; other departments are refused; the history lists every change with who and why."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sanic import Sanic

from engine.store.shared_models import DataAccessLog
from tests.api.helpers import OpenApiClient, error_of, running_api, seed_staff
from tests.api.helpers import staff_login as token
from tests.api.test_certificates_api import LIST, VERIFY, WANG_ID, qr_token, wang_with_a_senior_card

S = "/api/v1/staff/certificates"
STAFF = {"mca01": (["mca"], ["officer"]), "psb01": (["psb"], ["officer"]), "clerk01": (["mca"], ["clerk"]),
         "admin": (["window"], ["admin"])}


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch) as served:
        await seed_staff(STAFF)
        yield served


async def _verify(api: OpenApiClient, qr: str) -> dict:
    answer = await api.call("POST", VERIFY, json={"token": qr})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_issuing_department_suspends_restores_and_revokes_and_verify_follows_at_once(
        api: OpenApiClient) -> None:
    holder = await wang_with_a_senior_card(api)
    qr = await qr_token(api, holder)  # scanned before and after each change: the same token
    assert (await _verify(api, qr))["valid"] is True
    mca, psb = await token(api, "mca01"), await token(api, "psb01")

    by_id = await api.call("GET", S, token=mca, params={"q": WANG_ID})
    assert by_id.status_code == 200, by_id.text
    [found] = by_id.json()["items"]
    assert (found["identifier"], found["department"], found["state"]) == (holder.identifier, "mca", "01")
    assert found["holder_code_masked"] == "310***********0273" and WANG_ID not in by_id.text
    assert await DataAccessLog.filter(actor="mca01", purpose="证照管理：按持证人查询").count() == 1
    assert (await api.call("GET", S, token=mca, params={"q": holder.identifier})).json()["items"][0]["id"] == found["id"]
    assert (await api.call("GET", S, token=psb, params={"q": WANG_ID})).json()["items"] == []  # not psb's
    error_of(await api.call("GET", f"{S}/{holder.certificate_id}", token=psb), 403, "not_issuing_department")
    error_of(await api.call("POST", f"{S}/{holder.certificate_id}/revoke", token=psb, json={"reason": "x"}), 403,
             "not_issuing_department")
    error_of(await api.call("POST", f"{S}/{holder.certificate_id}/suspend", token=await token(api, "clerk01"),
                            json={"reason": "x"}), 403, "forbidden_role")
    error_of(await api.call("POST", f"{S}/{holder.certificate_id}/suspend", token=mca, json={"reason": " "}), 422,
             "validation_failed")
    error_of(await api.call("POST", f"{S}/{holder.certificate_id}/restore", token=mca, json={"reason": "x"}), 409,
             "certificate_state_conflict")  # it is not suspended

    suspended = await api.call("POST", f"{S}/{holder.certificate_id}/suspend", token=mca, json={"reason": "核查户籍"})
    assert suspended.status_code == 200 and suspended.json()["state"] == "02", suspended.text
    answer = await _verify(api, qr)
    assert (answer["valid"], answer["state_label"]) == (False, "暂停")
    restored = await api.call("POST", f"{S}/{holder.certificate_id}/restore", token=mca, json={"reason": "核查无误"})
    assert restored.json()["state"] == "01" and (await _verify(api, qr))["valid"] is True

    revoked = await api.call("POST", f"{S}/{holder.certificate_id}/revoke", token=mca, json={"reason": "误发"})
    assert revoked.status_code == 200 and revoked.json()["state_label"] == "吊销"
    answer = await _verify(api, qr)
    assert (answer["valid"], answer["state"], answer["state_label"]) == (False, "03", "吊销")
    mine = (await api.call("GET", LIST, token=holder.token)).json()["items"]  # what /m/ shows the holder
    assert [(c["identifier"], c["state_label"]) for c in mine] == [(holder.identifier, "吊销")]
    inbox = (await api.call("GET", "/api/v1/me/messages", token=holder.token)).json()["items"]
    told = [m for m in inbox if m["kind"] == "certificate_state_changed"]  # newest first: revoke, restore, suspend
    assert [m["title"] for m in told] == ["电子证照状态变更"] * 3
    assert "吊销" in told[0]["body"] and "误发" in told[0]["body"] and "暂停" in told[2]["body"]
    error_of(await api.call("POST", f"{S}/{holder.certificate_id}/restore", token=mca, json={"reason": "x"}), 409,
             "certificate_state_conflict")  # revocation is final

    detail = await api.call("GET", f"{S}/{holder.certificate_id}", token=mca)
    assert detail.status_code == 200, detail.text
    history = [(h["kind"], h["actor"], h["from"], h["to"], h["reason"]) for h in detail.json()["history"]]
    assert history == [("certificate.issue", "system", None, "01", None),
                       ("certificate.state", "mca01", "01", "02", "核查户籍"),
                       ("certificate.state", "mca01", "02", "01", "核查无误"),
                       ("certificate.state", "mca01", "01", "03", "误发")]
    error_of(await api.call("GET", f"{S}/999999", token=mca), 404, "not_found")
    error_of(await api.call("GET", S, token=mca, params={"q": ""}), 422, "validation_failed")
    admin = await api.call("GET", S, token=await token(api, "admin"), params={"q": holder.identifier})
    assert len(admin.json()["items"]) == 1  # an admin sees every department's certificates
