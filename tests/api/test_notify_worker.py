"""``govflow worker`` (a real subprocess) delivers the outbox to local fakes of the WeChat and
Tencent Cloud SMS APIs: a 秒批 approval reaches the citizen's openid as exactly one subscribe
message after the fake answered errcode -1 once, and one SMS after a busy answer; the message
centre lists it. Crash (PostgreSQL): the worker killed -9 between send and mark and restarted —
the message is not lost and is sent at most once more (docs/notifications.md)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sanic import Sanic

from engine.store.notify_models import NotificationDelivery
from tests.api.helpers import OpenApiClient, running_api
from tests.api.test_applications_api import SENIOR, WANG
from tests.fakes.notify_servers import (
    FakeTencentSms,
    FakeWeChatApi,
    channel_settings,
)

ROOT = Path(__file__).resolve().parents[2]
FINISHED = "TPL_CASE_FINISHED"


@pytest.fixture
def wechat() -> Iterator[FakeWeChatApi]:
    with FakeWeChatApi() as fake:
        yield fake


@pytest.fixture
def sms() -> Iterator[FakeTencentSms]:
    with FakeTencentSms() as fake:
        yield fake


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch, wechat: FakeWeChatApi,
              sms: FakeTencentSms) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch, **channel_settings(wechat, sms)) as served:
        yield served


@contextmanager
def worker(settings: Any, wechat: FakeWeChatApi, sms: FakeTencentSms, **extra: str) -> Iterator[subprocess.Popen]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVFLOW_")}
    env.update({f"GOVFLOW_{k}": str(v) for k, v in channel_settings(wechat, sms).items()})
    env.update({"GOVFLOW_DATABASE_URL": settings.DATABASE_URL, "GOVFLOW_JOB_POLL_MS": "50",
                "GOVFLOW_NOTIFY_RETRY_BASE_S": "0.2", "GOVFLOW_AUDIT_ANCHOR_INTERVAL_S": "0",
                **{f"GOVFLOW_{k}": v for k, v in extra.items()}})
    proc = subprocess.Popen([sys.executable, "-m", "mobile_api.cli", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout:
            proc.stdout.close()


async def _until(check: Callable[[], Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def _statuses() -> dict[str, str]:
    return {d.channel: d.status for d in await NotificationDelivery.all()}


async def _citizen(api: OpenApiClient) -> str:
    token = (await api.login("ok-wang"))["access_token"]  # through the fake's jscode2session: openid o-wang
    await api.bind_real_name(token, *WANG)
    return str(token)


async def _approved_in_seconds(api: OpenApiClient, token: str) -> int:
    response = await api.call("POST", "/api/v1/applications", token=token,
                              json={"service": "senior-card", "form": SENIOR})
    assert response.status_code == 201 and response.json()["status"] == "completed", response.text
    return int(response.json()["id"])


async def test_worker_delivers_one_subscribe_message_and_one_sms_after_a_busy_answer(
        api: OpenApiClient, settings: Any, wechat: FakeWeChatApi, sms: FakeTencentSms) -> None:
    token = await _citizen(api)
    offered = (await api.call("GET", "/api/v1/me/subscriptions", token=token)).json()["items"]
    assert {i["template_id"]: i["accepted"] for i in offered}[FINISHED] is False
    answered = await api.call("POST", "/api/v1/me/subscriptions", token=token, json={"accept": [FINISHED]})
    assert {i["template_id"]: i["accepted"] for i in answered.json()["items"]}[FINISHED] is True
    case_id = await _approved_in_seconds(api, token)
    wechat.errcodes, sms.codes = [-1], ["InternalError.SystemBusy"]

    with worker(settings, wechat, sms) as proc:
        await _until(lambda: _sent_both())
        time.sleep(1.0)  # a few more passes: nothing is sent again
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    assert "notifications via wechat: on" in out and "notifications via sms: on" in out
    assert "13816612345" not in out

    assert [s.answer for s in wechat.sends] == [-1, 0] and wechat.problems == []
    [message] = wechat.delivered
    assert (message["touser"], message["template_id"]) == ("o-wang", FINISHED)
    assert message["page"] == f"pages/case/index?id={case_id}" and message["data"]["phrase3"]["value"] == "审批通过"
    assert sms.answers == ["InternalError.SystemBusy", "Ok"] and sms.problems == []
    [text] = sms.delivered
    assert text["PhoneNumberSet"] == ["+8613816612345"] and text["TemplateId"] == "2000005"
    rows = {d.channel: d for d in await NotificationDelivery.all()}
    assert (rows["wechat"].attempts, rows["sms"].attempts) == (2, 2)

    listed = (await api.call("GET", "/api/v1/me/messages", token=token)).json()
    assert listed["unread"] == 4
    assert [(i["kind"], i["case_id"], i["read"]) for i in listed["items"]] == [
        ("case_finished", case_id, False), ("certificate_issued", case_id, False), ("decision_made", case_id, False),
        ("application_received", case_id, False)]
    item = listed["items"][0]
    assert "自动准予" in item["body"]
    read = await api.call("POST", f"/api/v1/me/messages/{item['id']}/read", token=token)
    assert read.status_code == 200 and read.json()["read"] is True
    assert (await api.call("GET", "/api/v1/me/messages", token=token)).json()["unread"] == 3
    consents = (await api.call("GET", "/api/v1/me/subscriptions", token=token)).json()["items"]
    assert {i["template_id"]: i["accepted"] for i in consents}[FINISHED] is False  # the one accept was used

    metrics = (await api.client.get("/metrics")).text
    assert 'govflow_notification_deliveries{channel="wechat",status="sent"} 1.0' in metrics
    assert 'govflow_notification_delivery_attempts{channel="sms",status="sent"} 2.0' in metrics


async def _sent_both() -> bool:
    return await _statuses() == {"wechat": "sent", "sms": "sent"}


@pytest.mark.postgres
async def test_worker_killed_between_send_and_mark_sends_at_most_once_more(
        api: OpenApiClient, settings: Any, wechat: FakeWeChatApi, sms: FakeTencentSms) -> None:
    token = await _citizen(api)
    await api.call("POST", "/api/v1/me/subscriptions", token=token, json={"accept": [FINISHED]})
    case_id = await _approved_in_seconds(api, token)
    wechat.hold_s = 5.0  # WeChat has the message, the worker waits for the answer ...
    with worker(settings, wechat, sms, NOTIFY_CHANNELS="wechat", NOTIFY_LEASE_S="2") as first:
        await asyncio.to_thread(wechat.received.wait, 30)
        first.send_signal(signal.SIGKILL)  # ... and dies before it could mark the delivery sent
        first.wait(timeout=10)
    [row] = await NotificationDelivery.filter(channel="wechat")
    assert (row.status, row.attempts, row.uncertain) == ("sending", 1, False)
    assert len(wechat.sends) == 1

    wechat.hold_s = 0.0
    with worker(settings, wechat, sms, NOTIFY_CHANNELS="wechat", NOTIFY_LEASE_S="2"):
        await _until(lambda: _wechat_is("sent"))
        time.sleep(3.0)  # past another lease: still nothing more
    [row] = await NotificationDelivery.filter(channel="wechat")
    assert (row.status, row.attempts, row.uncertain) == ("sent", 2, True)
    assert len(wechat.sends) == 2 and all(s.body["touser"] == "o-wang" for s in wechat.sends)  # once more, not lost
    assert wechat.sends[0].body == wechat.sends[1].body
    listed = (await api.call("GET", "/api/v1/me/messages", token=token)).json()
    assert [i["kind"] for i in listed["items"]] == ["case_finished", "certificate_issued", "decision_made",
                                                    "application_received"]
    assert {i["case_id"] for i in listed["items"]} == {case_id}  # the message centre: each exactly once


async def _wechat_is(status: str) -> bool:
    return (await _statuses()).get("wechat") == status
