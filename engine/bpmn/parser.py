"""Load BPMN and DMN files safely and turn them into SpiffWorkflow specs.

A *bundle* is the set of files one process needs (its BPMN files, the DMN tables it calls and
the forms its user tasks name). Its content hash keys an immutable definition version; the
parsed specs are cached per hash so cases never re-parse a model they already know.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.specs import BpmnProcessSpec
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from engine.bpmn.timers import quote_bare_timers
from engine.errors import ModelError

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DMN_NAMESPACES = {
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "https://www.omg.org/spec/DMN/20230324/MODEL/",
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
}
MAX_MODEL_BYTES = 2_000_000

_XML_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
    huge_tree=False, remove_comments=False,
)


def parse_xml(data: bytes, filename: str = "<model>") -> etree._Element:
    """Parse XML with entity resolution and network access off; refuse any DOCTYPE.

    A DOCTYPE is never needed by BPMN or DMN and is the carrier of XXE and entity-expansion
    attacks, so its presence alone refuses the file.
    """
    if len(data) > MAX_MODEL_BYTES:
        raise ModelError(f"{filename}: file is larger than {MAX_MODEL_BYTES} bytes")
    if not data.strip():
        raise ModelError(f"{filename}: file is empty")
    head = data[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in data.lower():
        raise ModelError(f"{filename}: DOCTYPE and entity declarations are not allowed")
    try:
        root = etree.fromstring(data, _XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise ModelError(f"{filename}: not well-formed XML ({exc.msg}, line {exc.lineno})") from None
    if root is None:
        raise ModelError(f"{filename}: not well-formed XML")
    if root.getroottree().docinfo.doctype:
        raise ModelError(f"{filename}: DOCTYPE and entity declarations are not allowed")
    return root


def model_kind(root: etree._Element) -> str:
    """'bpmn', 'dmn' or 'other', from the root element's namespace."""
    qname = etree.QName(root)
    if qname.localname == "definitions" and qname.namespace == BPMN_NS:
        return "bpmn"
    if qname.localname == "definitions" and qname.namespace in DMN_NAMESPACES:
        return "dmn"
    return "other"


@dataclass
class ProcessBundle:
    """Parsed specs of one process plus the source files they came from."""

    process_id: str
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec]
    files: dict[str, str]
    content_hash: str
    lanes: dict[str, str | None] = field(default_factory=dict)  # task spec name -> lane name
    forms: dict[str, str] = field(default_factory=dict)  # task spec name -> form file name

    @property
    def all_specs(self) -> dict[str, BpmnProcessSpec]:
        return {self.process_id: self.spec, **self.subprocess_specs}


