"""The whole citizen journey over real HTTP against a running server, on SQLite and on PostgreSQL +
Redis (the two passes of the suite): dev login → real-name binding → catalogue → apply for the
老年人优待证 as 王建国 → approved in about a second (the live status stream says 已办结) → the case's
certificate in the detail → the same certificate in 我的电子证照, its QR code read by a real decoder
and verified by the public endpoint → a rating.

Every ``/api/v1`` answer is checked against the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from sanic import Sanic

from tests.api.helpers import OpenApiClient, decode_qr_png, running_api, sse_events

WANG_NAME, WANG_ID = "王建国", "310104196103150273"
FORM = {"phone": "13816612345", "address": {"region_code": "310104", "detail": "漕溪北路88弄3号602室"},
        "delivery": "electronic"}


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch) as served:
        yield served


async def test_citizen_journey_from_login_to_a_verified_senior_card(api: OpenApiClient) -> None:
    # 1. log in with a development code; not yet real-name bound
    login = await api.login("dev-wangjianguo")
    token = login["access_token"]
    assert login["citizen"]["real_name_bound"] is False

    # 2. bind the real name
    me = await api.bind_real_name(token, WANG_NAME, WANG_ID)
    assert me["real_name_level"] == 2 and me["id_masked"] == "310***********0273"

    # 3. browse the catalogue and open the item with the token
    services = (await api.call("GET", "/api/v1/services")).json()["items"]
    assert "senior-card" in [s["slug"] for s in services]
    item = (await api.call("GET", "/api/v1/services/senior-card", token=token)).json()
    assert item["materials_personalised"] is True
    assert [f["name"] for f in item["form"]["fields"]] == ["phone", "address", "delivery"]

    # 4. apply (with an idempotency key, as the mini-program does)
    applied = await api.call("POST", "/api/v1/applications", token=token, json={"service": "senior-card", "form": FORM},
                             headers={"Idempotency-Key": uuid.uuid4().hex})
    assert applied.status_code == 201, applied.text
    case_id = applied.json()["id"]

    # 5. the live status stream reports 已办结 with no staff step (秒批); speed is measured in bench/journey.py
    async with api.client.stream("GET", f"/api/v1/applications/{case_id}/events",
                                 headers={"Authorization": f"Bearer {token}"}) as response:
        async def final_status() -> dict:
            async for event in sse_events(response):
                if event.get("event") == "status" and event["data"]["final"]:
                    return event["data"]
            raise AssertionError("the stream ended without a final status")
        status = await asyncio.wait_for(final_status(), 5)
    assert (status["status"], status["status_label"]) == ("completed", "已办结")

    # 6. the detail shows the decision, its reason and the certificate, masked
    detail = (await api.call("GET", f"/api/v1/applications/{case_id}", token=token)).json()
    assert detail["status_label"] == "已办结" and detail["result"]["outcome"] == "approved"
    assert detail["decision"]["reason"] == "申请人年满60周岁且为本市户籍，符合申领条件，自动准予"
    [certificate] = detail["certificates"]
    assert (certificate["name"], certificate["holder_name"], certificate["holder_code_masked"]) == (
        "老年人优待证", "王**", "310***********0273")
    listed = (await api.call("GET", "/api/v1/applications", token=token)).json()
    assert [c["id"] for c in listed["items"]] == [case_id]

    # 7. the same certificate in 我的电子证照; its QR code verifies on the public endpoint
    mine = (await api.call("GET", "/api/v1/certificates", token=token)).json()["items"]
    [held] = [c for c in mine if c["identifier"] == certificate["identifier"]]
    qr = await api.call("GET", f"/api/v1/certificates/{held['id']}/qrcode", token=token, params={"format": "png"})
    assert qr.status_code == 200 and qr.headers["content-type"] == "image/png"
    [qr_token] = decode_qr_png(qr.content)
    verified = (await api.call("POST", "/api/v1/certificates/verify", json={"token": qr_token})).json()
    assert verified["valid"] is True and verified["certificate"]["identifier"] == certificate["identifier"]

    # 8. rate the service
    rated = await api.call("POST", f"/api/v1/applications/{case_id}/evaluation", token=token,
                           json={"level": 1, "comment": "几秒钟就办好了"})
    assert rated.status_code == 201 and rated.json()["rectification_case_no"] is None
    assert WANG_ID not in api.all_text()
