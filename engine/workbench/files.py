"""What the back office sees of an application: its form data (personal fields masked, each one
revealable with an access-log row) and its material files, which staff open one by one.

- ``application_view``: the form as label/value rows, ID numbers, phones, names of persons and
  address details masked like everywhere else; ``reveal_field`` returns one full value and logs it.
- ``materials_view``: the item's materials with the files attached to the case (applicant uploads,
  window scans, 补正 files) — ``{name, status, files: [{id, name, content_type, size, url, source}]}``.
- ``open_case_file``: the bytes of one file for staff of a department the case has a task in (a
  加签 signer, a window clerk for window cases), else 403; every open is a ``DataAccessLog`` row the
  citizen reads in 我的信息被谁查看.
"""

from __future__ import annotations

import re
from typing import Any

from engine.accountability.audit import log_data_access
from engine.accountability.privacy import blind_index, mask_id_number, mask_middle, mask_name, mask_phone
from engine.errors import Forbidden, NotFound, ValidationFailed
from engine.kernel.cases import CaseEngine, current_data
from engine.platform import files as records
from engine.platform.uploads import Store
from engine.store.models import Case, HumanTask, StaffUser, Upload
from engine.workbench.staff import departments_of

FILE_URL = "/api/v1/staff/files/{id}"
WINDOW_DEPARTMENT = "window"
_INDEX = re.compile(r"\.(?:\d+|\*)(?=\.|$)")  # an array index in a data path, or the spec's "*"


class ForbiddenCaseFile(Forbidden):
    code, default_message = "forbidden_case_file", "该办件不属于您所在的部门，不能查看其材料"


