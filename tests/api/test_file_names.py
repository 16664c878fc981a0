"""Names checked with ``fullmatch``, never ``match`` + ``$`` (which also accepts a trailing newline):
model file names, development login codes and client request ids."""

from __future__ import annotations

import pytest

from engine.designer.model_input import BadFileName, check_file_name
from mobile_api.observability import _REQUEST_ID_RE  # noqa: F401 - the pattern under test
from mobile_api.wechat import (
    _DEV_CODE,  # noqa: F401 - the pattern under test
    DevWeChatClient,
    InvalidCode,
)


@pytest.mark.parametrize("name", ["main.bpmn", "rules_v2.dmn", "forms/apply-form.json", "a.b-c_d.bpmn"])
def test_good_file_names_pass(name: str) -> None:
    assert check_file_name(name) == name


@pytest.mark.parametrize("name", ["a.bpmn\n", "forms/x.json\n", "a.bpmn\r", "a.bpmn\n.x", "名称.bpmn",
                                  "a١.bpmn", "../a.bpmn", "forms/../a.json", ".a.bpmn", "a.bpmnx", "a.xml",
                                  "forms/a.json/", "/a.bpmn", "a" * 101 + ".bpmn"])
def test_bad_file_names_are_refused(name: str) -> None:
    with pytest.raises(BadFileName):
        check_file_name(name)


async def test_dev_codes_and_request_ids_match_whole() -> None:
    client = DevWeChatClient(env="development")
    assert (await client.jscode2session("dev-alice")).openid == "dev-alice"
    with pytest.raises(InvalidCode):
        await client.jscode2session("dev-alice\nx")
    assert _DEV_CODE.fullmatch("dev-alice") and not _DEV_CODE.fullmatch("dev-alice\n")
    assert _REQUEST_ID_RE.fullmatch("abcdef12-3456") and not _REQUEST_ID_RE.fullmatch("abcdef12-3456\n")
