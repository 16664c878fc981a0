"""The OpenAPI document is valid OpenAPI 3 and describes the ops endpoints; the UI is served."""

from __future__ import annotations

import httpx
from openapi_spec_validator import validate


async def test_openapi_document_is_valid_and_lists_ops(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    validate(spec)
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "govflow API"
    assert "政务服务" in spec["info"]["description"] and "Government" in spec["info"]["description"]
    for path in ("/health", "/ready", "/metrics"):
        assert "get" in spec["paths"][path], path
    ready = spec["paths"]["/ready"]["get"]["responses"]
    assert {"200", "503"} <= set(map(str, ready))


async def test_docs_ui_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "openapi.json" in response.text