# ------------------------------------------------------------------ form data
def _spec_index(fields: list[dict[str, Any]], index: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    for field in fields or []:
        if isinstance(field, dict) and field.get("path"):
            index[_INDEX.sub("", str(field["path"]))] = field
            _spec_index(field.get("fields") or [], index)
            for items in (field.get("items"), field.get("item")):  # an array's item spec (forms.ui_spec: "item")
                if isinstance(items, dict):
                    _spec_index(items.get("fields") or [], index)
    return index


def _kind(path: str, spec: dict[str, Any] | None) -> str | None:
    """Which mask a value at ``path`` needs: id | phone | name | address | None."""
    spec = spec or {}
    component = str(spec.get("component") or "")
    widget = str(spec.get("widget") or "")
    key = path.rsplit(".", 1)[-1]
    if widget == "id-number" or component.endswith("id_number.json") or key in ("id_number", "id_no"):
        return "id"
    if widget == "phone" or component.endswith("phone.json") or key in ("phone", "mobile", "telephone"):
        return "phone"
    if component.endswith("person_name.json") or (key == "name" and "." in path):
        return "name"
    if key == "detail" and path.split(".")[-2:-1] and "address" in path:
        return "address"
    return None


def _mask(kind: str | None, value: str) -> str:
    if kind == "id":
        return mask_id_number(value)
    if kind == "phone":
        return mask_phone(value)
    if kind == "name":
        return mask_name(value)
    if kind == "address":
        return mask_middle(value, 6, 0)
    return value


def _display(value: Any, spec: dict[str, Any] | None) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    options = {str(o.get("value")): str(o.get("label")) for o in (spec or {}).get("options") or []
               if isinstance(o, dict)}
    text = str(value)
    return options.get(text, text) + (f" {spec['unit']}" if spec and spec.get("unit") else "")


def _rows(data: Any, path: str, index: dict[str, dict[str, Any]], out: list[dict[str, Any]]) -> None:
    spec = index.get(_INDEX.sub("", path)) if path else None
    if isinstance(data, dict):
        for key, value in data.items():
            _rows(value, f"{path}.{key}" if path else str(key), index, out)
        return
    if isinstance(data, list) and any(isinstance(v, (dict, list)) for v in data):
        for n, value in enumerate(data):
            _rows(value, f"{path}.{n}", index, out)
        return
    value = "、".join(_display(v, spec) for v in data) if isinstance(data, list) else _display(data, spec)
    label = str((spec or {}).get("title") or path.rsplit(".", 1)[-1])
    numbers = [int(n) + 1 for n in re.findall(r"\.(\d+)(?=\.|$)", path)]
    if numbers:
        label = f"{label}（第 {'-'.join(map(str, numbers))} 项）"
    parent = index.get(_INDEX.sub("", path.rsplit(".", 1)[0])) if "." in path else None
    group = str(parent.get("title")) if parent and parent.get("title") else None
    kind = _kind(path, spec) if data not in (None, "") else None
    out.append({"path": path, "label": label, "group": group, "value": _mask(kind, value), "masked": kind is not None})


def application_view(form: Any, ui_spec: dict[str, Any] | None) -> dict[str, Any]:
    """The application form as rows ``{path, label, group, value, masked}`` in form order."""
    index = _spec_index((ui_spec or {}).get("fields") or [], {})
    rows: list[dict[str, Any]] = []
    _rows(form if isinstance(form, dict) else {}, "", index, rows)
    return {"title": (ui_spec or {}).get("title"), "fields": rows}


def _value_at(form: Any, path: str) -> Any:
    node = form
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


async def reveal_field(engine: CaseEngine, staff: StaffUser, task_id: str, path: Any) -> dict[str, Any]:
    """The full value of one masked form field of the task's application, logged for the applicant
    (404/403 as for the task; 422 unknown or not a masked field)."""
    from engine.workbench.staff import visible_task
    from engine.workbench.task_detail import application_spec

    task = await visible_task(staff, task_id)
    case: Case = task.case  # type: ignore[assignment]
    if not isinstance(path, str) or not 0 < len(path) <= 200:
        raise ValidationFailed("请指定要查看的字段", fields={"field": "字段路径"})
    _, workflow, bundle = await engine.load(case.id)
    ui_spec = application_spec(bundle)
    data = current_data(workflow)
    form = data.get("form") if isinstance(data.get("form"), dict) else {}
    value = _value_at(form, path)
    index = _spec_index((ui_spec or {}).get("fields") or [], {})
    if value is None or isinstance(value, (dict, list)) or _kind(path, index.get(_INDEX.sub("", path))) is None:
        raise ValidationFailed("该字段无需或不能单独查看", fields={"field": "不是脱敏字段"})
    await _log(engine, staff, task.department, case, data.get("applicant"), fields=[f"form.{path}"],
               dataset="application_form", purpose=f"办理「{task.name}」：查看申请表完整信息")
    return {"field": path, "value": str(value)}


async def _log(engine: CaseEngine, staff: StaffUser, department: str | None, case: Case, applicant: Any, *,
               fields: list[str], dataset: str, purpose: str) -> None:
    keys = engine.deps.pii_keys
    id_number = applicant.get("id_number") if isinstance(applicant, dict) else None
    if keys is None or not isinstance(id_number, str) or not id_number:
        return
    await log_data_access(None, actor=staff.username, department=department,
                          subject_hash=blind_index(id_number, keys.blind_index_key),
                          subject_masked=mask_id_number(id_number), dataset=dataset, fields_read=fields,
                          case_id=case.id, case_no=case.case_no, purpose=purpose, now=engine.deps.clock())


# ------------------------------------------------------------------ materials and files
def file_view(row: Upload) -> dict[str, Any]:
    return {"id": str(row.id), "name": row.name, "content_type": row.content_type, "size": row.size,
            "url": FILE_URL.format(id=row.id), "source": row.source, "material": row.material,
            "uploaded_at": (row.attached_at or row.created_at).isoformat()}


def _status(material: dict[str, Any], count: int) -> str:
    if material.get("satisfied") or material.get("status") == "satisfied":
        return "satisfied"  # e-certificate or shared data
    if count or material.get("supplemented"):
        return "received"  # files, or supplied by 补正
    if not material.get("required", True):
        return "not_provided"  # optional, not sent
    return "to_follow" if material.get("may_follow") else "missing"


async def materials_view(case_id: int, materials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The item's materials (as the case recorded them) with their files, then files filed under
    other names (window scans labelled by the clerk, 补正 items)."""
    rows = await records.case_files(case_id)
    by_name: dict[str, list[Upload]] = {}
    for row in rows:
        by_name.setdefault(row.material or "其他材料", []).append(row)
    out = []
    for material in materials:
        name = str(material.get("name"))
        attached = by_name.pop(name, [])
        out.append({**material, "status": _status(material, len(attached)),
                    "files": [file_view(r) for r in attached]})
    for name, attached in by_name.items():
        out.append({"name": name, "required": False, "status": "received",
                    "label": "补正材料" if all(r.source == "supplement" for r in attached) else "收取的材料",
                    "files": [file_view(r) for r in attached]})
    return out


async def department_for(staff: StaffUser, case: Case) -> str | None:
    """The department through which ``staff`` works on ``case``, or ``None``."""
    codes = departments_of(staff)
    task = await HumanTask.filter(case_id=case.id, department__in=codes).exclude(kind="cosign").first()
    if task is not None:
        return task.department
    if await HumanTask.filter(case_id=case.id, kind="cosign", assignee=staff.username).exists():
        cosign = await HumanTask.filter(case_id=case.id, kind="cosign", assignee=staff.username).first()
        return cosign.department if cosign else None
    if case.channel == "window" and WINDOW_DEPARTMENT in codes:
        return WINDOW_DEPARTMENT
    return None


async def open_case_file(engine: CaseEngine, store: Store, staff: StaffUser, file_id: Any) -> tuple[Upload, bytes]:
    """One attached file for staff of the case's departments (404 unknown, 403 another department's),
    logged as a read of the applicant's materials."""
    row = await records.file_by_id(file_id)
    if row is None:
        raise NotFound("文件不存在")
    case = await Case.get(id=row.case_id)  # type: ignore[attr-defined]
    department = await department_for(staff, case)
    if department is None:
        raise ForbiddenCaseFile()
    data = await records.read_file(store, row)
    _, workflow, _ = await engine.load(case.id)
    applicant = current_data(workflow).get("applicant")
    source = {"applicant": "申请人上传", "window": "窗口收件", "supplement": "补正"}.get(row.source, row.source)
    await _log(engine, staff, department, case, applicant, fields=[f"材料：{row.material or row.name}"],
               dataset="materials", purpose=f"查看材料「{row.material or row.name}」（{source}，{row.name}）")
    return row, data


__all__ = ["FILE_URL", "ForbiddenCaseFile", "application_view", "department_for", "file_view", "materials_view", "open_case_file",
           "reveal_field"]
