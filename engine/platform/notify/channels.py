"""Outside channels behind one small interface: ``Channel.send(delivery) -> Outcome``.

``WeChatChannel``: mini-program subscribe messages (订阅消息). The access token comes from
``POST /cgi-bin/stable_token`` (appid + secret; several workers share it without invalidating each
other), is cached and refreshed five minutes before it expires (at once when WeChat says it is
invalid: 40001/42001). ``POST /cgi-bin/message/subscribe/send?access_token=...`` with ``touser``
(openid), ``template_id``, ``page``, ``data``. errcode 0 → sent; -1 (system busy) and 45009
(quota) → retried; 43101 (the user refused the subscription) → failed, not retried, recorded.

``SmsChannel``: Tencent Cloud SMS through its SDK (``tencentcloud-sdk-python-sms``, ``SendSms``
2021-01-11): the phone is decrypted here, at send time, and masked in every log line; the
delivery key travels as ``SessionContext`` so receipts can be matched. ``Code == "Ok"`` → sent;
throttling and internal errors → retried; a rejected number or template → failed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from engine.accountability.privacy import mask_phone, mask_text
from engine.platform.notify.catalog import NotificationCatalog
from engine.platform.notify.outbox import PHONE_CONTEXT

log = logging.getLogger("govflow.notify")

SENT, RETRY, FAILED = "sent", "retry", "failed"
TOKEN_MARGIN_S = 300  # refresh the access token this long before it expires
WECHAT_RETRY = {-1, 45009}  # system busy; quota reached
WECHAT_TOKEN_INVALID = {40001, 42001, 40014}
WECHAT_REFUSED = 43101  # the user refused (or used up) the subscription


@dataclass(frozen=True)
class Outcome:
    result: str  # sent | retry | failed
    error: str | None = None
    ref: str | None = None  # the provider's message id


@dataclass(frozen=True)
class Outgoing:
    """What a channel needs of a delivery: the notification's fields and, for SMS, the ciphertext address."""

    delivery_key: str
    event: str
    recipient: str
    title: str
    body: str
    data: dict[str, Any]
    page: str | None
    address_enc: str | None


class Channel(Protocol):
    name: str

    async def send(self, message: Outgoing) -> Outcome: ...
    async def aclose(self) -> None: ...


_E164_CN = re.compile(r"\+?86(1[3-9][0-9]{9})(?![0-9])")


def mask_all(text: str) -> str:
    """``mask_text`` that also catches numbers written ``+86138...`` (the SMS API's form)."""
    return mask_text(_E164_CN.sub(lambda m: "+86" + mask_phone(m.group(1)), text))


class _MaskPhones(logging.Filter):
    """Mask phone numbers (and ID numbers) in the SDK's own log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = mask_all(text)
        if masked != text:
            record.msg, record.args = masked, ()
        return True


_ACCESS_TOKEN = re.compile(r"(access_token=)[^&\s\"']+")


class _RedactToken(logging.Filter):
    """httpx logs each request URL: the WeChat access token travels in its query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "access_token=" in text:
            record.msg, record.args = _ACCESS_TOKEN.sub(r"\1***", text), ()
        return True


for _name in ("tencentcloud_sdk_common", "tencentcloud_sdk_common.http", "urllib3.connectionpool"):
    logging.getLogger(_name).addFilter(_MaskPhones())
logging.getLogger("httpx").addFilter(_RedactToken())


class WeChatChannel:
    name = "wechat"

    def __init__(self, base_url: str, appid: str, secret: str, catalog: NotificationCatalog, *,
                 timeout_s: float = 5, miniprogram_state: str = "formal", clock: Any = time.monotonic) -> None:
        self._appid, self._secret, self.catalog = appid, secret, catalog
        self._state = miniprogram_state
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s, trust_env=False,
                                       follow_redirects=False)
        self.token_fetches = 0

    def __repr__(self) -> str:  # never the secret or the token
        return f"WeChatChannel(base_url={str(self._http.base_url)!r}, appid={self._appid!r})"

    async def access_token(self, *, force: bool = False) -> str:
        async with self._lock:
            if not force and self._token and self._clock() < self._expires - TOKEN_MARGIN_S:
                return self._token
            response = await self._http.post("/cgi-bin/stable_token", json={
                "grant_type": "client_credential", "appid": self._appid, "secret": self._secret,
                "force_refresh": bool(force)})
            data = response.json() if response.status_code == 200 else {}
            token = data.get("access_token") if isinstance(data, dict) else None
            if not isinstance(token, str) or not token:
                raise _TokenUnavailable(f"stable_token errcode {data.get('errcode') if isinstance(data, dict) else None}")
            self.token_fetches += 1
            self._token, self._expires = token, self._clock() + float(data.get("expires_in") or 7200)
            return token

    async def send(self, message: Outgoing) -> Outcome:
        spec = self.catalog.get(message.event)
        if spec is None or spec.wechat is None:
            return Outcome(FAILED, "no_template")
        body = {"touser": message.recipient, "template_id": spec.wechat.template_id,
                "page": message.page or "", "data": spec.wechat.render(message.data),
                "miniprogram_state": self._state, "lang": "zh_CN"}
        try:
            for attempt in range(2):
                token = await self.access_token(force=attempt > 0)
                response = await self._http.post("/cgi-bin/message/subscribe/send", params={"access_token": token},
                                                  json=body)
                if response.status_code != 200:
                    return Outcome(RETRY, f"HTTP {response.status_code}")
                data = response.json()
                errcode = int(data.get("errcode") or 0)
                if errcode in WECHAT_TOKEN_INVALID and attempt == 0:
                    continue  # the token was revoked early: fetch a fresh one and try once more
                break
        except _TokenUnavailable as exc:
            return Outcome(RETRY, str(exc))
        except (httpx.HTTPError, ValueError) as exc:
            return Outcome(RETRY, type(exc).__name__)
        if errcode == 0:
            return Outcome(SENT, ref=str(data.get("msgid") or ""))
        error = f"errcode {errcode}"
        if errcode == WECHAT_REFUSED:
            return Outcome(FAILED, f"{error}: user refused the subscription")
        if errcode in WECHAT_RETRY or errcode in WECHAT_TOKEN_INVALID:
            return Outcome(RETRY, error)
        return Outcome(FAILED, error)  # 40003 bad openid, 40037 bad template, 47003 bad data: retrying cannot help

    async def aclose(self) -> None:
        await self._http.aclose()


