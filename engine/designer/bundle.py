"""Assemble the file bundle of a new version from what the designer sent and the latest version.

The modeler page sends only the BPMN XML it exported. The forms and DMN tables the process needs
already belong to its latest version, so they are carried over; files sent along replace
theirs by name. The BPMN file replaces, and keeps the name of, the latest version's BPMN file that defines the
same process, so deploying unchanged XML gives the same content hash (and so the same version);
other BPMN files of the bundle (processes it calls) are carried over like the forms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.bpmn.parser import BPMN_NS, files_from_json
from engine.designer.model_input import ModelXml, NotAModel, check_file_name, read_model
from engine.errors import GovflowError, ValidationFailed
from engine.store.models import ProcessDefinition

PROCESS_ID_MAX = 128


@dataclass
class Upload:
    """What one request carries: the BPMN XML (optional when only forms/DMN change) and other files."""

    bpmn: str | bytes | None = None
    files: dict[str, str] = field(default_factory=dict)
    process_id: str | None = None


@dataclass
class Assembled:
    process_id: str
    files: dict[str, str]
    previous: ProcessDefinition | None
    name: str = ""


async def latest_version(process_id: str) -> ProcessDefinition | None:
    return await ProcessDefinition.filter(process_id=process_id).order_by("-version").first()


def _replaced(previous_files: dict[str, str], model: ModelXml, process_id: str) -> tuple[str, set[str]]:
    """The file name the uploaded BPMN takes and the previous BPMN files it replaces: those that
    define one of its processes (other BPMN files, e.g. of called processes, stay)."""
    ours = {p.get("id") for p in model.root.iter(f"{{{BPMN_NS}}}process")}
    replaced: list[str] = []
    for name, text in sorted(previous_files.items()):
        if not name.endswith(".bpmn"):
            continue
        try:
            theirs = {p.get("id") for p in read_model(text, name).root.iter(f"{{{BPMN_NS}}}process")}
        except GovflowError:
            theirs = set()
        if theirs & ours:
            replaced.append(name)
    return (replaced[0] if replaced else f"{process_id}.bpmn"), set(replaced)


async def assemble(upload: Upload) -> Assembled:
    """The complete bundle of the version to deploy; hostile files are refused on the way."""
    model: ModelXml | None = None
    if upload.bpmn is not None:
        model = read_model(upload.bpmn, "bpmn")
        if model.kind != "bpmn":
            raise NotAModel("请上传 BPMN 流程模型（DMN 决策表放在 files 中随流程部署）")
    extra = {}
    for name, text in upload.files.items():
        check_file_name(name)
        if not isinstance(text, str):
            raise ValidationFailed("文件内容应为文本", fields={f"files.{name}": "应为字符串"})
        if not name.startswith("forms/"):
            checked = read_model(text, name)
            if checked.kind != ("dmn" if name.endswith(".dmn") else "bpmn"):
                raise NotAModel(fields={name: "文件扩展名与内容不符"})
        extra[name] = text
    process_id = upload.process_id
    if model is not None:
        ids = model.process_ids()
        if not ids:
            raise NotAModel("BPMN 中没有可执行的流程（isExecutable=\"true\"）", fields={"bpmn": "没有可执行流程"})
        if process_id and process_id not in ids:
            raise ValidationFailed("process_id 与 BPMN 中的流程不符", fields={"process_id": f"BPMN 定义的是 {ids[0]}"})
        process_id = process_id or ids[0]
    if not process_id or len(process_id) > PROCESS_ID_MAX:
        raise ValidationFailed("请提供 BPMN 流程模型", fields={"bpmn": "缺少 BPMN（或已部署流程的 process_id）"})
    previous = await latest_version(process_id)
    files = files_from_json(previous.files) if previous is not None else {}
    if model is None and previous is None:
        raise ValidationFailed(f"流程 {process_id} 尚未部署，请提供 BPMN", fields={"bpmn": "缺少 BPMN"})
    if model is not None:
        name, replaced = _replaced(files, model, process_id)
        files = {k: v for k, v in files.items() if k not in replaced}
        files[name] = model.text
    files.update(extra)
    title = previous.name if previous is not None else ""
    if model is not None:
        proc = next((p for p in model.root.iter(f"{{{BPMN_NS}}}process") if p.get("id") == process_id), None)
        title = title or ((proc.get("name") or "") if proc is not None else "")
    return Assembled(process_id=process_id, files=files, previous=previous, name=title)


__all__ = ["Assembled", "Upload", "assemble", "latest_version"]
