"""POST /api/v1/messages over real HTTP on both database passes: an external system with its key
(X-System-Key) delivers a message to the case waiting for it; without a key, with a wrong one or
with a person's token → 401 system_key_invalid; a malformed message → 422; an early message is
kept (kept: true) and the same id sent again is delivered once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sanic import Sanic

from engine.kernel.jobs import JobRunner
from engine.store.models import Case, CaseEvent
from tests.api.helpers import OpenApiClient, error_of, running_api
from tests.conftest import model_files

KEY = "psb-seal-system-key-0123456789abcdef"
M = "/api/v1/messages"


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch, SYSTEM_KEYS=f"psb_seal={KEY}") as served:
        yield served


async def _waiter(api: OpenApiClient, order_no: str) -> int:
    engine = api.app.ctx.engine
    definition = await engine.deploy(model_files("messages/waiter"))
    return (await engine.start_case(definition, service="waiter", data={"order_no": order_no})).id


def _send(api: OpenApiClient, body: dict, key: str | None = KEY, **kwargs: object):  # noqa: ANN202
    headers = {"X-System-Key": key} if key is not None else {}
    return api.call("POST", M, json=body, headers=headers, **kwargs)


async def test_a_system_delivers_a_message_to_the_waiting_case(api: OpenApiClient) -> None:
    case_id = await _waiter(api, "A-1")
    body = {"name": "order_done", "correlation": {"order_no": "A-1"}, "payload": {"status": "已刻制"}, "id": "psb-1"}
    error_of(await _send(api, body, key=None), 401, "system_key_invalid")
    error_of(await _send(api, body, key="wrong-key-0123456789abcdef0123456789"), 401, "system_key_invalid")
    assert (await Case.get(id=case_id)).status == "running"
    error_of(await _send(api, {"name": "", "correlation": [1]}), 422, "validation_failed")

    sent = await _send(api, body)
    assert sent.status_code == 202, sent.text
    assert sent.json() == {"message_id": "psb-1", "delivered": 1, "kept": False, "duplicate": False}
    assert (await Case.get(id=case_id)).status == "completed"
    [event] = await CaseEvent.filter(case_id=case_id, kind="message_received")
    assert event.actor == "system:psb_seal"

    again = await _send(api, body)
    assert again.status_code == 202 and again.json()["duplicate"] is True
    assert await CaseEvent.filter(case_id=case_id, kind="message_received").count() == 1


async def test_an_early_message_is_kept_until_the_case_waits(api: OpenApiClient) -> None:
    sent = await _send(api, {"name": "order_done", "correlation": {"order_no": "E-1"}, "payload": {"status": "先到"}})
    assert sent.status_code == 202 and sent.json()["kept"] is True and sent.json()["delivered"] == 0
    case_id = await _waiter(api, "E-1")
    await JobRunner(api.app.ctx.engine).run_due()
    assert (await Case.get(id=case_id)).status == "completed"
