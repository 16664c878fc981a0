"""Every staff task operation refuses the wrong caller the same way, on both database passes: no
token → 401, a citizen's token → 403 ``staff_only``, an officer of another department → 403
``forbidden_department`` — and none of them changes the task."""

from __future__ import annotations

from typing import Any

import pytest

from engine.store.models import CaseEvent, HumanTask
from tests.api import test_staff_api
from tests.api.helpers import OpenApiClient, citizen_token, error_of
from tests.api.test_applications_api import ACCEPT
from tests.api.test_staff_api import intake, staff_token

TASKS = "/api/v1/staff/tasks"
api = test_staff_api.api  # the served app with seeded staff
OPERATIONS: list[tuple[str, str, Any]] = [
    ("GET", "", None), ("POST", "/claim", None), ("POST", "/unclaim", None),
    ("POST", "/complete", {"data": ACCEPT}), ("POST", "/comment", {"text": "批注"}),
    ("POST", "/return", {"reason": "请补正"}), ("POST", "/return", {"reason": "退回", "to_step": "intake_check"}),
    ("POST", "/transfer", {"to": "samr02"}), ("POST", "/add-signer", {"user": "samr02", "position": "before"}),
    ("POST", "/sign", {"decision": "approve", "opinion": "同意"}), ("POST", "/withdraw", None),
]


@pytest.mark.parametrize(("method", "suffix", "body"), OPERATIONS,
                         ids=[f"{m} {s or '/'}{'+to_step' if b and 'to_step' in b else ''}" for m, s, b in OPERATIONS])
async def test_wrong_callers_are_refused(api: OpenApiClient, method: str, suffix: str, body: Any) -> None:
    task_id = await intake(api)
    path = f"{TASKS}/{task_id}{suffix}"
    kwargs = {"json": body} if body is not None else {}
    citizen = await citizen_token(api, "dev-li")
    psb = await staff_token(api, "psb01")
    error_of(await api.call(method, path, **kwargs), 401, "unauthorized")
    error_of(await api.call(method, path, token=citizen, **kwargs), 403, "staff_only")
    error_of(await api.call(method, path, token=psb, **kwargs), 403, "forbidden_department")
    row = await HumanTask.get(id=task_id)
    assert (row.state, row.assignee) == ("ready", None)
    assert await HumanTask.filter(case_id=row.case_id).count() == 1  # no side task was made
    assert not await CaseEvent.filter(case_id=row.case_id, actor="psb01").exists()
