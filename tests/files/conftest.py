"""File-store fixtures: the same tests run against the disk store and against an S3-compatible store
served by a real HTTP server (moto's server mode, ``moto_server`` from the ``test`` extra, one per
test session, in its own process)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

S3_ACCESS, S3_SECRET, S3_REGION = "govflow-test", "govflow-test-secret", "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A running S3-compatible server (moto server mode) on a free local port."""
    port = _free_port()
    server = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=S3_REGION, aws_access_key_id=S3_ACCESS,
                        aws_secret_access_key=S3_SECRET)


@pytest.fixture(params=["disk", "s3"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings overrides selecting one file store: a fresh directory, or a fresh bucket."""
    if request.param == "disk":
        return {"FILES_STORE": "disk", "FILES_DIR": str(tmp_path / "files")}
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"govflow-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=bucket)
    return {"FILES_STORE": "s3", "FILES_S3_ENDPOINT": endpoint, "FILES_S3_BUCKET": bucket,
            "FILES_S3_REGION": S3_REGION, "FILES_S3_ACCESS_KEY": S3_ACCESS, "FILES_S3_SECRET_KEY": S3_SECRET,
            "FILES_S3_PREFIX": "materials/"}
