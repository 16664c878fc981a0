"""Regressions found by the API fuzzer (tests/security/test_fuzz_api.py), pinned as plain tests."""

from __future__ import annotations

import pytest

from tests.api.helpers import citizen_token, error_of, running_api


@pytest.mark.parametrize("path", ["/api/v1/certificates/{}", "/api/v1/certificates/{}/qrcode",
                                  "/api/v1/applications/{}", "/api/v1/applications/{}/events"])
async def test_ids_no_row_can_have_are_404_not_a_database_overflow(make_app, monkeypatch, path: str) -> None:
    async with running_api(make_app, monkeypatch) as api:
        token = await citizen_token(api, "dev-fuzz")
        for impossible in (2**31, 1780899026772531995475968, 0):
            error_of(await api.call("GET", path.format(impossible), token=token), 404, "not_found")
        assert (await api.call("GET", path.format(2**31 - 1), token=token)).status_code == 404  # the handler's own


async def test_405_names_the_allowed_methods_on_paths_with_parameters(make_app, monkeypatch) -> None:
    async with running_api(make_app, monkeypatch) as api:
        for path, allowed in [("/api/v1/applications/7", {"GET", "HEAD"}),
                              ("/api/v1/staff/tasks/abc/claim", {"POST"}),
                              ("/api/v1/applications", {"GET", "HEAD", "POST"})]:
            response = await api.client.request("DELETE", path)
            error_of(response, 405, "method_not_allowed")
            assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed, path


async def test_logout_documents_an_empty_204(make_app, monkeypatch) -> None:
    async with running_api(make_app, monkeypatch) as api:
        documented = (await api.spec())["paths"]["/api/v1/auth/logout"]["post"]["responses"]["204"]
        assert not documented.get("content")
        token = await citizen_token(api, "dev-bye")
        response = await api.call("POST", "/api/v1/auth/logout", token=token)
        assert response.status_code == 204 and response.content == b""
