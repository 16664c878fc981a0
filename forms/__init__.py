"""The form system: JSON Schema forms and their validation. Pure: no I/O, no project imports."""

from forms.validation import validate_data

__all__ = ["validate_data"]
