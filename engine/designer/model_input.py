"""Model files as they arrive from the designer: hostile input refused before anything else.

Each refusal is its own error class with a stable code, so the page (and a test) can tell a
DOCTYPE bomb from a file that is merely not XML. The XML parser itself runs with entity
resolution and network access off (``engine.bpmn.parser.parse_xml``); a DOCTYPE alone refuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from engine.bpmn.parser import BPMN_NS, MAX_MODEL_BYTES, model_kind, parse_xml
from engine.errors import ModelError, TooLarge

# fullmatch, ASCII only: `$` alone would let "a.bpmn\n" through, and \w would take any script
FILE_NAME = re.compile(r"(?:[A-Za-z0-9][\w.-]{0,99}\.(?:bpmn|dmn)|forms/[A-Za-z0-9][\w.-]{0,99}\.json)", re.ASCII)
MAX_FILES = 50


class DoctypeForbidden(ModelError):
    code = "doctype_forbidden"
    default_message = "模型中不允许 DOCTYPE 或实体声明（可能是 XXE 或实体膨胀攻击）"


class NotXml(ModelError):
    code = "not_xml"
    default_message = "内容不是格式正确的 UTF-8 XML"


class NotAModel(ModelError):
    code = "not_bpmn_or_dmn"
    default_message = "内容不是 BPMN 或 DMN 文档"


class ModelTooLarge(TooLarge):
    code = "payload_too_large"
    default_message = f"模型文件过大（上限 {MAX_MODEL_BYTES // 1_000_000} MB）"


class BadFileName(ModelError):
    code = "invalid_file_name"
    default_message = "文件名无效：只接受 名称.bpmn、名称.dmn 和 forms/名称.json"


@dataclass
class ModelXml:
    """A checked model document: its kind ('bpmn' | 'dmn'), parsed root and text."""

    kind: str
    root: etree._Element
    text: str

    def process_ids(self) -> list[str]:
        """Executable process ids, the one no call activity of this file calls first."""
        procs = [p for p in self.root.findall(f"{{{BPMN_NS}}}process")
                 if p.get("id") and p.get("isExecutable", "true") == "true"]
        called = {c.get("calledElement") for c in self.root.iter(f"{{{BPMN_NS}}}callActivity")}
        return [p.get("id") for p in sorted(procs, key=lambda p: p.get("id") in called)]


def read_model(data: bytes | str, name: str = "model") -> ModelXml:
    """Check and parse one uploaded BPMN/DMN document; raises one of the errors above."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_MODEL_BYTES:
        raise ModelTooLarge(fields={name: f"超过 {MAX_MODEL_BYTES} 字节"})
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw[:1024]:
        raise NotXml("模型须为 UTF-8 文本（收到 UTF-16 或二进制内容）", fields={name: "不是 UTF-8 文本"})
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotXml(fields={name: "不是有效的 UTF-8 文本"}) from None
    try:
        root = parse_xml(raw, name)
    except ModelError as exc:
        if "DOCTYPE" in exc.message:
            raise DoctypeForbidden(fields={name: "包含 DOCTYPE/ENTITY 声明"}) from None
        raise NotXml(fields={name: exc.message.removeprefix(f"{name}: ")}) from None
    kind = model_kind(root)
    if kind == "other":
        raise NotAModel(fields={name: f"根元素为 <{etree.QName(root).localname}>"})
    return ModelXml(kind=kind, root=root, text=text)


def check_file_name(name: str) -> str:
    if not isinstance(name, str) or not FILE_NAME.fullmatch(name) or ".." in name:
        raise BadFileName(fields={"files": f"文件名 {str(name)[:120]!r} 无效"})
    return name


__all__ = ["BadFileName", "DoctypeForbidden", "ModelTooLarge", "ModelXml", "NotAModel", "NotXml",
           "check_file_name", "read_model"]
