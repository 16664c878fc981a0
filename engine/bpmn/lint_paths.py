"""Lint rule: every element of a process can reach an end event.

Walks sequence flows backwards from the end events of each container (process or embedded
subprocess); boundary events count as exits of the activity they are attached to, and a link
throw event continues at the link catch event of the same name. An element that cannot reach
an end (a dead end, or a loop without a way out) would leave cases waiting for ever. Elements
no path from a start event reaches are reported as warnings.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from lxml import etree

B = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
NOT_NODES = {"sequenceFlow", "laneSet", "textAnnotation", "association", "dataObject", "dataObjectReference",
             "dataStoreReference", "documentation", "extensionElements", "ioSpecification", "property",
             "group", "category", "dataInputAssociation", "dataOutputAssociation"}


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _link_name(el: etree._Element) -> str | None:
    link = el.find(f"{B}linkEventDefinition")
    return (link.get("name") or link.get("id")) if link is not None else None


def _edges(container: etree._Element) -> tuple[dict[str, etree._Element], dict[str, set[str]]]:
    nodes = {c.get("id"): c for c in container if isinstance(c.tag, str) and c.get("id")
             and _local(c) not in NOT_NODES and c.get("triggeredByEvent") != "true"}
    forward: dict[str, set[str]] = defaultdict(set)
    for flow in container.findall(f"{B}sequenceFlow"):
        if flow.get("sourceRef") in nodes and flow.get("targetRef") in nodes:
            forward[flow.get("sourceRef")].add(flow.get("targetRef"))
    catches = {}
    for node_id, node in nodes.items():
        attached = node.get("attachedToRef")
        if _local(node) == "boundaryEvent" and attached in nodes:
            forward[attached].add(node_id)
        if _local(node) == "intermediateCatchEvent" and _link_name(node):
            catches[_link_name(node)] = node_id
    for node_id, node in nodes.items():
        if _local(node) == "intermediateThrowEvent" and _link_name(node) in catches:
            forward[node_id].add(catches[_link_name(node)])
    return nodes, forward


def _closure(seeds: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(seeds), list(seeds)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _is_end(node: etree._Element, exits: set[str] | None = None) -> bool:
    """An end event, a compensation handler, or (BPMN's implicit end) a non-gateway element with
    no outgoing flow; a gateway without outgoing flows leads nowhere."""
    kind = _local(node)
    if kind == "endEvent":
        return True
    if exits is not None and node.get("id") not in exits and not kind.endswith("Gateway"):
        return True
    # compensation handlers and boundary compensation events end their own branch
    return node.get("isForCompensation") == "true" or (
        kind == "boundaryEvent" and node.find(f"{B}compensateEventDefinition") is not None)


def check(rules: Any, container: etree._Element) -> None:
    """Report elements of ``container`` (and its embedded subprocesses) that cannot reach an end."""
    nodes, forward = _edges(container)
    backward: dict[str, set[str]] = defaultdict(set)
    for src, targets in forward.items():
        for tgt in targets:
            backward[tgt].add(src)
    exits = {src for src, targets in forward.items() if targets}
    ends = {i for i, n in nodes.items() if _is_end(n, exits)}
    finishing = _closure(ends, backward)
    for node_id, node in nodes.items():
        if node_id not in finishing:
            rules.error(node, "no path from this element reaches an end (a gateway without exits, or a "
                              "loop without a way out)", element_id=node_id, code="no_path_to_end")
    starts = {i for i, n in nodes.items() if _local(n) == "startEvent"}
    if starts:
        catches = {i for i, n in nodes.items() if _local(n) == "intermediateCatchEvent" and _link_name(n)}
        reached = _closure(starts | catches, forward)
        for node_id, node in nodes.items():
            if (node_id not in reached and _local(node) != "boundaryEvent"
                    and node.get("isForCompensation") != "true"):
                rules.warning(node, "no path from a start event reaches this element", element_id=node_id,
                              code="unreachable_element")
    for child in container:
        if isinstance(child.tag, str) and _local(child) in ("subProcess", "transaction", "adHocSubProcess"):
            if _local(child) != "adHocSubProcess":
                check(rules, child)
