"""Authorization matrix: every API route × every role → the expected status, over real HTTP.

Routes come from the app's router, so a route added later and missing from ``MATRIX`` fails
``test_every_route_is_in_the_matrix`` until someone decides who may call it. The objects belong
to citizen A (王建国): a business-startup case whose first task waits in the samr (市场监管)
lane, and the senior-card certificate A got in seconds. Citizen B, an officer of another
department (psb), a window clerk, a samr supervisor, a designer and an admin each try every
route on A's objects; anonymous callers too. Requests carry well-formed bodies, so what is
tested is the authorization decision, not input validation. Rows run in ``MATRIX`` order; the
few that change state (claim, unclaim, withdraw, logout) are placed so later rows stay meaningful.

IDOR: B never sees A's case, its events, or A's certificate or QR code (404, as for an id that
does not exist, so ids cannot even be probed), and the other department's officer gets 403 on
A's task.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sanic import Sanic

from engine.platform.seed import hash_password
from engine.store.certificate_models import Certificate
from engine.store.models import HumanTask, StaffUser
from tests.api.helpers import OpenApiClient, citizen_token, running_api
from tests.api.test_applications_api import SENIOR, STARTUP, WANG

PASSWORD = "matrix password 0123456789"
ZHANG = ("李娜", "310110198606200486")
ROLES = ("anonymous", "citizen_a", "citizen_b", "clerk", "officer_other", "supervisor", "designer", "admin")
STAFF = {  # role -> (username, departments, roles)
    "clerk": ("clerk01", ["window"], ["clerk"]),
    "officer_other": ("psb01", ["psb"], ["officer"]),
    "supervisor": ("samr_sup", ["samr", "supervisor"], ["supervisor"]),
    "designer": ("designer01", ["window"], ["designer"]),
    "admin": ("admin", ["window"], ["admin"]),
}
OPS_ROUTES = {"/health", "/ready", "/metrics"}



def row(default: int, **by_role: int) -> dict[str, int]:
    """Expected status per role: ``default`` for every role not named."""
    unknown = set(by_role) - set(ROLES)
    assert not unknown, unknown
    return {role: by_role.get(role, default) for role in ROLES}


def citizen_only(a: int, b: int = 404) -> dict[str, int]:
    """A citizen endpoint on A's object: A gets ``a``, B ``b``, staff 403, anonymous 401."""
    return row(403, anonymous=401, citizen_a=a, citizen_b=b)


def staff_task(supervisor: int, *, citizens: int = 403) -> dict[str, int]:
    """A staff endpoint on the samr task: only the samr supervisor reaches it; clerk (window), the
    psb officer and admin (window) are in other departments; a designer has no task role."""
    return row(403, anonymous=401, citizen_a=citizens, citizen_b=citizens, supervisor=supervisor)


PUBLIC_200 = row(200)


def designer_read(status: int) -> dict[str, int]:
    """Designer lists, XML and heat-map: designers, admins and supervisors read; other staff 403."""
    return row(403, anonymous=401, supervisor=status, designer=status, admin=status)


def designer_write(status: int) -> dict[str, int]:
    """Validate, deploy, migrate: designers and admins only (a supervisor reads but does not deploy)."""
    return row(403, anonymous=401, designer=status, admin=status)


