"""A JSON description of a form that a browser page can render: ordered fields, widgets, labels.

Fields follow ``x-ui.order`` of their object (the top level or any nested object), then the
schema's own order. A field written as ``{"$ref": component, "title": …}`` merges the component
under the field: the field's keys and ``x-ui`` hints win.
"""

from __future__ import annotations

from typing import Any, Sequence

from forms.walk import MAX_DEPTH, Node, alternatives, expand, first, ui_hints

CONSTRAINTS = ("minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
               "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "uniqueItems")
_WIDGETS_BY_FORMAT = {"date": "date", "date-time": "datetime", "time": "time", "email": "email"}


def _type(nodes: Sequence[Node]) -> tuple[str | None, bool]:
    """(JSON type, nullable) of a field, inferred when the schema names none."""
    declared = first(nodes, "type")
    kinds = declared if isinstance(declared, list) else [declared] if isinstance(declared, str) else []
    nullable = "null" in kinds
    kinds = [k for k in kinds if k != "null"]
    if kinds:
        return str(kinds[0]), nullable
    if first(nodes, "properties") is not None:
        return "object", nullable
    if first(nodes, "items") is not None or first(nodes, "prefixItems") is not None:
        return "array", nullable
    values = first(nodes, "enum")
    if isinstance(values, list) and values:
        kinds_by_class = {str: "string", bool: "boolean", int: "integer", float: "number"}
        return kinds_by_class.get(type(values[0])), nullable
    return None, nullable


def _options(nodes: Sequence[Node], hints: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Choices as ``{"value", "label"}``: enum + ``x-ui.enumNames``, or oneOf/anyOf const+title."""
    values = first(nodes, "enum")
    if isinstance(values, list):
        names = hints.get("enumNames")
        names = names if isinstance(names, list) and len(names) == len(values) else [str(v) for v in values]
        return [{"value": v, "label": str(n)} for v, n in zip(values, names, strict=True)]
    for key in ("oneOf", "anyOf"):
        branches = first(nodes, key)
        if isinstance(branches, list) and branches and all(
                isinstance(b, dict) and "const" in b for b in branches):
            return [{"value": b["const"], "label": str(b.get("title", b["const"]))} for b in branches]
    return None


def _widget(kind: str | None, nodes: Sequence[Node], options: list[Any] | None,
            item: dict[str, Any] | None) -> str:
    if options is not None:
        return "radio" if len(options) <= 3 else "select"
    fmt = first(nodes, "format")
    if kind == "string":
        if isinstance(fmt, str) and fmt in _WIDGETS_BY_FORMAT:
            return _WIDGETS_BY_FORMAT[fmt]
        longest = first(nodes, "maxLength")
        return "textarea" if isinstance(longest, int) and longest > 200 else "text"
    if kind == "array" and item is not None:
        if item.get("options") is not None and first(nodes, "uniqueItems"):
            return "checkboxes"
        return "table" if item.get("type") == "object" else "list"
    by_type = {"boolean": "switch", "number": "number", "integer": "number", "object": "group"}
    return by_type.get(kind or "", "text")


def _component(nodes: Sequence[Node]) -> str | None:
    """The ``$id`` of the shared component the field is built on, if any."""
    for node in nodes[1:]:
        uri = node.schema.get("$id") if isinstance(node.schema, dict) else None
        if isinstance(uri, str) and "/components/" in uri:
            return uri
    return None


def _object_fields(nodes: Sequence[Node], path: str, depth: int) -> list[dict[str, Any]]:
    props: dict[str, list[Node]] = {}
    required: set[str] = set()
    certain = len(nodes)  # required only counts from schemas that surely apply, not anyOf branches
    for index, node in enumerate([*nodes, *alternatives(nodes)]):
        s = node.schema
        if not isinstance(s, dict):
            continue
        if isinstance(s.get("properties"), dict):
            for name, sub in s["properties"].items():
                props.setdefault(name, []).append(node.sub(sub))
        if index < certain and isinstance(s.get("required"), list):
            required.update(n for n in s["required"] if isinstance(n, str))
    order = ui_hints(nodes).get("order")
    ordered = [n for n in order if isinstance(n, str) and n in props] if isinstance(order, list) else []
    ordered += [n for n in props if n not in ordered]
    fields = []
    for name in ordered:
        sub_nodes = [x for node in props[name] for x in expand(node)]
        spec = field_spec(sub_nodes, f"{path}.{name}" if path else name, depth + 1)
        fields.append({"name": name, **spec, "required": name in required})
    return fields


def field_spec(nodes: Sequence[Node], path: str, depth: int = 0) -> dict[str, Any]:
    """The render description of one field (``nodes``: its expanded schemas, outer first)."""
    hints = ui_hints(nodes)
    kind, nullable = _type(nodes)
    title = hints.get("label") or first(nodes, "title")
    spec: dict[str, Any] = {"path": path, "type": kind, "title": title if isinstance(title, str) else ""}
    description = first(nodes, "description")
    if isinstance(description, str):
        spec["description"] = description
    options = _options(nodes, hints)
    if options is not None:
        spec["options"] = options
    item: dict[str, Any] | None = None
    if depth >= MAX_DEPTH:
        spec["truncated"] = True
    elif kind == "object":
        spec["fields"] = _object_fields(nodes, path, depth)
    elif kind == "array":
        items = first(nodes, "items")
        owner = next((n for n in nodes if isinstance(n.schema, dict) and "items" in n.schema), None)
        if isinstance(items, dict) and owner is not None:
            item = field_spec(expand(owner.sub(items)), f"{path}.*", depth + 1)
            names = hints.get("enumNames")  # checkbox labels written on the array, as forms do
            if item.get("options") and isinstance(names, list) and len(names) == len(item["options"]):
                item["options"] = [{**o, "label": str(n)} for o, n in zip(item["options"], names, strict=True)]
            spec["item"] = item
    spec["widget"] = str(hints.get("widget") or _widget(kind, nodes, options, item))
    constraints = {k: first(nodes, k) for k in CONSTRAINTS if first(nodes, k) is not None}
    if constraints:
        spec["constraints"] = constraints
    for key, out in (("placeholder", "placeholder"), ("help", "help"), ("unit", "unit")):
        if isinstance(hints.get(key), str):
            spec[out] = hints[key]
    extra = {k: v for k, v in hints.items() if k not in {"widget", "label", "placeholder", "help", "unit",
                                                        "order", "enumNames", "formatMessage"}}
    if extra:
        spec["hints"] = extra
    default = first(nodes, "default")
    if default is not None:
        spec["default"] = default
    if nullable:
        spec["nullable"] = True
    component = _component(nodes)
    if component:
        spec["component"] = component
    return spec


def ui_spec(root: Node) -> dict[str, Any]:
    """``{"title", "description", "fields": [...]}`` for the form at ``root``."""
    nodes = expand(root)
    title, description = first(nodes, "title"), first(nodes, "description")
    return {
        "title": title if isinstance(title, str) else "",
        "description": description if isinstance(description, str) else "",
        "fields": _object_fields(nodes, "", 0) if _type(nodes)[0] in {"object", None} else [],
    }


__all__ = ["CONSTRAINTS", "field_spec", "ui_spec"]
