"""The import rules of docs/architecture.md, checked on the source with ``ast`` (no dependency).

1. ``mobile_api`` never imports ``engine.store`` (the ORM models): it speaks to the engine through
   the packages' public names. The composition roots that open the database are the exception.
2. No module imports a ``_private`` name (or reaches ``module._private``) of another module, nor
   calls a ``_private`` method or attribute that only another module's classes define
   (``engine._step(...)`` from outside the kernel).
3. No import cycle between the engine's packages.
4. ``engine.bpmn`` imports no domain package of the engine (only ``errors``/``config``).
5. The engine never imports ``sanic``.
6. ``mobile_api`` imports the engine through the packages' names (``from engine.citizen import
   ApplicationService``), never a module path inside a package (``engine.citizen.applications``):
   each package's ``__init__`` is the list of what the edge may use.

``ALLOWED`` lists known violations; it is empty, and a new violation fails the test with the
file, the line and the rule.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("engine", "mobile_api", "forms")
# the composition roots may open the database (migrate, serve, purge): wiring, not queries
COMPOSITION_ROOTS = {"mobile_api/app.py", "mobile_api/cli.py"}
BPMN_MAY_IMPORT = {"engine.errors", "engine.config", "engine.bpmn"}
ALLOWED: set[tuple[str, str]] = set()  # (file, rule) pairs tolerated: none; keep it that way


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    found = {}
    for top in SOURCES:
        for path in (ROOT / top).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            found[_module_name(path)] = path
    return found


def _imports(path: Path, module: str) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, imported names) for every import in the file, relative resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out.append((node.lineno, base, [alias.name for alias in node.names]))
    return out


def _package_of(module: str) -> str | None:
    """The engine package a module belongs to (``engine.kernel``), or None outside the engine."""
    parts = module.split(".")
    if parts[0] != "engine" or len(parts) < 2:
        return None
    return ".".join(parts[:2])


def _violations() -> list[tuple[str, int, str, str]]:
    sources = _sources()
    found: list[tuple[str, int, str, str]] = []
    edges: dict[str, dict[str, tuple[str, int]]] = defaultdict(dict)
    for module, path in sources.items():
        rel = str(path.relative_to(ROOT))
        tree = ast.parse(path.read_text(), rel)
        imported_modules: dict[str, str] = {}  # local name -> module, for attribute reach-ins
        for line, target, names in _imports(path, module):
            top = target.split(".")[0]
            if module.startswith("mobile_api") and (target == "engine.store" or target.startswith("engine.store.")):
                if rel not in COMPOSITION_ROOTS:
                    found.append((rel, line, "api-imports-store", target))
            elif module.startswith("mobile_api") and target.startswith("engine.") and target.count(".") >= 2:
                found.append((rel, line, "api-imports-submodule", target))
            if module.startswith("engine") and top == "sanic":
                found.append((rel, line, "engine-imports-sanic", target))
            if module.startswith("engine.bpmn") and top == "engine":
                if not any(target == allowed or target.startswith(allowed + ".") for allowed in BPMN_MAY_IMPORT):
                    found.append((rel, line, "bpmn-imports-domain", target))
            if top in SOURCES and target != module:
                for name in names:
                    if name.startswith("_") and not name.startswith("__"):
                        found.append((rel, line, "private-import", f"{target}.{name}"))
                    if f"{target}.{name}" in sources:
                        imported_modules[name] = f"{target}.{name}"
            src_pkg, dst_pkg = _package_of(module), _package_of(target)
            if src_pkg and dst_pkg and src_pkg != dst_pkg and dst_pkg in {_package_of(m) for m in sources}:
                if target != "engine":
                    edges[src_pkg].setdefault(dst_pkg, (rel, line))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in sources and alias.name != module:
                        imported_modules[alias.asname or alias.name] = alias.name
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.asname and f"{node.module}.{alias.name}" in sources:
                        imported_modules[alias.asname] = f"{node.module}.{alias.name}"
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in imported_modules and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                found.append((rel, node.lineno, "private-import", f"{imported_modules[node.value.id]}.{node.attr}"))
    found.extend(_private_attributes(sources))
    for cycle in _cycles(edges):
        where = edges[cycle[0]][cycle[1]]
        found.append((where[0], where[1], "package-cycle", " -> ".join(cycle)))
    return found


def _private_attributes(sources: dict[str, Path]) -> list[tuple[str, int, str, str]]:
    """``obj._name`` where ``_name`` is a method or attribute defined only by another module's class."""
    defined: dict[str, set[str]] = defaultdict(set)  # private name -> modules whose classes define it
    trees = {module: ast.parse(path.read_text()) for module, path in sources.items()}
    for module, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in ast.walk(node):
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and _private(item.name):
                        defined[item.name].add(module)
                    if (isinstance(item, ast.Attribute) and isinstance(item.ctx, ast.Store)
                            and isinstance(item.value, ast.Name) and item.value.id == "self" and _private(item.attr)):
                        defined[item.attr].add(module)
    found = []
    for module, tree in trees.items():
        rel = str(sources[module].relative_to(ROOT))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and _private(node.attr) and node.attr in defined
                    and module not in defined[node.attr]
                    and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})):
                owner = sorted(defined[node.attr])[0]
                found.append((rel, node.lineno, "private-attribute", f"{owner}.{node.attr}"))
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _cycles(edges: dict[str, dict[str, tuple[str, int]]]) -> list[list[str]]:
    """Every package that can reach itself, reported once per strongly connected group."""
    seen_groups, cycles = set(), []
    for start in sorted(edges):
        stack = [(start, [start])]
        visited = set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(edges.get(node, {})):
                if nxt == start:
                    group = frozenset(path)
                    if group not in seen_groups:
                        seen_groups.add(group)
                        cycles.append(path + [start])
                elif nxt not in visited:
                    visited.add(nxt)
                    stack.append((nxt, path + [nxt]))
    return cycles