# (method, route template) -> (request: path params filled from the fixture, json body) and statuses
MATRIX: dict[tuple[str, str], tuple[dict[str, Any], dict[str, int]]] = {
    ("GET", "/health"): ({}, PUBLIC_200),
    ("GET", "/ready"): ({}, PUBLIC_200),
    ("GET", "/metrics"): ({}, PUBLIC_200),
    ("GET", "/api/v1/services"): ({}, PUBLIC_200),
    ("GET", "/api/v1/services/{slug}"): ({}, PUBLIC_200),
    ("POST", "/api/v1/auth/miniprogram"): ({"json": {"code": ""}}, row(422)),
    ("POST", "/api/v1/auth/refresh"): ({"json": {"refresh_token": "x" * 43}}, row(401)),
    ("GET", "/api/v1/me"): ({}, row(403, anonymous=401, citizen_a=200, citizen_b=200)),
    ("GET", "/api/v1/me/access-log"): ({}, row(403, anonymous=401, citizen_a=200, citizen_b=200)),
    ("POST", "/api/v1/me/real-name"): ({"json": {"name": ZHANG[0], "id_number": "110101199003071234"}},
                                       row(403, anonymous=401, citizen_a=422, citizen_b=422)),
    ("POST", "/api/v1/staff/login"): ({"json": lambda role: {"username": f"nobody-{role}", "password": "wrong"}},
                                      row(401)),
    ("GET", "/api/v1/applications"): ({}, row(403, anonymous=401, citizen_a=200, citizen_b=200)),
    ("POST", "/api/v1/applications"): ({"json": {"service": "no-such-service", "form": {}}},
                                       row(403, anonymous=401, citizen_a=404, citizen_b=404)),
    ("GET", "/api/v1/applications/{case_id}"): ({}, citizen_only(200)),
    ("GET", "/api/v1/applications/{case_id}/events"): ({"stream": True}, citizen_only(200)),
    ("POST", "/api/v1/applications/{case_id}/supplement"): ({"json": {"data": {}}}, citizen_only(409)),
    ("POST", "/api/v1/applications/{case_id}/review-request"): ({"json": {"reason": "请复核"}},
                                                                citizen_only(409)),
    ("POST", "/api/v1/applications/{case_id}/evaluation"): ({"json": {"level": 5}}, citizen_only(409)),
    ("GET", "/api/v1/certificates"): ({}, row(403, anonymous=401, citizen_a=200, citizen_b=200)),
    ("GET", "/api/v1/certificates/{cert_id}"): ({}, citizen_only(200)),
    ("GET", "/api/v1/certificates/{cert_id}/qrcode"): ({}, citizen_only(200)),
    ("GET", "/api/v1/certificates/keys"): ({}, PUBLIC_200),
    ("POST", "/api/v1/certificates/verify"): ({"json": {"token": "x.y"}}, row(400)),
    # 证照管理: officers, supervisors and admins; only the issuing department (mca here) or an admin sees one
    ("GET", "/api/v1/staff/certificates"): ({}, row(403, anonymous=401, officer_other=422, supervisor=422,
                                                    admin=422)),  # no q
    ("GET", "/api/v1/staff/certificates/{cert_id}"): ({}, row(403, anonymous=401, admin=200)),
    **{("POST", f"/api/v1/staff/certificates/{{cert_id}}/{action}"): (  # an empty reason: nothing changes
        {"json": {"reason": ""}}, row(403, anonymous=401, officer_other=422, supervisor=422, admin=422))
       for action in ("suspend", "revoke", "restore")},
    # a system credential (X-System-Key), never a person's token: every role here has none
    ("POST", "/api/v1/messages"): ({"json": {"name": "seal_engraved"}}, row(401)),
    ("GET", "/api/v1/admin/verifiers"): ({}, row(403, anonymous=401, admin=200)),
    ("POST", "/api/v1/admin/verifiers"): ({"json": {"name": ""}}, row(403, anonymous=401, admin=422)),
    ("POST", "/api/v1/admin/verifiers/{verifier_id}/disable"): ({}, row(403, anonymous=401, admin=404)),  # none
    ("POST", "/api/v1/staff/applications"): ({"multipart": True},
                                             row(403, anonymous=401, clerk=404, admin=404)),
    ("GET", "/api/v1/staff/tasks"): ({}, row(403, anonymous=401, clerk=200, officer_other=200, supervisor=200,
                                             admin=200)),
    ("GET", "/api/v1/staff/tasks/{task_id}"): ({}, staff_task(200)),
    ("POST", "/api/v1/staff/tasks/{task_id}/comment"): ({"json": {"text": "已阅"}}, staff_task(201)),
    ("POST", "/api/v1/staff/tasks/{task_id}/transfer"): ({"json": {"to": "nobody"}}, staff_task(404)),  # no such colleague
    ("POST", "/api/v1/staff/tasks/{task_id}/add-signer"): (
        {"json": {"user": "nobody", "position": "after"}}, staff_task(404)),
    ("POST", "/api/v1/staff/tasks/{task_id}/return"): ({"json": {"reason": "退回", "to_step": "nowhere"}},
                                                      staff_task(409)),
    ("POST", "/api/v1/staff/tasks/{task_id}/complete"): ({"json": {"data": {"intake_accepted": "?"}}},
                                                        staff_task(422)),
    ("POST", "/api/v1/staff/tasks/{task_id}/withdraw"): ({"json": {"reason": "撤回"}}, staff_task(409)),
    ("POST", "/api/v1/staff/tasks/{task_id}/claim"): ({}, staff_task(200)),  # the supervisor now holds it
    ("POST", "/api/v1/staff/tasks/{task_id}/unclaim"): ({}, staff_task(200)),
    ("POST", "/api/v1/staff/tasks/{task_id}/sign"): ({"json": {"decision": "approve", "opinion": "同意"}},
                                                    staff_task(409)),  # not an added-signer task
    # files (#15): A's upload, attached to the samr case as its 公司章程
    ("POST", "/api/v1/uploads"): ({"json": {"file": "not multipart"}},
                                  row(403, anonymous=401, citizen_a=415, citizen_b=415)),
    ("GET", "/api/v1/uploads/{upload_id}"): ({}, citizen_only(200)),
    ("GET", "/api/v1/uploads/{upload_id}/content"): ({}, citizen_only(200)),
    ("GET", "/api/v1/staff/files/{file_id}"): ({}, staff_task(200)),  # the case's departments only
    ("POST", "/api/v1/staff/tasks/{task_id}/reveal"): ({"json": {"field": "legal_representative.id_number"}},
                                                      staff_task(200)),
    ("GET", "/api/v1/staff/cases"): ({}, row(403, anonymous=401, clerk=422, officer_other=422, supervisor=422,
                                             admin=422)),  # no query: refused after the role check
    ("GET", "/api/v1/staff/cases/{case_id}/receipt"): ({}, row(403, anonymous=401, clerk=200, supervisor=200,
                                                               admin=200)),  # window desk or the case's department
    ("GET", "/api/v1/designer/departments"): ({}, designer_read(200)),
    ("GET", "/api/v1/designer/processes"): ({}, designer_read(200)),
    ("GET", "/api/v1/designer/processes/{process_id}/versions"): ({}, designer_read(200)),
    ("GET", "/api/v1/designer/processes/{process_id}/versions/{version}/bpmn"): ({}, designer_read(200)),
    ("GET", "/api/v1/designer/processes/{process_id}/versions/{version}/file"): ({}, designer_read(404)),  # no such file (no name)
    ("GET", "/api/v1/designer/processes/{process_id}/stats"): ({}, designer_read(200)),
    ("POST", "/api/v1/designer/validate"): ({"json": {"bpmn": "not xml"}}, designer_write(422)),
    ("POST", "/api/v1/designer/processes"): ({"json": {"bpmn": "not xml"}}, designer_write(422)),
    # four-eyes review: admins and supervisors only; the version word "latest" is refused after the role check
    ("POST", "/api/v1/designer/processes/{process_id}/versions/{version}/approve"): (
        {"json": {"note": "同意"}}, row(403, anonymous=401, supervisor=422, admin=422)),
    ("POST", "/api/v1/designer/processes/{process_id}/versions/{version}/reject"): (
        {"json": {"note": "驳回"}}, row(403, anonymous=401, supervisor=422, admin=422)),
    ("GET", "/api/v1/designer/processes/{process_id}/versions/{version}/diff"): ({}, designer_read(422)),
    ("POST", "/api/v1/designer/processes/{process_id}/migrate"): (
        {"json": {"from_version": 1, "to_version": 1, "dry_run": True}}, designer_write(422)),
    # statistics: supervisors (own departments) and admins; signed documents of A's case and certificate
    ("GET", "/api/v1/stats/services"): ({}, row(403, anonymous=401, supervisor=200, admin=200)),
    ("GET", "/api/v1/certificates/{cert_id}/pdf"): ({}, citizen_only(200)),
    ("GET", "/api/v1/applications/{case_id}/documents"): ({}, citizen_only(200)),
    ("GET", "/api/v1/applications/{case_id}/documents/{kind}"): ({}, citizen_only(200)),
    ("GET", "/api/v1/staff/cases/{case_id}/documents"): ({}, row(403, anonymous=401, supervisor=200, admin=200)),
    ("GET", "/api/v1/staff/cases/{case_id}/documents/{kind}"): ({}, row(403, anonymous=401, supervisor=200,
                                                                       admin=200)),
    ("GET", "/api/v1/documents/ca.pem"): ({}, PUBLIC_200),
    # messages (#16): the message centre per person, one-time WeChat subscriptions, 催办 and the 抄送 picker
    ("GET", "/api/v1/me/messages"): ({}, row(403, anonymous=401, citizen_a=200, citizen_b=200)),
    ("POST", "/api/v1/me/messages/{message_id}/read"): ({}, row(403, anonymous=401, citizen_a=404, citizen_b=404)),
    ("GET", "/api/v1/me/subscriptions"): ({}, row(403, anonymous=401, citizen_a=200, citizen_b=200)),
    ("POST", "/api/v1/me/subscriptions"): ({"json": {"accept": [], "reject": []}},
                                           row(403, anonymous=401, citizen_a=200, citizen_b=200)),
    ("GET", "/api/v1/staff/messages"): ({}, row(200, anonymous=401, citizen_a=403, citizen_b=403)),
    ("POST", "/api/v1/staff/messages/{message_id}/read"): ({}, row(404, anonymous=401, citizen_a=403,
                                                                   citizen_b=403)),  # no such message
    ("GET", "/api/v1/staff/colleagues"): ({}, row(200, anonymous=401, citizen_a=403, citizen_b=403)),
    # 代理 (#20): staff with a task role set their own; a ten-year period → 422 after the role check
    ("GET", "/api/v1/staff/delegations"): ({}, row(403, anonymous=401, clerk=200, officer_other=200, supervisor=200,
                                                   admin=200)),
    ("POST", "/api/v1/staff/delegations"): (
        {"json": {"delegate": "nobody", "from": "2026-12-07T09:00", "to": "2036-12-08T09:00"}},
        row(403, anonymous=401, clerk=422, officer_other=422, supervisor=422, admin=422)),
    ("POST", "/api/v1/staff/delegations/{delegation_id}/cancel"): (
        {}, row(403, anonymous=401, clerk=404, officer_other=404, supervisor=404, admin=404)),  # no such delegation
    ("POST", "/api/v1/staff/tasks/{task_id}/urge"): ({"json": {}}, staff_task(200)),  # supervisors, own department
    ("POST", "/api/v1/applications/{case_id}/urge"): ({"json": {}}, citizen_only(200)),
    # rectification tasks only: on the samr intake task the supervisor reaches it and is refused (409)
    ("POST", "/api/v1/staff/tasks/{task_id}/reveal-phone"): ({}, staff_task(409)),
    # state-changing citizen rows last: A withdraws the case, then every role logs out
    ("POST", "/api/v1/applications/{case_id}/withdraw"): ({"json": {}}, citizen_only(200)),
    ("POST", "/api/v1/auth/logout"): ({}, row(403, anonymous=401, citizen_a=204, citizen_b=204)),
}


