"""The OpenAPI document is the contract: every API route is in it, and ops answers match it."""

from __future__ import annotations

import re

from tests.api.helpers import running_api


async def test_every_api_route_is_documented_with_error_responses(make_app, monkeypatch) -> None:
    async with running_api(make_app, monkeypatch) as api:
        spec = await api.spec()
        documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
        missing, without_errors = [], []
        for route in api.app.router.routes:
            uri = "/" + route.path.lstrip("/")
            if not (uri.startswith("/api/") or uri in {"/health", "/ready", "/metrics"}):
                continue
            template = re.sub(r"<(\w+)(?::[^>]+)?>", r"{\1}", uri)
            for method in route.methods:
                if method in {"HEAD", "OPTIONS"}:
                    continue
                key = (template, method.lower())
                if key not in documented:
                    missing.append(key)
                    continue
                statuses = spec["paths"][template][method.lower()].get("responses", {})
                takes_input = method != "GET" or "{" in template  # a plain public list has no bad input
                if uri.startswith("/api/") and takes_input and not any(s.startswith("4") for s in statuses):
                    without_errors.append(key)
        assert not missing, f"routes missing from /docs/openapi.json: {missing}"
        assert not without_errors, f"API routes that document no 4xx answer: {without_errors}"


async def test_ops_answers_match_the_document(make_app, monkeypatch) -> None:
    async with running_api(make_app, monkeypatch) as api:
        assert (await api.call("GET", "/health")).json() == {"status": "ok"}
        ready = await api.call("GET", "/ready")
        assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
        metrics = await api.call("GET", "/metrics")
        assert metrics.status_code == 200 and "govflow" in metrics.text
