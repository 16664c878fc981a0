"""Load service forms: a schema that ``$ref``s shared components, its UI hints and its validation.

A service form is a JSON Schema 2020-12 object. Top-level ``x-ui.order`` orders the fields; each
field may carry ``x-ui`` (widget, label, placeholder, help, enumNames, formatMessage) and
``x-error``. ``$ref``s resolve to the components of the given registry (the default one otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from forms.registry import (
    BASE_URI,
    CompiledSchema,
    FormRegistry,
    FormSchemaError,
    default_registry,
    parse_schema,
)
from forms.ui import ui_spec
from forms.validation import collect_errors
from forms.walk import expand, ui_hints


@dataclass(frozen=True)
class Form:
    """A loaded, checked service form."""

    compiled: CompiledSchema
    name: str = "form.json"
    ui: dict[str, Any] = field(default_factory=dict)  # the top-level x-ui hints

    @property
    def schema(self) -> dict[str, Any]:
        """The form's JSON Schema (``$schema`` dropped: 2020-12 is implied)."""
        return self.compiled.schema

    @property
    def title(self) -> str:
        """The form's title, or its name when it has none."""
        title = self.schema.get("title")
        return title if isinstance(title, str) else self.name

    @property
    def order(self) -> list[str]:
        """Top-level field names in display order (``x-ui.order`` first, then schema order)."""
        return [f["name"] for f in self.ui_spec()["fields"]]

    def validate(self, data: Any) -> dict[str, str]:
        """Field path (``shareholders.0.name``) -> Chinese message; empty when valid. Never raises."""
        return collect_errors(self.compiled, data)

    def is_valid(self, data: Any) -> bool:
        """Whether ``data`` passes."""
        return not self.validate(data)

    def ui_spec(self) -> dict[str, Any]:
        """The JSON-serializable render description (see ``forms.ui``), component fields resolved."""
        return {"name": self.name, **ui_spec(self.compiled.root)}


def load_form(source: str | Path | dict[str, Any], registry: FormRegistry | None = None,
              name: str | None = None) -> Form:
    """A ``Form`` from a dict, JSON text (a str starting with ``{`` or ``[``) or a schema file path.

    Raises ``FormSchemaError`` when the file is unreadable, not JSON, not a valid JSON Schema or
    has a ``$ref`` that does not resolve. A form without ``$id`` gets
    ``https://govflow.example/forms/<name>``, so ``components/phone.json`` resolves relatively.
    """
    registry = registry or default_registry()
    if isinstance(source, dict):
        schema = source
    elif isinstance(source, str) and source.lstrip().startswith(("{", "[")):
        schema = parse_schema(source, name or "form")
    else:
        path = Path(source)
        name = name or path.name
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise FormSchemaError(f"cannot read form {path}: {exc}") from None
        schema = parse_schema(text, path.name)
    name = name or "form.json"
    compiled = registry.compile(schema, base_uri=BASE_URI + quote(name))
    return Form(compiled=compiled, name=name, ui=ui_hints(expand(compiled.root)[:1]))


__all__ = ["Form", "FormRegistry", "FormSchemaError", "load_form"]