def route_templates(app: Sanic) -> set[tuple[str, str]]:
    """(method, OpenAPI-style template) of every API and ops route the app serves."""
    found = set()
    for route in app.router.routes:
        uri = "/" + route.path.lstrip("/")
        if not (uri.startswith("/api/") or uri in OPS_ROUTES):
            continue
        template = re.sub(r"<(\w+)(?::[^>]+)?>", r"{\1}", uri)
        found.update((method, template) for method in route.methods if method not in {"HEAD", "OPTIONS"})
    return found


@pytest.fixture
async def world(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dict[str, Any]]:
    async with running_api(make_app, monkeypatch) as api:
        api.client.timeout = httpx.Timeout(60)  # the signed PDF rows render and sign a document each
        hashed = hash_password(PASSWORD)
        for username, departments, roles in STAFF.values():
            await StaffUser.create(username=username, name=username, password_hash=hashed,
                                   departments=departments, roles=roles)
        await StaffUser.create(username="samr01", name="samr01", password_hash=hashed, departments=["samr"],
                               roles=["officer"])
        tokens: dict[str, str | None] = {"anonymous": None,
                                         "citizen_a": await citizen_token(api, "dev-wang", *WANG),
                                         "citizen_b": await citizen_token(api, "dev-li", *ZHANG)}
        for role, (username, _, _) in STAFF.items():
            login = await api.call("POST", "/api/v1/staff/login", json={"username": username, "password": PASSWORD})
            assert login.status_code == 200, login.text
            tokens[role] = login.json()["access_token"]
        senior = await api.call("POST", "/api/v1/applications", token=tokens["citizen_a"],
                                json={"service": "senior-card", "form": SENIOR})
        assert senior.status_code == 201, senior.text
        uploaded = await api.call("POST", "/api/v1/uploads", token=tokens["citizen_a"],
                                  files={"file": ("章程.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")})
        assert uploaded.status_code == 201, uploaded.text
        upload_id = uploaded.json()["id"]
        startup = await api.call("POST", "/api/v1/applications", token=tokens["citizen_a"],
                                 json={"service": "business-startup", "form": STARTUP,
                                       "materials": {"公司章程": [upload_id]}})
        assert startup.status_code == 201, startup.text
        case_id = startup.json()["id"]
        [task] = await HumanTask.filter(case_id=case_id, state="ready")
        assert task.department == "samr"
        [cert] = await Certificate.all()
        params = {"case_id": case_id, "cert_id": cert.id, "task_id": str(task.id), "slug": "senior-card",
                  "process_id": "senior_card", "version": "latest", "verifier_id": 999999, "kind": "receipt",
                  "upload_id": upload_id, "file_id": upload_id, "delegation_id": 999999,
                  "message_id": 999999}
        yield {"api": api, "tokens": tokens, "params": params, "case_id": case_id, "task_id": str(task.id)}