def content_hash(files: dict[str, str]) -> str:
    """Hash of the bundle's files, independent of the order they were given in."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(files[name].encode())
        digest.update(b"\0")
    return digest.hexdigest()


def new_parser(validate: bool = True) -> SpiffBpmnParser:
    return SpiffBpmnParser(validator=VALIDATOR if validate else None)


def add_files(parser: SpiffBpmnParser, files: dict[str, str]) -> list[str]:
    """Add BPMN and DMN files to a parser; returns the BPMN file names. Other files are ignored."""
    bpmn_files = []
    for name in sorted(files):
        if not (name.endswith(".bpmn") or name.endswith(".dmn") or name.endswith(".xml")):
            continue
        root = parse_xml(files[name].encode(), name)
        kind = model_kind(root)
        if kind == "bpmn":
            quote_bare_timers(root)  # Camunda-style bare ISO 8601 timers run as written
            parser.add_bpmn_xml(root, filename=name)
            bpmn_files.append(name)
        elif kind == "dmn":
            parser.add_dmn_xml(root, filename=name)
        else:
            raise ModelError(f"{name}: not a BPMN or DMN document (root element {root.tag})")
    return bpmn_files


def main_process_id(parser: SpiffBpmnParser) -> str:
    """The process a case starts: the one executable process no call activity calls."""
    ids = parser.get_process_ids()
    if not ids:
        raise ModelError("no process found in the model")
    called = set(parser.get_process_dependencies())
    candidates = [pid for pid in ids if pid not in called]
    executable = [pid for pid in candidates if parser.get_process_parser(pid).process_executable]
    pool = executable or candidates or ids
    return pool[0]


def build_bundle(files: dict[str, str], process_id: str | None = None) -> ProcessBundle:
    """Parse a bundle. Parser failures become ``ModelError`` with a one-line reason."""
    from engine.bpmn.errors import describe_parse_error

    parser = new_parser()
    try:
        add_files(parser, files)
        pid = process_id or main_process_id(parser)
        spec = parser.get_spec(pid)
        subprocess_specs = parser.get_subprocess_specs(pid)
    except ModelError:
        raise
    except Exception as exc:  # Spiff raises TypeError/KeyError/... on malformed models
        raise ModelError(describe_parse_error(exc)) from None
    lanes: dict[str, str | None] = {}
    forms: dict[str, str] = {}
    for sp in [spec, *subprocess_specs.values()]:
        if sp is None:
            continue
        for name, task_spec in sp.task_specs.items():
            lane = getattr(task_spec, "lane", None)
            if lane is not None:
                lanes[name] = lane
            form = (getattr(task_spec, "extensions", None) or {}).get("properties", {}).get(
                "formJsonSchemaFilename")
            if form:
                forms[name] = form
    return ProcessBundle(
        process_id=pid, spec=spec, subprocess_specs={k: v for k, v in subprocess_specs.items() if v},
        files=dict(files), content_hash=content_hash(files), lanes=lanes, forms=forms,
    )


def read_folder(folder: Path) -> dict[str, str]:
    """Files of a process folder: *.bpmn, *.dmn at top level and forms/*.json."""
    files: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in {".bpmn", ".dmn"}:
            files[path.name] = path.read_text(encoding="utf-8")
    forms_dir = folder / "forms"
    if forms_dir.is_dir():
        for path in sorted(forms_dir.glob("*.json")):
            files[f"forms/{path.name}"] = path.read_text(encoding="utf-8")
    return files


class BundleCache:
    """Parsed bundles by content hash; parsing is the costly part of loading a case."""

    def __init__(self, size: int = 256) -> None:
        self._items: OrderedDict[str, ProcessBundle] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def get(self, key: str) -> ProcessBundle | None:
        with self._lock:
            bundle = self._items.get(key)
            if bundle is not None:
                self._items.move_to_end(key)
            return bundle

    def put(self, bundle: ProcessBundle) -> ProcessBundle:
        key = f"{bundle.content_hash}:{bundle.process_id}"
        with self._lock:
            self._items[key] = bundle
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return bundle

    def load(self, files: dict[str, str], process_id: str) -> ProcessBundle:
        key = f"{content_hash(files)}:{process_id}"
        return self.get(key) or self.put(build_bundle(files, process_id))


def files_to_json(files: dict[str, str]) -> str:
    return json.dumps(files, ensure_ascii=False, sort_keys=True)


def files_from_json(text: str | dict[str, Any]) -> dict[str, str]:
    return dict(json.loads(text) if isinstance(text, str) else text)


__all__ = [
    "ProcessBundle", "BundleCache", "build_bundle", "parse_xml", "model_kind", "content_hash",
    "read_folder", "new_parser", "add_files", "main_process_id", "full_tag",
]


def files_for_model(path: Path) -> dict[str, str]:
    """The bundle of one model file: the file, the DMN files beside it and its folder's forms.

    A folder stands for its process: all its BPMN and DMN files and forms.
    """
    if path.is_dir():
        return read_folder(path)
    folder = path.parent
    files = {name: text for name, text in read_folder(folder).items() if not name.endswith(".bpmn")}
    files[path.name] = path.read_bytes().decode("utf-8")
    return files
