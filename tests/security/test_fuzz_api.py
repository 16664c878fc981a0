"""Fuzz the whole API from its own OpenAPI document (schemathesis): for every operation the
document lists — so routes added later are fuzzed without touching this file — generated valid
and invalid requests, sent with a citizen's, an officer's and a designer's token, must never get
a 5xx, and every answer must be documented (status, media type, body schema, headers).

The server is a real ``govflow serve`` subprocess (SQLite, or PostgreSQL with a private Redis on
the PostgreSQL pass). ``GOVFLOW_FUZZ_EXAMPLES`` bounds the examples per operation: small in
``make test``, large in ``make fuzz``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_DB
from tests.security.stack import WANG, citizen_token, private_redis, stack, staff_token

FUZZ_EXAMPLES = int(os.environ.get("GOVFLOW_FUZZ_EXAMPLES", "8"))
# Logging out revokes the token the fuzzer is using; logout is covered by test_tokens.py.
NOT_FUZZED = ["--exclude-path", "/api/v1/auth/logout"]
# Schema-valid but semantically wrong data (an ID number with a bad check digit, an unknown QR
# token) is rightly refused with 4xx, so "positive data is accepted" does not apply.
# "Created resource not found" (ensure_resource_availability) links a deployed process to
# POST …/{process_id}/migrate and counts its 404 for versions that do not exist (random
# from_version/to_version) as the process having vanished; GET …/versions covers availability.
CHECKS = ["--checks", "all", "--exclude-checks", "positive_data_acceptance,ensure_resource_availability"]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    with ExitStack() as stack_:
        redis_url = stack_.enter_context(private_redis(tmp)).url if TEST_DB == "postgres" else ""
        served = stack_.enter_context(stack(tmp, redis_url=redis_url))
        proc, base = served.serve()
        tokens = {"citizen": citizen_token(base, "dev-fuzzer", WANG), "officer": staff_token(base, "samr01"),
                  "designer": staff_token(base, "designer01")}
        yield {"base": base, "tokens": tokens, "proc": proc, "tmp": tmp}


@pytest.mark.parametrize("role", ["citizen", "officer", "designer"])
def test_no_server_error_and_every_answer_is_documented(role: str, fuzz_server: dict[str, Any]) -> None:
    base = fuzz_server["base"]
    command = [str(SCHEMATHESIS), "run", f"{base}/docs/openapi.json", "--url", base,
               "-H", f"Authorization: Bearer {fuzz_server['tokens'][role]}",
               "--max-examples", str(FUZZ_EXAMPLES), "--workers", "1", "--seed", os.environ.get(
                   "GOVFLOW_FUZZ_SEED", "20261129"), "--request-timeout", "30", "--no-color",
               "--phases", "examples,coverage,fuzzing,stateful", *CHECKS, *NOT_FUZZED]
    done = subprocess.run(command, cwd=fuzz_server["tmp"], capture_output=True, text=True, timeout=1800,
                          check=False)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-20000:]
    assert "Tested: " in report, report[-5000:]
    assert fuzz_server["proc"].alive(), fuzz_server["proc"].output()[-3000:]