async def status_of(api: OpenApiClient, method: str, template: str, spec: dict[str, Any],
                    params: dict[str, Any], role: str, token: str | None) -> int:
    path = template.format(**{k: v for k, v in params.items() if "{" + k + "}" in template})
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs: dict[str, Any] = {}
    if "json" in spec:
        kwargs["json"] = spec["json"](role) if callable(spec["json"]) else spec["json"]
    if spec.get("multipart"):
        kwargs["data"] = {"service": "no-such-service", "form": "{}", "applicant_name": WANG[0],
                          "applicant_id_number": WANG[1]}
        kwargs["files"] = {"materials": ("scan.pdf", io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "application/pdf")}
        kwargs["data"]["material_names"] = "身份证"
    if spec.get("stream"):  # a live event stream: the status is all we need
        async with api.client.stream(method, path, headers=headers, **kwargs) as response:
            return response.status_code
    return (await api.call(method, path, headers=headers, **kwargs)).status_code


async def test_every_route_is_in_the_matrix(make_app: Callable[..., Sanic]) -> None:
    routes = route_templates(make_app())
    missing = sorted(routes - set(MATRIX))
    assert not missing, f"routes without a row in the authorization matrix (decide who may call them): {missing}"
    stale = sorted(set(MATRIX) - routes)
    assert not stale, f"matrix rows for routes that no longer exist: {stale}"