class _TokenUnavailable(Exception):
    pass


SMS_RETRY_PREFIXES = ("InternalError", "RequestLimitExceeded", "LimitExceeded.AppDailyLimit", "ServerNetworkError",
                      "ClientNetworkError", "FailedOperation.TemplateIncorrectOrUnapproved.Busy")


class SmsChannel:
    """Tencent Cloud SMS (``SendSms``) through the official SDK, run off the event loop."""

    name = "sms"

    def __init__(self, *, secret_id: str, secret_key: str, sdk_app_id: str, sign_name: str, region: str,
                 catalog: NotificationCatalog, pii_keys: Any, endpoint: str = "", timeout_s: int = 10) -> None:
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111 import sms_client

        http = HttpProfile(reqTimeout=timeout_s)
        if endpoint:  # e.g. http://127.0.0.1:PORT for a local fake; default sms.tencentcloudapi.com
            scheme, _, host = endpoint.partition("://") if "://" in endpoint else ("https", "", endpoint)
            http.endpoint, http.protocol, http.scheme = host.rstrip("/"), scheme, scheme
        self._client = sms_client.SmsClient(credential.Credential(secret_id, secret_key), region,
                                            ClientProfile(httpProfile=http))
        self._app_id, self._sign = sdk_app_id, sign_name
        self.catalog, self.pii_keys = catalog, pii_keys

    def __repr__(self) -> str:
        return f"SmsChannel(app={self._app_id!r})"

    async def send(self, message: Outgoing) -> Outcome:
        spec = self.catalog.get(message.event)
        if spec is None or spec.sms is None or not message.address_enc:
            return Outcome(FAILED, "no_template_or_address")
        phone = self.pii_keys.decrypt(message.address_enc, context=PHONE_CONTEXT)  # only here, at send time
        number = phone if phone.startswith("+") else f"+86{phone}"
        params = spec.sms.render(message.data)
        outcome = await asyncio.to_thread(self._send, number, spec.sms.template_id, params, message.delivery_key)
        log.info("sms %s to %s: %s %s", message.delivery_key, mask_phone(phone), outcome.result, outcome.error or "")
        return outcome

    def _send(self, number: str, template_id: str, params: list[str], key: str) -> Outcome:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
        from tencentcloud.sms.v20210111 import models

        request = models.SendSmsRequest()
        request.PhoneNumberSet = [number]
        request.SmsSdkAppId = self._app_id
        request.SignName = self._sign
        request.TemplateId = template_id
        request.TemplateParamSet = params
        request.SessionContext = key
        try:
            response = self._client.SendSms(request)
        except TencentCloudSDKException as exc:
            code = str(exc.get_code() or "")
            retry = code.startswith(SMS_RETRY_PREFIXES) or not code
            return Outcome(RETRY if retry else FAILED, mask_all(f"{code}: {exc.get_message()}")[:250])
        statuses = response.SendStatusSet or []
        if not statuses:
            return Outcome(RETRY, "no SendStatusSet")
        status = statuses[0]
        if status.Code == "Ok":
            return Outcome(SENT, ref=status.SerialNo)
        code = str(status.Code or "")
        retry = code.startswith(SMS_RETRY_PREFIXES)
        return Outcome(RETRY if retry else FAILED, mask_all(f"{code}: {status.Message}")[:250])

    async def aclose(self) -> None:
        return None


def channels_from_settings(settings: Any, catalog: NotificationCatalog, pii_keys: Any) -> dict[str, Channel]:
    """The outside channels that are on (``engine.platform.notify.enabled_channels``), built."""
    from engine.platform.notify import enabled_channels

    on = enabled_channels(settings)
    channels: dict[str, Channel] = {}
    if "wechat" in on:
        channels["wechat"] = WeChatChannel(settings.WECHAT_API_BASE, settings.WECHAT_APPID, settings.WECHAT_SECRET,
                                           catalog, timeout_s=settings.WECHAT_TIMEOUT_MS / 1000,
                                           miniprogram_state=settings.NOTIFY_MINIPROGRAM_STATE)
    if "sms" in on:
        channels["sms"] = SmsChannel(secret_id=settings.SMS_SECRET_ID, secret_key=settings.SMS_SECRET_KEY,
                                     sdk_app_id=settings.SMS_SDK_APP_ID, sign_name=settings.SMS_SIGN_NAME,
                                     region=settings.SMS_REGION, catalog=catalog, pii_keys=pii_keys,
                                     endpoint=settings.SMS_ENDPOINT, timeout_s=settings.SMS_TIMEOUT_S)
    return channels


__all__ = ["FAILED", "RETRY", "SENT", "Channel", "Outcome", "Outgoing", "SmsChannel", "WeChatChannel",
           "channels_from_settings"]
