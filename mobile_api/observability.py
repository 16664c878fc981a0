"""Request ids, structured JSON logs and Prometheus metrics for the API.

Every response carries ``X-Request-ID``: the caller's value when it is well-formed (so a
trace can cross nginx and the mini-program), a fresh one otherwise. The id is bound into
structlog's context, so every log line of the request names it. Metrics live in a registry of
their own per app, so that tests can build many apps in one process.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sanic import Sanic
from sanic.request import Request
from sanic.response import BaseHTTPResponse

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{7,127}")  # fullmatch: no trailing newline
UNMATCHED_ROUTE = "<unmatched>"

log = structlog.get_logger("govflow.api")


@dataclass
class Metrics:
    """The app's Prometheus collectors, registered in a registry of its own."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        self.requests = Counter(
            "govflow_http_requests", "HTTP requests answered, by route template and status.",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "govflow_http_request_duration_seconds", "Time from request received to response start.",
            ["method", "route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        # read from the outbox table at each scrape: the worker that sends is another process
        self.deliveries = Gauge(
            "govflow_notification_deliveries", "Notification deliveries by channel and status "
            "(pending, sending, sent, failed, skipped).", ["channel", "status"], registry=self.registry)
        self.delivery_attempts = Gauge(
            "govflow_notification_delivery_attempts", "Send attempts made, by channel and status of the delivery.",
            ["channel", "status"], registry=self.registry)

    def set_deliveries(self, counts: list[dict]) -> None:
        self.deliveries.clear()
        self.delivery_attempts.clear()
        for row in counts:
            self.deliveries.labels(row["channel"], row["status"]).set(row["count"])
            self.delivery_attempts.labels(row["channel"], row["status"]).set(row["attempts"])

    def render(self) -> tuple[bytes, str]:
        """Exposition text and its content type, for ``GET /metrics``."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def request_id_from(header: str | None) -> str:
    """The caller's id when it is 8-128 safe characters, else a new random one."""
    if header and _REQUEST_ID_RE.fullmatch(header):
        return header
    return uuid.uuid4().hex


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at emit time (pytest swaps it between tests)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _mask_personal_data(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Last line of defence: ID numbers and mobile numbers never reach a log line in clear,
    whatever a caller (or a library) put into the message or its fields."""
    from engine.accountability import mask_text

    return {key: _masked(value, mask_text) for key, value in event.items()}


def _masked(value: Any, mask_text: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _masked(v, mask_text) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(v, mask_text) for v in value]
    return value


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stdout — ours and Sanic's — with timestamp, level, logger and request id.

    Logging is process-wide: calling this again replaces the handler and sets the level.
    """
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *_SHARED_PROCESSORS,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = _StdoutHandler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED_PROCESSORS,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, _mask_personal_data,
                    structlog.processors.JSONRenderer(ensure_ascii=False)],
    ))
    handler._govflow = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_govflow", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(logging.getLevelName(level.upper()), int) else logging.INFO)


def _route_label(request: Request) -> str:
    """Route template (``/api/v1/applications/<id:int>``), never the raw path: bounded labels."""
    return request.uri_template or UNMATCHED_ROUTE


def _start(request: Request) -> None:
    """Idempotent: also runs for requests that failed before routing (404, 413)."""
    ctx = request.ctx
    if getattr(ctx, "request_id", None) is None:
        ctx.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        ctx.started = perf_counter()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=ctx.request_id)


def setup_observability(app: Sanic) -> None:
    """Request-id and metrics middleware; ``app.ctx.metrics`` must already exist."""
    metrics: Metrics = app.ctx.metrics

    async def start_request(request: Request) -> None:
        _start(request)

    counters: dict[tuple[str, str, int], Any] = {}  # the labelled children, looked up once each
    timers: dict[tuple[str, str], Any] = {}
    stdlib_log = logging.getLogger("govflow.api")

    async def finish_request(request: Request, response: BaseHTTPResponse) -> None:
        _start(request)
        ctx = request.ctx
        response.headers[REQUEST_ID_HEADER] = ctx.request_id
        route = _route_label(request)
        elapsed = perf_counter() - ctx.started
        method, status = request.method, response.status
        counter = counters.get((method, route, status))
        if counter is None:
            counter = counters[method, route, status] = metrics.requests.labels(method, route, str(status))
        counter.inc()
        timer = timers.get((method, route))
        if timer is None:
            timer = timers[method, route] = metrics.latency.labels(method, route)
        timer.observe(elapsed)
        if stdlib_log.isEnabledFor(logging.INFO):  # structlog builds the event before filtering it
            log.info("request", method=method, path=request.path, route=route,
                     status=status, duration_ms=round(elapsed * 1000, 2))

    # Request middleware runs in descending priority, response middleware in ascending:
    # 1000 makes these the first to see a request and the last to see its response.
    app.register_middleware(start_request, "request", priority=1000)
    app.register_middleware(finish_request, "response", priority=1000)


__all__ = ["REQUEST_ID_HEADER", "Metrics", "configure_logging", "request_id_from", "setup_observability"]