def test_the_import_rules_hold() -> None:
    violations = [v for v in _violations() if (v[0], v[2]) not in ALLOWED]
    listing = "\n".join(f"{file}:{line}: {rule}: {what}" for file, line, rule, what in sorted(violations))
    assert not violations, f"{len(violations)} import rule violations:\n{listing}"


def test_the_checker_sees_each_rule(tmp_path: Path) -> None:
    """The rules would catch a violation: each kind is found in today's tree or in a planted file."""
    planted = ROOT / "mobile_api" / "_arch_probe.py"
    planted.write_text("from engine.store.models import Case\nfrom engine.kernel.cases import _Step\n"
                       "from engine.citizen.applications import ApplicationService\n")
    try:
        rules = {rule for _, _, rule, _ in _violations()}
    finally:
        planted.unlink()
    assert {"api-imports-store", "private-import", "api-imports-submodule"} <= rules


def test_engine_has_at_most_twelve_top_level_entries() -> None:
    entries = [p.name for p in (ROOT / "engine").iterdir() if p.name != "__pycache__"]
    assert len(entries) <= 12, sorted(entries)


def test_no_cycle_found_in_a_planted_graph() -> None:
    assert _cycles({"a": {"b": ("x", 1)}, "b": {"a": ("y", 2)}}) == [["a", "b", "a"]]
    assert _cycles({"a": {"b": ("x", 1)}, "b": {"c": ("y", 2)}}) == []


def test_engine_errors_carry_kinds_not_http_statuses() -> None:
    """HTTP statuses are the edge's business: no class in the engine sets ``status_code``, and every
    error's kind has a status in the API's one table."""
    from mobile_api.errors import STATUS_BY_KIND
    from tools.error_codes import error_classes

    offenders = []
    for path in (ROOT / "engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    targets = item.targets if isinstance(item, ast.Assign) else []
                    names = {t.id for t in targets if isinstance(t, ast.Name)}
                    names |= {e.id for t in targets if isinstance(t, ast.Tuple) for e in t.elts
                              if isinstance(e, ast.Name)}
                    if "status_code" in names:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert offenders == []
    assert {cls.kind for cls in error_classes()} <= set(STATUS_BY_KIND)


def test_the_error_code_list_in_the_docs_is_current() -> None:
    from tools.error_codes import DOC, render

    assert DOC.read_text(encoding="utf-8") == render(), "run .venv/bin/python tools/error_codes.py"
