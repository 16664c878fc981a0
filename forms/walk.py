"""Find the schemas that describe one instance location, following ``$ref`` into components.

Validation errors only carry the innermost schema; messages and UI specs need the field as the
service form wrote it (its own ``title`` beside a ``$ref``), so both walk the schema themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

MAX_DEPTH = 16  # $ref / allOf hops followed from one node; stops recursive schemas


@dataclass(frozen=True)
class Node:
    """A (sub)schema together with the resolver that knows its base URI."""

    schema: Any
    resolver: Any  # referencing Resolver (its class is not public)

    def sub(self, schema: Any) -> "Node":
        """A subschema of this node; an ``$id`` inside it moves the base URI."""
        if isinstance(schema, dict) and isinstance(schema.get("$id"), str):
            return Node(schema, self.resolver.in_subresource(DRAFT202012.create_resource(schema)))
        return Node(schema, self.resolver)

    def follow(self) -> "Node | None":
        """The node this one's ``$ref`` points to, or None."""
        ref = self.schema.get("$ref") if isinstance(self.schema, dict) else None
        if not isinstance(ref, str):
            return None
        try:
            resolved = self.resolver.lookup(ref)
        except Unresolvable:
            return None
        return Node(resolved.contents, resolved.resolver)


def expand(node: Node, depth: int = 0) -> list[Node]:
    """The node, then what its ``$ref`` and ``allOf`` bring in: all apply at the same location.

    Outer first, so the first ``title`` found is the one the service form gave the field.
    """
    out = [node]
    if depth >= MAX_DEPTH or not isinstance(node.schema, dict):
        return out
    target = node.follow()
    if target is not None:
        out += expand(target, depth + 1)
    members = node.schema.get("allOf")
    if isinstance(members, list):
        for member in members:
            out += expand(node.sub(member), depth + 1)
    return out


def alternatives(nodes: Iterable[Node]) -> list[Node]:
    """Schemas that may apply (anyOf, oneOf, then, else): searched after the certain ones."""
    out: list[Node] = []
    for node in nodes:
        s = node.schema
        if not isinstance(s, dict):
            continue
        for key in ("anyOf", "oneOf"):
            if isinstance(s.get(key), list):
                out += [m for member in s[key] for m in expand(node.sub(member), 1)]
        for key in ("then", "else"):
            if isinstance(s.get(key), dict):
                out += expand(node.sub(s[key]), 1)
    return out


def _children(node: Node, key: str | int) -> list[Node]:
    s = node.schema
    if not isinstance(s, dict):
        return []
    if isinstance(key, int):
        prefix = s.get("prefixItems")
        if isinstance(prefix, list) and 0 <= key < len(prefix):
            return [node.sub(prefix[key])]
        return [node.sub(s["items"])] if isinstance(s.get("items"), dict) else []
    props = s.get("properties")
    if isinstance(props, dict) and key in props:
        return [node.sub(props[key])]
    found: list[Node] = []
    patterns = s.get("patternProperties")
    if isinstance(patterns, dict):
        for pattern, sub in patterns.items():
            try:
                if re.search(pattern, key):
                    found.append(node.sub(sub))
            except (re.error, TypeError):
                continue
    if not found and isinstance(s.get("additionalProperties"), dict):
        found.append(node.sub(s["additionalProperties"]))
    return found


def child(nodes: Sequence[Node], key: str | int) -> list[Node]:
    """The expanded schemas for member ``key`` of an instance described by ``nodes``."""
    out: list[Node] = []
    for node in [*nodes, *alternatives(nodes)]:
        for found in _children(node, key):
            out += expand(found)
    return out


def locate(root: Node, path: Iterable[str | int]) -> list[Node]:
    """The expanded schemas at instance ``path`` (empty when the schema says nothing there)."""
    nodes = expand(root)
    for key in path:
        if not nodes:
            break
        nodes = child(nodes, key)
    return nodes


def first(nodes: Iterable[Node], key: str) -> Any:
    """The first value of ``key`` among the nodes (outer wins), or None."""
    for node in nodes:
        if isinstance(node.schema, dict) and key in node.schema:
            return node.schema[key]
    return None


def ui_hints(nodes: Iterable[Node]) -> dict[str, Any]:
    """The ``x-ui`` dicts of the nodes merged, outer keys winning over the component's."""
    merged: dict[str, Any] = {}
    for node in reversed(list(nodes)):
        hints = node.schema.get("x-ui") if isinstance(node.schema, dict) else None
        if isinstance(hints, dict):
            merged.update(hints)
    return merged


__all__ = ["Node", "alternatives", "child", "expand", "first", "locate", "ui_hints"]
