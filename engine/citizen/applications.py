"""Applications (申请): one form, materials satisfied by e-certificates, a case on the item's process.

The same call serves every channel: the mobile API, the window clerk (一窗受理) and tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from engine.accountability.privacy import blind_index, mask_id_number, mask_name
from engine.bpmn.parser import read_folder
from engine.citizen.catalog import Catalog, ServiceItem
from engine.errors import ValidationFailed
from engine.kernel.cases import CaseEngine, CaseResult
from engine.store.models import ProcessDefinition
from forms import validate_data


@dataclass
class Applicant:
    """Who applies. ``id_number`` is used for look-ups and never stored in clear outside the
    encrypted case state."""

    id_number: str
    name: str
    openid: str | None = None
    phone: str | None = None

    def workflow_view(self) -> dict[str, Any]:
        return {"id_number": self.id_number, "name": self.name, "id_masked": mask_id_number(self.id_number),
                "name_masked": mask_name(self.name), "phone": self.phone}


@dataclass
class ApplicationService:
    engine: CaseEngine
    catalog: Catalog
    pii_key: bytes
    _deployed: dict[str, tuple[str, ProcessDefinition]] = field(default_factory=dict)

    async def definition_for(self, item: ServiceItem) -> ProcessDefinition:
        """The current process version of an item: the folder is deployed on first use and
        redeployed (a new, content-hashed version) only when one of its files changed on disk;
        new cases start on the latest version of the process, which may be a designer's deploy."""
        key = _folder_signature(item.folder)
        cached = self._deployed.get(item.slug)
        if cached and cached[0] == key:
            definition = cached[1]
        else:
            definition = await self.engine.deploy(read_folder(item.folder), deployed_by="catalog", name=item.name)
            self._deployed[item.slug] = (key, definition)
        return await self.engine.latest_definition(definition.process_id)

    def validate_form(self, item: ServiceItem, form: Any) -> None:
        if not isinstance(form, dict):
            raise ValidationFailed("申请表应为对象", fields={"form": "申请表格式不正确"})
        problems = validate_data(_read_cached(item.form_path), form)
        if problems:
            raise ValidationFailed("申请表填写有误，请检查标注的字段", fields=problems)

    async def holder_certificates(self, id_number: str) -> list[dict[str, Any]]:
        """The applicant's e-certificates, for 免提交 materials."""
        from engine.certificates.store import find_for_holder

        rows = await find_for_holder(blind_index(id_number, self.pii_key), today=date.today())
        return [{"type_code": r.type_code, "identifier": r.identifier, "name": r.name, "state": r.state}
                for r in rows]

    async def apply(self, slug: str, form: Any, *, applicant: Applicant, channel: str = "mobile",
                    actor: str | None = None, extra: dict[str, Any] | None = None,
                    request_key: str | None = None, uploaded: dict[str, int] | None = None) -> CaseResult:
        """Validate the form, resolve materials, start the case on the item's current process
        (``request_key``: see ``CaseEngine.start_case``). ``uploaded`` (material name → number of
        files the applicant sent) makes the materials a check: every required material the citizen
        provides (source ``citizen``) without an upload is a 422 naming it, unless the item lets it
        follow by 补正 (``may_follow``, 容缺受理). E-certificate materials are fetched by the
        department (加注件) or, when the applicant holds none, checked by the officer. Window intake passes none: the clerk has the papers."""
        from forms.materials import resolve_materials

        item = self.catalog.get(slug)
        self.validate_form(item, form)
        certificates = await self.holder_certificates(applicant.id_number)
        statuses = resolve_materials(item.materials, certificates)
        materials = [s.to_dict() if hasattr(s, "to_dict") else dict(vars(s)) for s in statuses]
        if uploaded is not None:
            check_materials(item, materials, uploaded)
        uses = [{"identifier": m.get("by_certificate"), "reason": f"办理「{item.name}」免提交材料「{m.get('name')}」",
                 "department": item.department, "actor": actor}
                for m in materials if m.get("by_certificate")]
        data = {"form": form, "applicant": applicant.workflow_view(), "materials": materials,
                "service": {"slug": item.slug, "name": item.name, "department": item.department,
                            "type": item.type, "version": item.version}, **(extra or {})}
        definition = await self.definition_for(item)
        return await self.engine.start_case(
            definition, service=item.slug, data=data, applicant=applicant.openid or mask_id_number(applicant.id_number),
            actor=actor, sla_working_days=item.sla_working_days, channel=channel, item_version=item.version,
            records=[("certificate_use", use) for use in uses], request_key=request_key)

    async def start_rectification(self, review: dict[str, Any]) -> CaseResult:
        """A bad review (不满意/非常不满意) opens the platform's rectification case: follow-up within
        1 working day, rectification within 15, on the working-day calendar."""
        item = self.catalog.get("rectification")
        self.validate_form(item, review)
        engine = self.engine
        now = engine.deps.clock()
        deadlines = {"follow_up_due": engine.deps.calendar.due_after_working_days(now, 1).isoformat(),
                     "rectify_due": engine.deps.calendar.due_after_working_days(now, 15).isoformat()}
        definition = await self.definition_for(item)
        return await engine.start_case(definition, service=item.slug, data={"review": review, "deadlines": deadlines},
                                       channel="web", actor="好差评", sla_working_days=item.sla_working_days,
                                       item_version=item.version)


def check_materials(item: ServiceItem, materials: list[dict[str, Any]], uploaded: dict[str, int]) -> None:
    """422 with one Chinese message per required material the applicant still owes; each material
    records how many files came with the application (``uploaded``) and whether it may follow."""
    may_follow = {str(m.get("name")): bool(m.get("may_follow")) for m in item.materials}
    missing: dict[str, str] = {}
    for material in materials:
        name = str(material.get("name"))
        material["uploaded"] = int(uploaded.get(name, 0))
        material["may_follow"] = may_follow.get(name, False)
        if (material.get("source_type") != "citizen" or material.get("satisfied") or material["uploaded"]
                or not material.get("required") or material["may_follow"]):
            continue  # e-certificate and shared-data materials are the department's to fetch or ask for
        missing[f"materials.{name}"] = f"请上传「{name}」"
    if missing:
        names = "、".join(f"「{k.split('.', 1)[1]}」" for k in missing)
        raise ValidationFailed(f"缺少必需材料：{names}，请上传后再提交", fields=missing)


def _folder_signature(folder: Path) -> str:
    """Names, sizes and modification times of a process folder's files: cheap to take on
    every application, and it changes whenever a file does."""
    entries = []
    for path in sorted([*folder.glob("*.bpmn"), *folder.glob("*.dmn"), *folder.glob("forms/*.json")]):
        stat = path.stat()
        entries.append((path.name, stat.st_size, stat.st_mtime_ns))
    return json.dumps(entries)


_FORM_TEXT: dict[tuple[Path, int], str] = {}


def _read_cached(path: Path) -> str:
    key = (path, path.stat().st_mtime_ns)
    text = _FORM_TEXT.get(key)
    if text is None:
        text = _FORM_TEXT[key] = path.read_text(encoding="utf-8")
    return text


__all__ = ["Applicant", "ApplicationService", "check_materials"]