async def test_every_route_answers_every_role_as_the_matrix_says(world: dict[str, Any]) -> None:
    api: OpenApiClient = world["api"]
    actual: dict[tuple[str, str], dict[str, int]] = {}
    for (method, template), (spec, _) in MATRIX.items():
        actual[(method, template)] = {}
        for role in ROLES:
            actual[(method, template)][role] = await status_of(api, method, template, spec, world["params"],
                                                               role, world["tokens"][role])
    if os.environ.get("GOVFLOW_PRINT_MATRIX"):
        for key, statuses in actual.items():
            print(key, statuses)
    wrong = {key: {"expected": MATRIX[key][1], "actual": got} for key, got in actual.items() if got != MATRIX[key][1]}
    assert not wrong, "\n".join(f"{k}: {v}" for k, v in wrong.items())


async def test_no_object_of_citizen_a_is_reachable_by_citizen_b(world: dict[str, Any]) -> None:
    """IDOR, answer by answer: B's 404s carry no trace of A's objects, and B's own lists are empty."""
    api: OpenApiClient = world["api"]
    b = world["tokens"]["citizen_b"]
    case_id, params = world["case_id"], world["params"]
    for path in (f"/api/v1/applications/{case_id}", f"/api/v1/certificates/{params['cert_id']}",
                 f"/api/v1/certificates/{params['cert_id']}/qrcode"):
        response = await api.call("GET", path, token=b)
        assert response.status_code == 404, (path, response.text)
        assert WANG[0] not in response.text and "王**" not in response.text
    assert (await api.call("GET", "/api/v1/applications", token=b)).json()["total"] == 0
    assert (await api.call("GET", "/api/v1/certificates", token=b)).json()["items"] == []
    # an id that exists answers exactly like one that does not: ids cannot be probed
    missing = await api.call("GET", f"/api/v1/applications/{case_id + 1000}", token=b)
    mine = await api.call("GET", f"/api/v1/applications/{case_id}", token=b)
    assert (missing.status_code, missing.json()["error"]["code"]) == (mine.status_code, mine.json()["error"]["code"])
    # the other department's officer neither lists nor opens A's task
    other = world["tokens"]["officer_other"]
    inbox = (await api.call("GET", "/api/v1/staff/tasks", token=other)).json()
    assert world["task_id"] not in {t["id"] for t in inbox["items"]}
    detail = await api.call("GET", f"/api/v1/staff/tasks/{world['task_id']}", token=other)
    assert detail.status_code == 403 and WANG[0] not in detail.text
