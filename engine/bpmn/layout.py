"""A diagram (BPMN DI) for models that have none, so the browser modeler can draw them.

The shipped models are written by hand and carry no layout. ``with_layout`` adds one when a
document has no shapes at all (a document with any layout is returned unchanged): elements
are placed left to right in layers along the sequence flows (back edges of loops ignored),
top to bottom by lane, boundary events on the lower edge of their activity. Embedded
subprocesses are drawn collapsed with a diagram of their own, as bpmn-js expects.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import count

from lxml import etree

from engine.bpmn.parser import BPMN_NS, parse_xml

B = f"{{{BPMN_NS}}}"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
COL, ROW, LEFT, PARTICIPANT_HEADER, LANE_PAD = 160, 110, 60, 30, 20
SKIP = {"sequenceFlow", "laneSet", "boundaryEvent", "textAnnotation", "association", "dataObject",
        "dataObjectReference", "dataStoreReference", "documentation", "extensionElements", "ioSpecification",
        "property", "group", "category", "dataInputAssociation", "dataOutputAssociation"}
SUBPROCESSES = {"subProcess", "transaction", "adHocSubProcess"}


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _size(el: etree._Element) -> tuple[int, int]:
    kind = _local(el)
    if kind.endswith("Event"):
        return 36, 36
    if kind.endswith("Gateway"):
        return 50, 50
    return 100, 80


@dataclass
class _Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


def has_layout(root: etree._Element) -> bool:
    return root.find(f".//{{{BPMNDI}}}BPMNShape") is not None


def with_layout(text: str) -> str:
    """``text`` with a generated diagram when it has none; unchanged otherwise."""
    root = parse_xml(text.encode("utf-8"), "model.bpmn")
    if has_layout(root) or root.find(f"{B}process") is None:
        return text
    ids = count(1)
    for old in root.findall(f"{{{BPMNDI}}}BPMNDiagram"):
        root.remove(old)
    collaboration = root.find(f"{B}collaboration")
    processes = {p.get("id"): p for p in root.findall(f"{B}process")}
    plane = _diagram(root, collaboration.get("id") if collaboration is not None else next(iter(processes)), ids)
    top = 40.0
    participants = collaboration.findall(f"{B}participant") if collaboration is not None else []
    drawn = set()
    for participant in participants:
        proc = processes.get(participant.get("processRef"))
        if proc is None:
            continue
        boxes, height, width = _container(root, proc, plane, 40 + PARTICIPANT_HEADER, top, ids, lanes=True)
        _shape(plane, participant, _Box(40, top, width + PARTICIPANT_HEADER, height), ids, horizontal=True)
        drawn.add(proc.get("id"))
        top += height + 40
    for pid, proc in processes.items():
        if pid not in drawn and (not participants or pid == plane.get("bpmnElement")):
            _container(root, proc, plane, 40, top, ids, lanes=False)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")


def _diagram(root: etree._Element, element_id: str, ids: count) -> etree._Element:
    diagram = etree.SubElement(root, f"{{{BPMNDI}}}BPMNDiagram", id=f"BPMNDiagram_{next(ids)}",
                               nsmap={"bpmndi": BPMNDI, "dc": DC, "di": DI})
    return etree.SubElement(diagram, f"{{{BPMNDI}}}BPMNPlane", id=f"BPMNPlane_{next(ids)}", bpmnElement=element_id)


def _shape(plane: etree._Element, el: etree._Element, box: _Box, ids: count, **flags: bool) -> None:
    attrs = {"id": f"{el.get('id')}_di", "bpmnElement": el.get("id")}
    for name, value in flags.items():
        attrs["isHorizontal" if name == "horizontal" else "isExpanded"] = "true" if value else "false"
    shape = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNShape", attrs)
    etree.SubElement(shape, f"{{{DC}}}Bounds", x=f"{box.x:g}", y=f"{box.y:g}", width=f"{box.w:g}",
                     height=f"{box.h:g}")


def _edge(plane: etree._Element, flow: etree._Element, points: list[tuple[float, float]]) -> None:
    edge = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNEdge", id=f"{flow.get('id')}_di", bpmnElement=flow.get("id"))
    for x, y in points:
        etree.SubElement(edge, f"{{{DI}}}waypoint", x=f"{x:g}", y=f"{y:g}")


def _lane_of(proc: etree._Element) -> tuple[list[etree._Element], dict[str, int]]:
    lanes = proc.findall(f"{B}laneSet/{B}lane")
    index = {}
    for i, lane in enumerate(lanes):
        for ref in lane.findall(f"{B}flowNodeRef"):
            index[(ref.text or "").strip()] = i
    return lanes, index


def _layers(nodes: dict[str, etree._Element], flows: list[etree._Element]) -> dict[str, int]:
    succ: dict[str, list[str]] = defaultdict(list)
    for f in flows:
        succ[f.get("sourceRef")].append(f.get("targetRef"))
    incoming = {f.get("targetRef") for f in flows}
    roots = [n for n, el in nodes.items() if _local(el) == "startEvent"] + [n for n in nodes if n not in incoming]
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    order: list[str] = []

    def visit(start: str) -> None:  # iterative DFS: finds back edges and a post-order
        stack = [(start, iter(succ[start]))]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            for nxt in children:
                if nxt not in nodes:
                    continue
                if state.get(nxt) == 1:
                    back.add((node, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(succ[nxt])))
                    break
            else:
                state[node] = 2
                order.append(node)
                stack.pop()

    for node in [*roots, *nodes]:
        if node not in state:
            visit(node)
    layer = dict.fromkeys(nodes, 0)
    for node in reversed(order):  # topological order of the graph without back edges
        for nxt in succ[node]:
            if nxt in nodes and (node, nxt) not in back:
                layer[nxt] = max(layer[nxt], layer[node] + 1)
    return layer


def _container(root: etree._Element, container: etree._Element, plane: etree._Element, left: float, top: float,
               ids: count, *, lanes: bool) -> tuple[dict[str, _Box], float, float]:
    """Place one process or subprocess; returns the boxes, the height and width used."""
    nodes = {c.get("id"): c for c in container if isinstance(c.tag, str) and c.get("id") and _local(c) not in SKIP}
    flows = [f for f in container.findall(f"{B}sequenceFlow")]
    layer = _layers(nodes, flows)
    lane_list, lane_index = _lane_of(container) if lanes else ([], {})
    bands = max(1, len(lane_list))
    rows: dict[tuple[int, int], int] = defaultdict(int)
    place: dict[str, tuple[int, int]] = {}
    for node_id in sorted(nodes, key=lambda n: layer[n]):
        band = lane_index.get(node_id, 0)
        key = (band, layer[node_id])
        place[node_id] = (band, rows[key])
        rows[key] += 1
    band_rows = [max([r for (b, _), r in rows.items() if b == band] or [1]) for band in range(bands)]
    band_top, y = [], top
    for count_rows in band_rows:
        band_top.append(y)
        y += count_rows * ROW + 2 * LANE_PAD
    boxes: dict[str, _Box] = {}
    for node_id, el in nodes.items():
        band, row = place[node_id]
        w, h = _size(el)
        cx = left + LEFT + layer[node_id] * COL + 50
        cy = band_top[band] + LANE_PAD + row * ROW + 40
        boxes[node_id] = _Box(cx - w / 2, cy - h / 2, w, h)
        if _local(el) in SUBPROCESSES:
            _shape(plane, el, boxes[node_id], ids, expanded=False)
            _container(root, el, _diagram(root, node_id, ids), 40, 40, ids, lanes=False)
        else:
            _shape(plane, el, boxes[node_id], ids)
    attached: dict[str, int] = defaultdict(int)
    for event in container.findall(f"{B}boundaryEvent"):
        host = boxes.get(event.get("attachedToRef") or "")
        if host is None or not event.get("id"):
            continue
        i = attached[event.get("attachedToRef")]
        attached[event.get("attachedToRef")] += 1
        boxes[event.get("id")] = _Box(host.x + host.w - 28 - i * 40, host.y + host.h - 18, 36, 36)
        _shape(plane, event, boxes[event.get("id")], ids)
    for flow in flows:
        src, tgt = boxes.get(flow.get("sourceRef") or ""), boxes.get(flow.get("targetRef") or "")
        if src is None or tgt is None or not flow.get("id"):
            continue
        _edge(plane, flow, _route(src, tgt))
    width = (max(layer.values(), default=0) + 1) * COL + 2 * LEFT
    for lane, lane_top, count_rows in zip(lane_list, band_top, band_rows, strict=False):
        _shape(plane, lane, _Box(left, lane_top, width, count_rows * ROW + 2 * LANE_PAD), ids, horizontal=True)
    return boxes, y - top, width


def _route(src: _Box, tgt: _Box) -> list[tuple[float, float]]:
    if tgt.x > src.x + src.w:  # forward: right side to left side, with an elbow between
        start, end = (src.x + src.w, src.cy), (tgt.x, tgt.cy)
        if abs(src.cy - tgt.cy) < 1:
            return [start, end]
        mid = (start[0] + end[0]) / 2
        return [start, (mid, start[1]), (mid, end[1]), end]
    below = max(src.y + src.h, tgt.y + tgt.h) + 25  # backwards (a loop): under both elements
    return [(src.cx, src.y + src.h), (src.cx, below), (tgt.cx, below), (tgt.cx, tgt.y + tgt.h)]


__all__ = ["has_layout", "with_layout"]
