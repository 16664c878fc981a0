"""The officer's view of the application form (engine.workbench.files.application_view): labels come
from the item's form, array items included (not raw keys), and personal values are masked."""

from __future__ import annotations

from pathlib import Path

from engine.workbench.files import application_view
from forms import load_form

FORM = Path(__file__).resolve().parents[3] / "processes" / "business-startup" / "forms" / "apply.json"


def test_array_items_carry_their_fields_titles_and_masks() -> None:
    spec = load_form(FORM.read_text(encoding="utf-8")).ui_spec()
    rows = application_view({"company_name": "上海云帆信息科技有限公司", "shareholders": [
        {"name": "王建国", "id_number": "310104196103150273", "share_percent": 60},
        {"name": "李娜", "id_number": "310110198606200486", "share_percent": 40}]}, spec)["fields"]
    by_path = {row["path"]: row for row in rows}
    assert by_path["shareholders.1.name"]["label"] == "股东姓名（第 2 项）"
    assert by_path["shareholders.0.id_number"]["label"] == "股东身份证号（第 1 项）"
    assert by_path["shareholders.0.share_percent"]["label"] == "持股比例（第 1 项）"
    assert by_path["shareholders.0.name"]["group"] == "股东（出资人）"
    assert (by_path["shareholders.0.id_number"]["value"], by_path["shareholders.0.id_number"]["masked"]) == \
        ("310***********0273", True)
    assert by_path["company_name"] == {"path": "company_name", "label": "企业名称", "group": None,
                                       "value": "上海云帆信息科技有限公司", "masked": False}
    assert "310104196103150273" not in str(rows)
