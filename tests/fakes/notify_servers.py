"""Real local HTTP servers that speak the notification providers' APIs, for the worker's tests.

``FakeWeChatApi``: ``GET /sns/jscode2session`` (code ``ok-<x>`` → openid ``o-<x>``), ``POST /cgi-bin/stable_token`` and ``GET /cgi-bin/token`` (appid + secret →
``access_token``, ``expires_in``) and ``POST /cgi-bin/message/subscribe/send?access_token=`` (checks
the token and the body's shape: ``touser``, ``template_id``, ``page``, ``data: {kw: {value}}``).
``errcodes`` answers the next sends with those errcodes (-1, 45009, 43101, ...), in order;
``hold_s`` makes a send answer only after that long (it is recorded as received at once: for a
crash between send and mark, kill the client while it waits).

``FakeTencentSms``: ``POST /`` with ``X-TC-Action: SendSms`` (version 2021-01-11), checks the
TC3-HMAC-SHA256 signature with the secret key like Tencent Cloud does, and answers with a
``SendStatusSet``; ``codes`` answers the next sends with those status codes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

APPID, SECRET = "wx-notify-appid", "wx-notify-secret-never-logged"
SMS_SECRET_ID, SMS_SECRET_KEY, SMS_APP_ID = "AKIDfakeSecretId", "fake-sms-secret-key", "1400123456"


class _Server:
    name = "fake"

    def __init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                server.handle(self, "POST")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @staticmethod
    def answer(handler: BaseHTTPRequestHandler, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        raise NotImplementedError


@dataclass
class Sent:
    body: dict[str, Any]
    answer: int


class FakeWeChatApi(_Server):
    name = "fake-wechat-api"

    def __init__(self, *, expires_in: int = 7200) -> None:
        super().__init__()
        self.expires_in = expires_in
        self.errcodes: list[int] = []
        self.hold_s = 0.0
        self.tokens: list[str] = []
        self.sends: list[Sent] = []  # every subscribe/send received, with the errcode answered
        self.problems: list[str] = []
        self.received = threading.Event()

    @property
    def delivered(self) -> list[dict[str, Any]]:
        return [s.body for s in self.sends if s.answer == 0]

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self.problems.append(f"{url.path}: body is not JSON")
            self.answer(handler, {"errcode": 47001, "errmsg": "data format error"})
            return
        if url.path == "/sns/jscode2session":  # mini-program login: code ok-<x> → openid o-<x>
            code = query.get("js_code", "")
            if (query.get("appid"), query.get("secret")) != (APPID, SECRET) or not code.startswith("ok-"):
                self.answer(handler, {"errcode": 40029, "errmsg": "invalid code"})
                return
            self.answer(handler, {"openid": "o-" + code[3:], "session_key": "server-side-only"})
            return
        if url.path in ("/cgi-bin/stable_token", "/cgi-bin/token"):
            source = body if method == "POST" else query
            if (source.get("appid"), source.get("secret"), source.get("grant_type")) != (APPID, SECRET,
                                                                                        "client_credential"):
                self.answer(handler, {"errcode": 40013, "errmsg": "invalid appid"})
                return
            with self._lock:
                token = f"TOKEN-{len(self.tokens) + 1}"
                self.tokens.append(token)
            self.answer(handler, {"access_token": token, "expires_in": self.expires_in})
            return
        if url.path == "/cgi-bin/message/subscribe/send" and method == "POST":
            if not self.tokens or query.get("access_token") != self.tokens[-1]:
                self.answer(handler, {"errcode": 40001, "errmsg": "invalid credential"})
                return
            shape = (isinstance(body.get("touser"), str) and isinstance(body.get("template_id"), str)
                     and isinstance(body.get("data"), dict)
                     and all(isinstance(v, dict) and isinstance(v.get("value"), str) for v in body["data"].values()))
            if not shape:
                self.problems.append(f"bad subscribe/send body: {body}")
                self.answer(handler, {"errcode": 47003, "errmsg": "argument invalid"})
                return
            with self._lock:
                errcode = self.errcodes.pop(0) if self.errcodes else 0
                self.sends.append(Sent(body, errcode))
            self.received.set()
            if self.hold_s:
                time.sleep(self.hold_s)
            answer: dict[str, Any] = {"errcode": errcode, "errmsg": "ok" if errcode == 0 else "error"}
            if errcode == 0:
                answer["msgid"] = 3000000000 + len(self.sends)
            self.answer(handler, answer)
            return
        self.answer(handler, {"errcode": 404, "errmsg": "not found"}, status=404)


def _tc3_signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    def mac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    k = mac(mac(mac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return hmac.new(k, string_to_sign.encode(), hashlib.sha256).hexdigest()


class FakeTencentSms(_Server):
    name = "fake-tencent-sms"

    def __init__(self) -> None:
        super().__init__()
        self.codes: list[str] = []
        self.sends: list[Sent] = []
        self.answers: list[str] = []
        self.problems: list[str] = []

    @property
    def delivered(self) -> list[dict[str, Any]]:
        return [s.body for s, code in zip(self.sends, self.answers, strict=True) if code == "Ok"]

    def _error(self, handler: BaseHTTPRequestHandler, code: str, message: str) -> None:
        self.problems.append(f"{code}: {message}")
        self.answer(handler, {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": "req-err"}})

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = handler.headers
        if method != "POST" or headers.get("X-TC-Action") != "SendSms" or headers.get("X-TC-Version") != "2021-01-11":
            self._error(handler, "InvalidAction", "only SendSms 2021-01-11 here")
            return
        auth = headers.get("Authorization") or ""
        try:
            credential = auth.split("Credential=")[1].split(",")[0]
            secret_id, date, service, _ = credential.split("/")
            signature = auth.split("Signature=")[1]
        except (IndexError, ValueError):
            self._error(handler, "AuthFailure.SignatureFailure", "malformed Authorization")
            return
        canonical = "\n".join(["POST", "/", "", f"content-type:{headers.get('Content-Type')}\nhost:{headers.get('Host')}\n",
                               "content-type;host", hashlib.sha256(raw).hexdigest()])
        to_sign = "\n".join(["TC3-HMAC-SHA256", headers.get("X-TC-Timestamp") or "", f"{date}/{service}/tc3_request",
                             hashlib.sha256(canonical.encode()).hexdigest()])
        if secret_id != SMS_SECRET_ID or signature != _tc3_signature(SMS_SECRET_KEY, date, service, to_sign):
            self._error(handler, "AuthFailure.SignatureFailure", "signature does not match")
            return
        body = json.loads(raw)
        if body.get("SmsSdkAppId") != SMS_APP_ID or not body.get("PhoneNumberSet") or not body.get("TemplateId"):
            self._error(handler, "InvalidParameter", f"bad SendSms body {sorted(body)}")
            return
        with self._lock:
            code = self.codes.pop(0) if self.codes else "Ok"
            self.sends.append(Sent(body, 0 if code == "Ok" else 1))
            self.answers.append(code)
            serial = f"2433:{len(self.sends):010d}"
        self.answer(handler, {"Response": {"SendStatusSet": [{
            "SerialNo": serial, "PhoneNumber": body["PhoneNumberSet"][0], "Fee": 1,
            "SessionContext": body.get("SessionContext", ""), "Code": code,
            "Message": "send success" if code == "Ok" else "failed", "IsoCode": "CN"}],
            "RequestId": f"req-{len(self.sends)}"}})


def channel_settings(wechat: "FakeWeChatApi", sms: "FakeTencentSms") -> dict[str, str]:
    """The settings (without ``GOVFLOW_``) that point the WeChat and SMS channels at these fakes."""
    return {"WECHAT_APPID": APPID, "WECHAT_SECRET": SECRET, "WECHAT_API_BASE": wechat.url,
            "SMS_SECRET_ID": SMS_SECRET_ID, "SMS_SECRET_KEY": SMS_SECRET_KEY, "SMS_SDK_APP_ID": SMS_APP_ID,
            "SMS_SIGN_NAME": "某市政务服务", "SMS_ENDPOINT": sms.url}


__all__ = ["APPID", "SECRET", "channel_settings", "SMS_APP_ID", "SMS_SECRET_ID", "SMS_SECRET_KEY", "FakeTencentSms", "FakeWeChatApi"]
