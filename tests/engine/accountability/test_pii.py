"""Personal-data helpers: masking, blind indexes, ID-number validation, keys from settings."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from engine.accountability.privacy import (
    PiiKeys,
    blind_index,
    is_valid_id_number,
    mask_id_number,
    mask_middle,
    mask_name,
    mask_phone,
    mask_text,
    normalise_id,
)
from engine.config import Settings

VALID = "310104196103150273"  # demo person local_65
KEY = b"k" * 32


def test_masks_keep_only_the_documented_characters() -> None:
    assert mask_id_number("110101199003071234") == "110***********1234"
    assert mask_id_number(" 32010219930908143x ") == "320***********143X"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("138-1234-5678") == "138****5678"
    assert mask_name("张三丰") == "张**"
    assert mask_name("李娜") == "李*"
    assert mask_name("王") == "*" and mask_name("") == ""
    assert mask_middle("Q312600001", 1, 4) == "Q*****0001"
    assert mask_middle("12345", 3, 4) == "*****"  # too short to show anything


def test_mask_text_masks_id_numbers_and_mobiles_in_free_text() -> None:
    line = f"申请人身份证号{VALID}，手机13812345678；备用 32010219930908143x, 电话 021-64370000"
    masked = mask_text(line)
    assert VALID not in masked and "13812345678" not in masked and "32010219930908143" not in masked
    assert "310***********0273" in masked and "138****5678" in masked and "320***********143X" in masked
    assert "021-64370000" in masked  # a landline is not a mobile
    assert mask_text("订单号 12345678901234567890") == "订单号 12345678901234567890"  # 20 digits: not an ID
    assert mask_text("GET /records/310104196103150273 HTTP/1.1") == "GET /records/310***********0273 HTTP/1.1"


def test_blind_index_is_keyed_normalised_and_not_the_number() -> None:
    digest = blind_index(VALID, KEY)
    assert len(digest) == 64 and VALID not in digest
    assert blind_index("32010219930908143x", KEY) == blind_index(" 32010219930908143X", KEY)
    assert blind_index(VALID, KEY) != blind_index(VALID, b"x" * 32)
    with pytest.raises(ValueError):
        blind_index(VALID, b"")


def test_id_number_validation_uses_gb11643() -> None:
    assert is_valid_id_number(VALID) and is_valid_id_number("32010219930908143x")
    assert not is_valid_id_number("310104196103150274")  # wrong check digit
    assert not is_valid_id_number("310104196113150273")  # month 13
    assert not is_valid_id_number("") and not is_valid_id_number(None) and not is_valid_id_number(12345)
    assert normalise_id(" 3201-0219930908143x ") == "32010219930908143X"


def test_keys_from_settings(caplog: pytest.LogCaptureFixture) -> None:
    hex_key = "ab" * 32
    keys = PiiKeys.from_settings(SimpleNamespace(PII_KEY=hex_key, is_production=True))
    assert keys.master == bytes.fromhex(hex_key) and not keys.development
    assert keys.blind_index_key != keys.encryption_key and len(keys.blind_index_key) == 32
    assert hex_key not in repr(keys)
    with pytest.raises(ValueError, match="GOVFLOW_PII_KEY"):
        PiiKeys.from_settings(Settings(ENV="production"))
    with pytest.raises(ValueError, match="GOVFLOW_PII_KEY"):
        PiiKeys.from_hex("not hex")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        PiiKeys.from_hex("abcd")
    import engine.accountability.privacy

    engine.accountability.privacy._warned_dev_key = False  # the warning is given once per process
    with caplog.at_level(logging.WARNING, logger="engine.accountability.privacy"):
        dev = PiiKeys.from_settings(Settings())
        PiiKeys.from_settings(Settings())
    assert caplog.text.count("development PII key") == 1
    assert dev.development and dev == PiiKeys.development_keys()  # fixed: same hashes on every machine
    assert "development PII key" in caplog.text
