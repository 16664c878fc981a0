"""Delivering the outbox (engine.platform.notify.delivery) against local fakes of the WeChat and
Tencent Cloud SMS APIs: consent per template, retries with back-off, 43101 recorded and not
retried, the token cached and refreshed, the phone decrypted only at send time and masked in logs."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from typing import Any, Iterator

import pytest

from engine import build_engine
from engine.kernel.cases import CaseEngine
from engine.platform.notify import (
    answer_subscriptions,
    deliverer_from_settings,
    list_messages,
    subscriptions_of,
)
from engine.platform.notify.catalog import NotificationCatalog
from engine.platform.notify.channels import WeChatChannel
from engine.store.notify_models import NotificationDelivery, Subscription
from tests.fakes.notify_servers import (
    APPID,
    SECRET,
    SMS_APP_ID,
    FakeTencentSms,
    FakeWeChatApi,
    channel_settings,
)
from tests.processes.conftest import Clock, application_service
from tests.processes.test_senior_card import FORM, NOW, WANG

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
def on(settings: Any, wechat: FakeWeChatApi, sms: FakeTencentSms) -> Any:
    return dataclasses.replace(settings, **channel_settings(wechat, sms), NOTIFY_RETRY_BASE_S=30.0)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def live(db: str, on: Any, clock: Clock) -> CaseEngine:
    engine = build_engine(on)
    engine.deps.clock = clock
    return engine


def _catalog(settings: Any) -> NotificationCatalog:
    return NotificationCatalog.load(settings.PROCESSES_DIR / "notifications.yaml")


async def _approve(live: CaseEngine, on: Any) -> int:
    started = await application_service(live, on).apply("senior-card", FORM, applicant=WANG)
    assert started.status == "completed"
    return started.id


async def test_auto_approval_reaches_the_openid_once_after_a_busy_answer(
        live: CaseEngine, on: Any, clock: Clock, wechat: FakeWeChatApi, sms: FakeTencentSms,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await answer_subscriptions(WANG.openid, _catalog(on), {"accept": [FINISHED]}, clock())
    assert {i["template_id"]: i["accepted"] for i in (await subscriptions_of(WANG.openid, _catalog(on)))["items"]}[
        FINISHED] is True
    case_id = await _approve(live, on)
    deliverer = deliverer_from_settings(on, clock=clock, pii_keys=live.deps.pii_keys)
    sms.codes = ["InternalError.Timeout"]
    wechat.errcodes = [-1]
    try:
        assert await deliverer.run_due() == 2  # wechat and sms, both answered "try again"
        rows = {d.channel: d for d in await NotificationDelivery.all()}
        assert {c: (d.status, d.attempts, d.last_error) for c, d in rows.items()} == {
            "wechat": ("pending", 1, "errcode -1"), "sms": ("pending", 1, "InternalError.Timeout: failed")}
        assert rows["wechat"].next_at == clock() + timedelta(seconds=30)  # back-off: 30 s, then 60, 120 ...
        assert await deliverer.run_due() == 0  # not due yet
        clock.now += timedelta(seconds=31)
        assert await deliverer.run_due() == 2
        clock.now += timedelta(hours=1)
        assert await deliverer.run_due() == 0  # sent: never again
    finally:
        await deliverer.aclose()

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "subscribe/send?access_token=***" in logged and "TOKEN-1" not in logged and SECRET not in logged
    [message] = wechat.delivered
    assert len(wechat.sends) == 2 and wechat.problems == [] and len(wechat.tokens) == 1  # token cached
    assert message["touser"] == WANG.openid and message["template_id"] == FINISHED
    assert message["page"] == f"pages/case/index?id={case_id}"
    assert message["data"]["phrase3"] == {"value": "审批通过"} and len(message["data"]["thing4"]["value"]) <= 20
    [text] = sms.delivered
    assert sms.problems == [] and len(sms.sends) == 2
    assert text["PhoneNumberSet"] == ["+8613816612345"] and text["TemplateId"] == "2000005"
    assert text["TemplateParamSet"] == ["老年人优待证办理", "审批通过"] and text["SmsSdkAppId"] == SMS_APP_ID
    rows = {d.channel: d for d in await NotificationDelivery.all()}
    assert text["SessionContext"] == rows["sms"].delivery_key
    assert {c: (d.status, d.attempts) for c, d in rows.items()} == {"wechat": ("sent", 2), "sms": ("sent", 2)}
    assert rows["wechat"].provider_ref and rows["sms"].provider_ref.startswith("2433:")
    assert (await Subscription.get(openid=WANG.openid, template_id=FINISHED)).credits == 0  # one accept, one send
    listed = await list_messages("citizen", WANG.openid)
    assert [i["kind"] for i in listed["items"]] == ["case_finished", "certificate_issued", "decision_made",
                                                    "application_received"]
    assert listed["unread"] == 4 and {i["case_id"] for i in listed["items"]} == {case_id}
    # only the step's most significant message went out: one delivery per channel
    assert await NotificationDelivery.all().count() == 2


async def test_no_subscription_no_wechat_message_and_43101_is_not_retried(
        live: CaseEngine, on: Any, clock: Clock, wechat: FakeWeChatApi) -> None:
    deliverer = deliverer_from_settings(dataclasses.replace(on, NOTIFY_CHANNELS="wechat"), clock=clock,
                                        pii_keys=live.deps.pii_keys)
    try:
        await _approve(live, on)
        await deliverer.run_due()
        [skipped] = await NotificationDelivery.filter(channel="wechat")
        assert (skipped.status, skipped.last_error, wechat.sends) == ("skipped", "no_subscription", [])
        sms_row = await NotificationDelivery.get(channel="sms")
        assert (sms_row.status, sms_row.last_error) == ("skipped", "channel_off")

        await answer_subscriptions(WANG.openid, _catalog(on), {"accept": [FINISHED]}, clock())
        wechat.errcodes = [43101]
        await _approve(live, on)
        await deliverer.run_due()
        clock.now += timedelta(days=1)
        await deliverer.run_due()
        refused = await NotificationDelivery.filter(channel="wechat").order_by("-id").first()
        assert (refused.status, refused.attempts) == ("failed", 1)
        assert refused.last_error == "errcode 43101: user refused the subscription"
        assert len(wechat.sends) == 1
    finally:
        await deliverer.aclose()


async def test_retries_stop_after_max_attempts(live: CaseEngine, on: Any, clock: Clock, sms: FakeTencentSms) -> None:
    deliverer = deliverer_from_settings(dataclasses.replace(on, NOTIFY_CHANNELS="sms", NOTIFY_MAX_ATTEMPTS=3),
                                        clock=clock, pii_keys=live.deps.pii_keys)
    sms.codes = ["InternalError.SystemBusy"] * 5
    try:
        await _approve(live, on)
        for _ in range(5):
            await deliverer.run_due()
            clock.now += timedelta(minutes=10)
        row = await NotificationDelivery.get(channel="sms")
        assert (row.status, row.attempts) == ("failed", 3) and len(sms.sends) == 3
    finally:
        await deliverer.aclose()


async def test_sms_phone_is_masked_in_every_log_line(
        live: CaseEngine, on: Any, clock: Clock, sms: FakeTencentSms, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    deliverer = deliverer_from_settings(dataclasses.replace(on, NOTIFY_CHANNELS="sms"), clock=clock,
                                        pii_keys=live.deps.pii_keys)
    try:
        await _approve(live, on)
        await deliverer.run_due()
    finally:
        await deliverer.aclose()
    assert len(sms.delivered) == 1
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "138****2345" in logged  # the worker's own line names the masked number
    assert "13816612345" not in logged


async def test_wechat_token_is_refreshed_before_it_expires(on: Any, wechat: FakeWeChatApi) -> None:
    now = [1000.0]
    channel = WeChatChannel(wechat.url, APPID, SECRET, _catalog(on), clock=lambda: now[0])
    try:
        assert await channel.access_token() == "TOKEN-1"
        now[0] += 7200 - 301
        assert await channel.access_token() == "TOKEN-1"  # cached
        now[0] += 2  # within five minutes of expiry: refreshed early
        assert await channel.access_token() == "TOKEN-2"
        assert wechat.tokens == ["TOKEN-1", "TOKEN-2"]
    finally:
        await channel.aclose()
