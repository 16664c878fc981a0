"""Shared components (forms/components/*.json) and ``$ref`` resolution with ``referencing``.

A service form refers to a component by its ``$id``
(``https://govflow.example/forms/components/phone.json``) or, when the form has no ``$id`` of its
own, relatively (``components/phone.json``): such forms get a base URI under ``BASE_URI``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from jsonschema.exceptions import SchemaError
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from forms.keywords import FORMAT_CHECKER, FormValidator
from forms.walk import Node

BASE_URI = "https://govflow.example/forms/"
COMPONENT_BASE = BASE_URI + "components/"
COMPONENTS_DIR = Path(__file__).parent / "components"
_NOT_SCHEMAS = {"enum", "const", "examples", "default"}  # values here are data, not subschemas
_NAMED = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
DIALECTS = {"https://json-schema.org/draft/2020-12/schema", "https://json-schema.org/draft/2020-12/schema#"}


class FormSchemaError(ValueError):
    """A form or component that cannot be used: bad JSON, invalid JSON Schema, unresolvable $ref."""


@dataclass(frozen=True)
class CompiledSchema:
    """A checked form schema: its validator and the root node for walking fields."""

    schema: dict[str, Any]
    validator: Any
    root: Node


def parse_schema(text: str | bytes, source: str = "schema") -> dict[str, Any]:
    """JSON text -> schema dict, or FormSchemaError saying why not."""
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise FormSchemaError(f"{source} is not valid JSON ({exc})") from None
    if not isinstance(schema, dict):
        raise FormSchemaError(f"{source} is not a JSON Schema object")
    return schema


def _without_dialect(schema: Any, source: str, depth: int = 0, names: bool = False) -> Any:
    """A copy without ``$schema`` keys (2020-12 is the only dialect forms speak).

    jsonschema picks the stock validator class for any subschema that names its dialect, which
    would drop this package's keyword fixes inside components; so the key goes after checking.
    """
    if depth > 64:
        raise FormSchemaError(f"{source} is nested too deeply")
    if isinstance(schema, list):
        return [_without_dialect(item, source, depth + 1) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if names:  # properties, $defs…: keys are names, values are schemas
        return {key: _without_dialect(value, source, depth + 1) for key, value in schema.items()}
    dialect = schema.get("$schema")
    if dialect is not None and dialect not in DIALECTS:
        raise FormSchemaError(f"{source} uses $schema {dialect!r}; forms are JSON Schema 2020-12")
    return {key: value if key in _NOT_SCHEMAS or key.startswith("x-")
            else _without_dialect(value, source, depth + 1, key in _NAMED)
            for key, value in schema.items() if key != "$schema"}


def _check(schema: dict[str, Any], source: str) -> None:
    try:
        FormValidator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise FormSchemaError(f"{source} is not a valid JSON Schema ({exc.message}"
                              f"{' at ' + where if where else ''})") from None


class FormRegistry:
    """The shared components, loaded once, and compilation of forms that ``$ref`` them.

    ``components_dir`` defaults to the package's own ``forms/components``; when given, only that
    directory is loaded (every ``*.json`` in it; a file without ``$id`` gets
    ``COMPONENT_BASE + file name``).
    """

    def __init__(self, components_dir: str | Path | None = None) -> None:
        folder = Path(components_dir) if components_dir is not None else COMPONENTS_DIR
        self.components: dict[str, dict[str, Any]] = {}
        for path in sorted(folder.glob("*.json")):
            schema = parse_schema(path.read_text(encoding="utf-8"), f"component {path.name}")
            _check(schema, f"component {path.name}")
            schema = _without_dialect(schema, f"component {path.name}")
            uri = schema.get("$id") if isinstance(schema.get("$id"), str) else COMPONENT_BASE + path.name
            self.components[uri] = schema
        resources: list[tuple[str, Resource[Any]]] = [
            (uri, DRAFT202012.create_resource(schema)) for uri, schema in self.components.items()]
        self.registry: Registry[Any] = Registry().with_resources(resources).crawl()
        for uri, schema in self.components.items():
            problems = self.ref_problems(schema, uri)
            if problems:
                raise FormSchemaError(f"component {uri}: {'; '.join(problems)}")

    def component(self, name_or_uri: str) -> dict[str, Any]:
        """A component schema by ``$id`` or short name (``phone``, ``phone.json``)."""
        if "://" in name_or_uri:
            return self.components[name_or_uri]
        return self.components[COMPONENT_BASE + name_or_uri.removesuffix(".json") + ".json"]

    def _with_root(self, schema: dict[str, Any], base_uri: str) -> tuple[dict[str, Any], Registry[Any], str]:
        if not isinstance(schema.get("$id"), str):
            schema = {"$id": base_uri, **schema}
        uri = schema["$id"]
        return schema, self.registry.with_resource(uri, DRAFT202012.create_resource(schema)), uri

    def ref_problems(self, schema: dict[str, Any], base_uri: str = BASE_URI + "form.json") -> list[str]:
        """Every ``$ref`` in ``schema`` that does not resolve, as readable problems."""
        schema, registry, uri = self._with_root(schema, base_uri)
        problems: list[str] = []
        for ref, resolver in _refs(Node(schema, registry.resolver(uri)), 0):
            try:
                resolver.lookup(ref)
            except Unresolvable:
                problems.append(f"$ref '{ref}' does not resolve")
        return problems

    def compile(self, schema: dict[str, Any], base_uri: str = BASE_URI + "form.json") -> CompiledSchema:
        """Check ``schema`` (valid 2020-12, every ``$ref`` resolves) and build its validator."""
        if not isinstance(schema, dict):
            raise FormSchemaError("schema is not a JSON Schema object")
        _check(schema, "form")
        schema = _without_dialect(schema, "form")
        problems = self.ref_problems(schema, base_uri)
        if problems:
            raise FormSchemaError("form: " + "; ".join(problems))
        rooted, registry, uri = self._with_root(schema, base_uri)
        validator = FormValidator(rooted, registry=registry, format_checker=FORMAT_CHECKER)
        return CompiledSchema(schema=schema, validator=validator, root=Node(rooted, registry.resolver(uri)))


def _refs(node: Node, depth: int) -> Iterator[tuple[str, Any]]:
    """(``$ref`` value, resolver at that point) for every reference inside ``node``."""
    s = node.schema
    if depth > 64:
        return
    if isinstance(s, list):
        for item in s:
            yield from _refs(node.sub(item), depth + 1)
    elif isinstance(s, dict):
        if isinstance(s.get("$ref"), str):
            yield s["$ref"], node.resolver
        for key, value in s.items():
            if key not in _NOT_SCHEMAS and not key.startswith("x-") and isinstance(value, (dict, list)):
                yield from _refs(node.sub(value), depth + 1)


@lru_cache(maxsize=1)
def default_registry() -> FormRegistry:
    """The registry over the package's own components (built once per process)."""
    return FormRegistry()


__all__ = ["BASE_URI", "COMPONENT_BASE", "COMPONENTS_DIR", "CompiledSchema", "FormRegistry",
           "FormSchemaError", "default_registry", "parse_schema"]
