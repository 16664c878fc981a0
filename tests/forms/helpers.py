"""Test data for the form tests: a business start-up form and valid identifiers made with stdnum."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from stdnum.cn import ric, uscc

FIXTURES = Path(__file__).parent / "fixtures"
STARTUP_FORM = FIXTURES / "business_startup.json"


def id_number(first17: str = "11010519491231002") -> str:
    """A GB 11643-valid ID number: the 17 digits plus their check digit."""
    return first17 + ric.calc_check_digit(first17 + "0")  # stdnum wants the full 18 chars


def flip_check(number: str) -> str:
    """The same number with a wrong last character (the check digit fails)."""
    wrong = "0" if number[-1] != "0" else "1"
    return number[:-1] + wrong


def credit_code(first17: str = "91310000MA1FL8TQ3") -> str:
    """A valid unified social credit code."""
    return first17 + uscc.calc_check_digit(first17)


GOOD: dict[str, Any] = {
    "company_name": "上海云帆信息科技有限公司",
    "company_type": "llc",
    "industry": "it",
    "address": {"region_code": "310101", "detail": "南京东路100号5楼501室"},
    "registered_capital": 100.5,
    "legal_representative": {"name": "张三", "id_number": id_number(), "phone": "13800138000"},
    "shareholders": [
        {"name": "张三", "id_number": id_number(), "contribution": 60.25, "share_ratio": 60},
        {"name": "阿卜杜·热合曼", "id_number": id_number("31010119900307123"), "contribution": 40.25},
    ],
    "business_scope": "软件开发；信息技术咨询服务",
    "contact_phone": "13912345678",
    "filing_agent": {"name": "某某代办", "uscc": credit_code()},
    "needs_seal": True,
    "needs_invoice": True,
    "open_bank_account": True,
    "bank_name": "某某银行上海分行",
    "establish_date": "2024-02-29",
}


def good() -> dict[str, Any]:
    """A fresh copy of valid start-up data."""
    return copy.deepcopy(GOOD)
