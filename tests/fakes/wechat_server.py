"""A real local HTTP server that speaks WeChat's ``GET /sns/jscode2session``.

It checks ``appid``, ``secret`` and ``grant_type`` like WeChat does and records every request.
The code decides the answer (a suffix after ``-`` keeps codes unique between tests):

    ok-<x>       {openid: "o-<x>", unionid: "u-<x>", session_key: SESSION_KEY_PREFIX + <x>}
    nounion-<x>  as ok, without unionid
    bad-<x>      {errcode: 40029}  invalid code
    used-<x>     {errcode: 40163}  code already used
    slow-<x>     {errcode: 45011}  rate limited
    risky-<x>    {errcode: 40226}  risky user
    busy-<x>     {errcode: -1}     system busy
    garbage-<x>  HTTP 200 with an HTML body
    http500-<x>  HTTP 500
    hang-<x>     answers only after ``hang_s`` (longer than the client's timeout)
    anything else: {errcode: 40029}

Use as ``with FakeWeChat() as wechat: ... wechat.url ...``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

APPID = "wx-fake-appid"
SECRET = "fake-app-secret-never-logged"
SESSION_KEY_PREFIX = "SESSIONKEY-must-stay-server-side-"
_ERRORS = {"bad": 40029, "used": 40163, "slow": 45011, "risky": 40226, "busy": -1}


@dataclass
class Recorded:
    path: str
    params: dict[str, str]
    client_port: int = 0  # the caller's source port: equal ports, one kept-alive connection


@dataclass
class FakeWeChat:
    appid: str = APPID
    secret: str = SECRET
    hang_s: float = 5.0
    requests: list[Recorded] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # protocol violations the client committed

    def __post_init__(self) -> None:
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # keep-alive, as WeChat's API does: a client that opened a connection per call would
            # pass here unnoticed otherwise (and bench/journey.py measured TCP set-up, not login)
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fake._handle(self)

            def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-wechat", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeWeChat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # let hanging handlers finish
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "FakeWeChat":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.requests.append(Recorded(parts.path, query, handler.client_address[1]))
        if parts.path != "/sns/jscode2session":
            self.problems.append(f"unexpected path {parts.path}")
            return _send(handler, 404, b"not found", "text/plain")
        problem = self._check(query)
        if problem:
            self.problems.append(problem)
            return _send_json(handler, {"errcode": 40013, "errmsg": problem})
        code = query["js_code"]
        kind, _, tail = code.partition("-")
        if kind in ("ok", "nounion"):
            body = {"openid": f"o-{tail}", "session_key": SESSION_KEY_PREFIX + tail}
            if kind == "ok":
                body["unionid"] = f"u-{tail}"
            return _send_json(handler, body)
        if kind == "garbage":
            return _send(handler, 200, b"<html>502 Bad Gateway</html>", "text/html")
        if kind == "http500":
            return _send(handler, 500, b"oops", "text/plain")
        if kind == "hang":
            self._release.wait(self.hang_s)
            return _send_json(handler, {"errcode": -1, "errmsg": "too late"})
        errcode = _ERRORS.get(kind, 40029)
        return _send_json(handler, {"errcode": errcode, "errmsg": f"fake error {errcode}, rid: 1234"})

    def _check(self, query: dict[str, str]) -> str | None:
        if query.get("appid") != self.appid:
            return "invalid appid"
        if query.get("secret") != self.secret:
            return "invalid secret"
        if query.get("grant_type") != "authorization_code":
            return "invalid grant_type"
        if not query.get("js_code"):
            return "missing js_code"
        return None


def _send_json(handler: BaseHTTPRequestHandler, body: dict[str, object]) -> None:
    # WeChat answers JSON as text/plain; the client must not depend on the content type
    _send(handler, 200, json.dumps(body).encode(), "text/plain")


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
        pass
