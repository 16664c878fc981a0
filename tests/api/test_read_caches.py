"""The caches on the hot read paths never show a stale answer (both database passes):

- the catalogue list is serialized once per catalogue, with a strong ETag: ``If-None-Match``
  answers 304 without a body, a changed catalogue or department name shows on the next request
  with a new ETag;
- a citizen's case detail is cached under its row's stamp (version, ``updated_at``, newest
  timeline event): a staff claim, a completed step and a certificate revocation each show in the
  applicant's very next read;
- a verified access token is remembered per process, but a logout still refuses it at once.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import yaml
from sanic import Sanic

from engine.citizen import Catalog
from engine.store.models import HumanTask
from tests.api.helpers import OpenApiClient, citizen_token, error_of, running_api, seed_staff
from tests.api.helpers import staff_login as staff_token
from tests.api.test_applications_api import STARTUP, WANG, started

SERVICES = "/api/v1/services"
APPLY, TASKS = "/api/v1/applications", "/api/v1/staff/tasks"
STAFF = {"samr01": (["samr"], ["officer"])}


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch) as served:
        await seed_staff(STAFF)
        yield served


# --------------------------------------------------------------------------- catalogue
async def test_the_catalogue_answers_304_for_its_etag_and_200_for_another(api: OpenApiClient) -> None:
    first = await api.call("GET", SERVICES)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and first.headers["cache-control"] == "no-cache"
    again = await api.call("GET", SERVICES)
    assert again.content == first.content and again.headers["etag"] == etag  # the same bytes, served from cache

    for header in (etag, f"W/{etag}", f'"other", {etag}'):
        unchanged = await api.client.get(SERVICES, headers={"If-None-Match": header})
        assert unchanged.status_code == 304, header
        assert unchanged.content == b"" and unchanged.headers["etag"] == etag
        assert unchanged.headers["x-content-type-options"] == "nosniff"  # middleware still runs
    changed = await api.call("GET", SERVICES, headers={"If-None-Match": '"not-the-current-one"'})
    assert changed.status_code == 200 and changed.json() == first.json()


async def test_a_catalogue_change_shows_on_the_next_request(api: OpenApiClient, tmp_path: Path) -> None:
    before = await api.call("GET", SERVICES)
    names = {i["slug"]: i["name"] for i in before.json()["items"]}
    assert names["senior-card"] == "老年人优待证办理"

    ctx = api.app.ctx
    folder = tmp_path / "processes"
    shutil.copytree(ctx.settings.PROCESSES_DIR, folder)
    item = folder / "senior-card" / "item.yaml"
    raw = yaml.safe_load(item.read_text(encoding="utf-8"))
    raw["name"] = "老年人优待证申领"
    item.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    ctx.catalog = Catalog.load(folder)  # a new catalogue replaces the old one as a whole

    after = await api.call("GET", SERVICES)
    assert {i["slug"]: i["name"] for i in after.json()["items"]}["senior-card"] == "老年人优待证申领"
    assert after.headers["etag"] != before.headers["etag"]
    stale = await api.client.get(SERVICES, headers={"If-None-Match": before.headers["etag"]})
    assert stale.status_code == 200  # the old tag no longer matches

    ctx.departments["mca"] = "区民政局（更名）"
    renamed = await api.call("GET", SERVICES)
    senior = next(i for i in renamed.json()["items"] if i["slug"] == "senior-card")
    assert senior["department_name"] == "区民政局（更名）"
    assert renamed.headers["etag"] not in (before.headers["etag"], after.headers["etag"])


# --------------------------------------------------------------------------- case detail
async def _detail(api: OpenApiClient, token: str, case_id: int) -> dict:
    response = await api.call("GET", f"{APPLY}/{case_id}", token=token)
    assert response.status_code == 200, response.text
    return response.json()


async def test_every_change_shows_in_the_applicants_next_read_of_the_case(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang", *WANG)
    case = await started(api, token, "business-startup", STARTUP)
    first = await _detail(api, token, case["id"])
    assert first == await _detail(api, token, case["id"])  # a second read: the cached view, same answer
    [task] = await HumanTask.filter(case_id=case["id"], state="ready", kind="bpmn")
    [sub] = [s for s in first["subcases"] if any(t["id"] == str(task.id) for t in s["tasks"])]
    assert [t["state"] for t in sub["tasks"] if t["id"] == str(task.id)] == ["ready"]

    samr = await staff_token(api, "samr01")
    claimed = await api.call("POST", f"{TASKS}/{task.id}/claim", token=samr)
    assert claimed.status_code == 200, claimed.text
    after_claim = await _detail(api, token, case["id"])  # no step, only a timeline event: not stale
    states = [t["state"] for s in after_claim["subcases"] for t in s["tasks"] if t["id"] == str(task.id)]
    assert states == ["claimed"]
    assert "withdraw" in after_claim["actions"]

    done = await api.call("POST", f"{TASKS}/{task.id}/complete", token=samr,
                          json={"data": {"intake_accepted": True, "intake_opinion": "材料齐全，予以受理"}})
    assert done.status_code == 200, done.text
    after_step = await _detail(api, token, case["id"])  # the step shows at once
    assert after_step["steps"][-1] != after_claim["steps"][-1]
    assert "withdraw" not in after_step["actions"]  # accepted by an officer: no more 撤回
    assert after_step["certificates"] and after_step["certificates"][0]["state"] == "01"

    licence = after_step["certificates"][0]
    mca_like = {"samr02": (["samr"], ["officer"])}
    await seed_staff(mca_like)
    revoked = await api.call("POST", f"/api/v1/staff/certificates/{licence['id']}/revoke",
                             token=await staff_token(api, "samr02"), json={"reason": "以欺骗手段取得登记"})
    assert revoked.status_code == 200, revoked.text
    after_revoke = await _detail(api, token, case["id"])  # certificates are read fresh, never cached
    assert after_revoke["certificates"][0]["state"] == "03"


async def test_the_cached_view_is_never_anothers(api: OpenApiClient) -> None:
    wang = await citizen_token(api, "dev-wang", *WANG)
    case = await started(api, wang, "business-startup", STARTUP)
    await _detail(api, wang, case["id"])  # cached now
    other = await citizen_token(api, "dev-someone")
    error_of(await api.call("GET", f"{APPLY}/{case['id']}", token=other), 404, "not_found")


# --------------------------------------------------------------------------- tokens
async def test_a_remembered_token_is_refused_right_after_logout(api: OpenApiClient) -> None:
    login = await api.login("dev-wang")
    token = login["access_token"]
    for _ in range(2):  # decoded once, then remembered
        assert (await api.call("GET", "/api/v1/me", token=token)).status_code == 200
    out = await api.call("POST", "/api/v1/auth/logout", token=token, json={"refresh_token": login["refresh_token"]})
    assert out.status_code in (200, 204), out.text
    error_of(await api.call("GET", "/api/v1/me", token=token), 401, "token_revoked")
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    error_of(await api.call("GET", "/api/v1/me", token=tampered), 401, "token_invalid")
