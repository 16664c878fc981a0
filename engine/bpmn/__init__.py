"""SpiffWorkflow wrapper: parser, lint, sandboxed scripts, serializer, runner. Imports no domain package.

The names the HTTP edge (``mobile_api``) uses; it imports nothing else of this package."""

from engine.bpmn.layout import with_layout
from engine.bpmn.lint import load_departments
from engine.bpmn.parser import build_bundle, files_for_model, files_from_json
from engine.bpmn.runner import run_in_memory
from engine.bpmn.sandbox import SandboxScriptEngine
from engine.bpmn.validate import exit_code, validate_paths

__all__ = [
    "build_bundle",
    "exit_code",
    "files_for_model",
    "files_from_json",
    "load_departments",
    "run_in_memory",
    "SandboxScriptEngine",
    "validate_paths",
    "with_layout",
]
