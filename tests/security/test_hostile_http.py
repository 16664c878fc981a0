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


async def test_a_retry_after_a_crash_finds_the_committed_case_instead_of_making_another(make_app, monkeypatch) -> None:
    """A process killed between committing a case and recording its answer leaves the key "pending"
    in Redis (or Redis forgets it); the retry must answer with that case, not start a second one."""
    import hashlib
    import json

    from engine.store.models import Case
    from tests.api.test_applications_api import STARTUP, WANG

    async with running_api(make_app, monkeypatch) as api:
        token = await citizen_token(api, "dev-wang", *WANG)
        me = (await api.call("GET", "/api/v1/me", token=token)).json()
        headers = {"Idempotency-Key": "crash-retry-1"}
        body = {"service": "business-startup", "form": STARTUP}
        first = await api.call("POST", "/api/v1/applications", token=token, headers=headers, json=body)
        assert first.status_code == 201, first.text
        kv = api.app.ctx.kv
        slot = f"idempotency:applications:{me['id']}:{hashlib.sha256(b'crash-retry-1').hexdigest()}"
        record = json.loads(await kv.get(slot))
        await kv.set(slot, json.dumps({"state": "pending", "fingerprint": record["fingerprint"]}), ex=120)
        stuck = await api.call("POST", "/api/v1/applications", token=token, headers=headers, json=body)
        assert (stuck.status_code, stuck.json()["id"]) == (200, first.json()["id"]), stuck.text
        assert stuck.headers["Idempotency-Replayed"] == "true"
        await kv.delete(slot)  # Redis restarted empty, or the pending mark expired
        forgotten = await api.call("POST", "/api/v1/applications", token=token, headers=headers, json=body)
        assert (forgotten.status_code, forgotten.json()["id"]) == (200, first.json()["id"]), forgotten.text
        assert await Case.all().count() == 1
        other = await api.call("POST", "/api/v1/applications", token=token, headers={"Idempotency-Key": "k2"},
                               json=body)
        assert other.status_code == 201 and await Case.all().count() == 2


@pytest.mark.parametrize("text", ["adm\u0000in", "\ud800", "ok\udfffok"])
async def test_text_no_database_can_store_is_a_400_not_a_500(make_app, monkeypatch, text: str) -> None:
    """U+0000 and lone surrogates (found by the fuzzer on PostgreSQL: a 500 at staff login)."""
    import json

    async with running_api(make_app, monkeypatch) as api:
        raw = json.dumps({"username": text, "password": "x"}).encode()  # \\u escapes, valid JSON text
        response = await api.call("POST", "/api/v1/staff/login", content=raw,
                                  headers={"Content-Type": "application/json"})
        error_of(response, 400, "invalid_json")
        nested = json.dumps({"code": "dev-a", "extra": [{"k": text}]}).encode()
        error_of(await api.call("POST", "/api/v1/auth/miniprogram", content=nested,
                                headers={"Content-Type": "application/json"}), 400, "invalid_json")
