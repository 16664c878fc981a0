"""The form system: shared JSON Schema components, form loading, validation with Chinese messages,
material auto-fill from e-certificates. Pure: no project imports, no I/O but reading schema files."""

from forms.loader import Form, FormRegistry, FormSchemaError, load_form
from forms.materials import MaterialStatus, missing_required, resolve_materials
from forms.registry import BASE_URI, COMPONENT_BASE, default_registry
from forms.validation import validate_data

__all__ = ["BASE_URI", "COMPONENT_BASE", "Form", "FormRegistry", "FormSchemaError", "MaterialStatus",
           "default_registry", "load_form", "missing_required", "resolve_materials", "validate_data"]
