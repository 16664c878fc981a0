"""POST/GET /api/v1/uploads over real HTTP, on both database passes and against both file stores
(disk, and S3 through a real S3-compatible server): types by magic bytes, size limit, EXIF removed
from photos, ownership, expiry of unattached uploads. Every answer is checked against the OpenAPI
document."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from sanic import Sanic

from engine.errors import NotFound
from engine.platform import files
from engine.platform.uploads import store_from_settings
from engine.store.models import Upload
from tests.api.conftest import fresh_db, make_app  # noqa: F401 - fixtures
from tests.api.helpers import OpenApiClient, citizen_token, error_of, running_api
from tests.files.images import EXE, HTML, PDF, SVG, exif_of, photo, png_with_text, size_of

UPLOADS = "/api/v1/uploads"
MAX_BYTES = 256 * 1024


@pytest.fixture
async def api(make_app: Callable[..., Sanic], monkeypatch: pytest.MonkeyPatch,  # noqa: F811
              store_settings: dict[str, Any]) -> AsyncIterator[OpenApiClient]:
    async with running_api(make_app, monkeypatch, UPLOAD_MAX_BYTES=MAX_BYTES, FILES_MAX_PENDING=5,
                           **store_settings) as served:
        yield served


async def upload(api: OpenApiClient, token: str | None, data: bytes, filename: str = "IMG_0001.jpg",
                 declared: str = "image/jpeg") -> Any:
    return await api.call("POST", UPLOADS, token=token, files={"file": (filename, data, declared)})


def store(api: OpenApiClient) -> Any:
    return store_from_settings(api.app.ctx.settings)


async def test_photo_is_stored_without_exif_and_read_back_by_its_owner(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang")
    original = photo()
    assert exif_of(original)[0x010F] == "GovflowPhone" and b"GovflowPhone" in original
    response = await upload(api, token, original, "王建国的身份证.jpg")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["content_type"] == "image/jpeg" and body["attached"] is False and body["expires_at"]
    assert response.headers["Location"] == f"{UPLOADS}/{body['id']}"
    row = await Upload.get(id=body["id"])
    stored = store(api).get(row.key)
    assert body["size"] == len(stored) and body["sha256"] == hashlib.sha256(stored).hexdigest()
    assert stored != original and exif_of(stored) == {} and b"GovflowPhone" not in stored
    assert b"Exif" not in stored and size_of(stored) == (48, 64)  # orientation applied to the pixels
    assert "王建国" not in row.name and "身份证" not in row.name  # the file name is never kept

    mine = await api.call("GET", f"{UPLOADS}/{body['id']}", token=token)
    assert mine.status_code == 200 and mine.json() == body
    content = await api.call("GET", f"{UPLOADS}/{body['id']}/content", token=token)
    assert content.status_code == 200 and content.content == stored
    assert content.headers["content-type"] == "image/jpeg"
    assert content.headers["x-content-type-options"] == "nosniff"
    assert content.headers["content-disposition"].startswith("inline;")

    other = await citizen_token(api, "dev-li")
    error_of(await api.call("GET", f"{UPLOADS}/{body['id']}", token=other), 404, "not_found")
    error_of(await api.call("GET", f"{UPLOADS}/{body['id']}/content", token=other), 404, "not_found")
    error_of(await api.call("GET", f"{UPLOADS}/not-a-uuid", token=token), 404, "not_found")
    error_of(await api.call("GET", f"{UPLOADS}/{body['id']}"), 401, "unauthorized")


async def test_pdf_is_kept_as_sent_and_png_loses_its_text(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang")
    pdf = await upload(api, token, PDF, "lease.jpg", "image/jpeg")  # declared type and name ignored
    assert pdf.status_code == 201 and pdf.json()["content_type"] == "application/pdf"
    assert pdf.json()["sha256"] == hashlib.sha256(PDF).hexdigest() and pdf.json()["size"] == len(PDF)
    assert store(api).get((await Upload.get(id=pdf.json()["id"])).key) == PDF
    png = await upload(api, token, png_with_text(), "a.png", "image/png")
    assert png.status_code == 201 and png.json()["content_type"] == "image/png"
    stored = store(api).get((await Upload.get(id=png.json()["id"])).key)
    assert "310104196103150273".encode() not in stored and b"tEXt" not in stored


@pytest.mark.parametrize(("data", "status", "code"), [
    (EXE, 415, "unsupported_file_type"), (SVG, 415, "unsupported_file_type"), (HTML, 415, "unsupported_file_type"),
    (b"\xff\xd8\xff\xe0 not really a jpeg", 415, "unreadable_image"), (b"", 415, "unsupported_file_type"),
])
async def test_wrong_types_are_refused(api: OpenApiClient, data: bytes, status: int, code: str) -> None:
    token = await citizen_token(api, "dev-wang")
    error_of(await upload(api, token, data, "x.jpg"), status, code)
    assert await Upload.all().count() == 0


async def test_size_limit_and_bad_requests(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang")
    error_of(await upload(api, token, PDF + b"0" * MAX_BYTES, "big.pdf"), 413, "file_too_large")
    missing = await api.call("POST", UPLOADS, token=token, files={"other": ("a.pdf", PDF, "application/pdf")})
    assert "file" in error_of(missing, 422, "validation_failed")["fields"]
    error_of(await api.call("POST", UPLOADS, token=token, json={"file": "x"}), 415, "unsupported_media_type")
    error_of(await upload(api, None, PDF), 401, "unauthorized")
    assert await Upload.all().count() == 0


async def test_unattached_uploads_expire_and_leave_the_store(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang")
    body = (await upload(api, token, photo(colour=(1, 2, 3)))).json()
    kept = (await upload(api, token, PDF, "a.pdf")).json()
    row = await Upload.get(id=body["id"])
    assert store(api).exists(row.key)
    now = api.app.ctx.engine.deps.clock()
    assert await files.sweep_expired(store(api), now) == 0
    await Upload.filter(id=kept["id"]).update(expires_at=now + timedelta(days=2))
    assert await files.sweep_expired(store(api), now + timedelta(seconds=api.app.ctx.settings.FILES_UPLOAD_TTL_S)) == 1
    assert not store(api).exists(row.key) and not await Upload.filter(id=body["id"]).exists()
    with pytest.raises(NotFound):
        store(api).get(row.key)
    error_of(await api.call("GET", f"{UPLOADS}/{body['id']}", token=token), 404, "not_found")
    assert (await api.call("GET", f"{UPLOADS}/{kept['id']}", token=token)).status_code == 200


async def test_same_content_twice_is_stored_once_and_survives_one_deletion(api: OpenApiClient) -> None:
    wang, li = await citizen_token(api, "dev-wang"), await citizen_token(api, "dev-li")
    first = (await upload(api, wang, PDF, "a.pdf")).json()
    second = (await upload(api, li, PDF, "b.pdf")).json()
    key = (await Upload.get(id=first["id"])).key
    assert (await Upload.get(id=second["id"])).key == key and first["id"] != second["id"]
    now = api.app.ctx.engine.deps.clock()
    await Upload.filter(id=first["id"]).update(expires_at=now - timedelta(seconds=1))
    assert await files.sweep_expired(store(api), now) == 1
    assert store(api).get(key) == PDF  # li's upload still refers to it


async def test_pending_uploads_per_citizen_are_capped(api: OpenApiClient) -> None:
    token = await citizen_token(api, "dev-wang")
    for n in range(5):
        assert (await upload(api, token, PDF + str(n).encode(), "a.pdf")).status_code == 201
    error_of(await upload(api, token, PDF, "a.pdf"), 429, "too_many_uploads")
    other = await citizen_token(api, "dev-li")
    assert (await upload(api, other, PDF, "a.pdf")).status_code == 201
